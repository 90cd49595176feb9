"""A connection's IPsec/IKE policy, in Azure's names, as strongSwan proposals (pure).

The gateway offers and accepts what Azure documents: its default lists, or
exactly the connection's custom policy. A device the lab configures itself
uses Azure's recommended set, or the custom policy, as a person following
Azure's pages would.
"""
from __future__ import annotations

from dataclasses import dataclass

from lab.model.azure import azure_rules
from lab.model.schema import IpsecPolicy

# Azure's algorithm names → strongSwan's proposal keywords.
ENCRYPTION = {
    "AES128": "aes128", "AES192": "aes192", "AES256": "aes256", "DES3": "3des", "DES": "des", "None": "null",
    "GCMAES128": "aes128gcm16", "GCMAES192": "aes192gcm16", "GCMAES256": "aes256gcm16",
}
INTEGRITY = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384"}
# With an AEAD (GCM) IKE cipher Azure's "integrity" is the PRF alone.
PRF = {"MD5": "prfmd5", "SHA1": "prfsha1", "SHA256": "prfsha256", "SHA384": "prfsha384"}
GROUPS = {
    "DHGroup1": "modp768", "DHGroup2": "modp1024", "DHGroup14": "modp2048", "DHGroup2048": "modp2048",
    "DHGroup24": "modp2048s256", "ECP256": "ecp256", "ECP384": "ecp384",
    "PFS1": "modp768", "PFS2": "modp1024", "PFS14": "modp2048", "PFS2048": "modp2048",
    "PFS24": "modp2048s256",
}
NO_GROUP = "None"
# An explicit "no key exchange" transform (strongSwan 5.9.7+): listed first, it keeps an
# initiated rekey free of PFS (strongSwan takes the first group it finds) while later
# proposals still accept a peer's PFS groups, as Azure does as responder.
NO_PFS = "none"


@dataclass(frozen=True)
class Proposals:
    """strongSwan's `proposals` (IKE) and `esp_proposals` of one end of a tunnel."""
    ike: str
    esp: str
    pfs: bool   # does the ESP offer ask for a new key exchange at rekeys?


def ike_proposal(encryption: str, integrity: str, group: str) -> str:
    aead = encryption.startswith("GCM")
    return "-".join([ENCRYPTION[encryption], (PRF if aead else INTEGRITY)[integrity], GROUPS[group]])


def esp_proposal(encryption: str, integrity: str, group: str) -> str:
    parts = [ENCRYPTION[encryption]]
    if not encryption.startswith("GCM"):
        parts.append(INTEGRITY[integrity])
    if group != NO_GROUP:
        parts.append(GROUPS[group])
    return "-".join(parts)


def _custom(policy: IpsecPolicy) -> Proposals:
    return Proposals(ike=ike_proposal(policy.ike_encryption, policy.ike_integrity, policy.dh_group),
                     esp=esp_proposal(policy.ipsec_encryption, policy.ipsec_integrity, policy.pfs_group),
                     pfs=policy.pfs_group != NO_GROUP)


def gateway_proposals(policy: IpsecPolicy | None) -> Proposals:
    """What the gateway offers and accepts: Azure's default lists, or the custom policy alone."""
    if policy is not None:
        return _custom(policy)
    default = azure_rules().default_policy
    # Offers first, in Azure's order; what it only accepts as responder after.
    esp = [esp_proposal(*p) for p in default.esp_initiator + default.esp_responder]
    esp[0] = f"{esp[0]}-{NO_PFS}"
    return Proposals(ike=",".join(ike_proposal(*p) for p in default.ike), esp=",".join(esp), pfs=False)


def device_proposals(policy: IpsecPolicy | None) -> Proposals:
    """What a lab-configured device offers: Azure's recommended set, or the custom policy."""
    if policy is not None:
        return _custom(policy)
    recommended = azure_rules().recommended
    return Proposals(ike=ike_proposal(*recommended.ike), esp=esp_proposal(*recommended.esp), pfs=False)
