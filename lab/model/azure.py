"""Azure's documented rules and limits for VPN and ExpressRoute gateways, read from azure.yaml (pure)."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

from lab.model.schema import IpsecPolicy, Profile


class Data(BaseModel):
    """A piece of azure.yaml: typos are errors, and nobody changes it at run time."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class SkuLimits(Data):
    tunnels: int
    throughput_mbps: int
    # An AZ SKU: the gateway may go in zones (zone-redundant or zonal).
    az: bool = False
    # A regional SKU's AZ twin (same limits); None: it has none (Basic), or it is one.
    az_peer: str | None = None


class ReservedAsns(Data):
    source: str
    gateway_default: int
    ranges: list[tuple[int, int]]

    def reserved(self, asn: int) -> bool:
        return any(low <= asn <= high for low, high in self.ranges)


class Skus(Data):
    source: str
    default: str
    limits: dict[str, SkuLimits]
    az_source: str

    def az_skus(self) -> list[str]:
        return [name for name, sku in self.limits.items() if sku.az]


class ExpressRouteSkus(Data):
    source: str
    # Each SKU: whether it is an AZ SKU (goes in zones).
    az: dict[str, bool]


class ZoneRules(Data):
    """Azure's availability zones, and how a gateway's instances are placed in them."""
    numbers: list[int]
    numbers_source: str
    vpn_instances: int
    vpn_instances_source: str
    expressroute_min_zones: int
    expressroute_source: str
    sku_source: str


class PskRule(Data):
    source: str
    min_length: int
    max_length: int
    forbidden: str

    def problem(self, key: str) -> str | None:
        """Why Azure would refuse `key` as a connection's shared key; None when it takes it."""
        if not self.min_length <= len(key) <= self.max_length:
            return f"{len(key)} characters, Azure takes {self.min_length} to {self.max_length}"
        bad = sorted({c for c in key if not 0x21 <= ord(c) <= 0x7E or c in self.forbidden})
        if bad:
            return f"contains {', '.join(repr(c) for c in bad)}: Azure takes printable ASCII without space, '-' or '~'"
        return None


# The ways a timer profile may depart from Azure's documented behaviour, on purpose.
DEPARTURES = ("dpd_timeout", "bfd", "bgp_timers")

# One proposal in Azure's names: encryption, integrity, DH (IKE) or PFS (IPsec) group.
AzureProposal = tuple[str, str, str]


class DefaultPolicy(Data):
    source: str
    ike: list[AzureProposal]
    esp_initiator: list[AzureProposal]
    esp_responder: list[AzureProposal]


class Recommended(Data):
    source: str
    ike: AzureProposal
    esp: AzureProposal


class CustomPolicyRule(Data):
    """The values Azure allows in a connection's custom IPsec/IKE policy."""
    source: str
    ike_encryption: list[str]
    ike_integrity: list[str]
    dh_group: list[str]
    ipsec_encryption: list[str]
    ipsec_integrity: list[str]
    pfs_group: list[str]
    sa_lifetime_s_min: int
    sa_data_kb_min: int
    skus_without: list[str]

    def problems(self, policy: IpsecPolicy, field: str, sku: str) -> list[str]:
        """Why Azure would refuse this policy, one line each, naming the field."""
        found = []
        for name in ("ike_encryption", "ike_integrity", "dh_group", "ipsec_encryption", "ipsec_integrity", "pfs_group"):
            value, allowed = getattr(policy, name), getattr(self, name)
            if value not in allowed:
                found.append(f"{field}.{name}: {value!r} is not one Azure allows ({', '.join(allowed)})")
        gcm = policy.ipsec_encryption.startswith("GCM") or policy.ipsec_integrity.startswith("GCM")
        if gcm and policy.ipsec_encryption != policy.ipsec_integrity and not found:
            found.append(f"{field}.ipsec_integrity: {policy.ipsec_integrity} with {policy.ipsec_encryption}: Azure "
                         "needs the same GCMAES algorithm and key length for IPsec encryption and integrity")
        for name in ("sa_lifetime_s", "sa_data_kb"):
            least = getattr(self, f"{name}_min")
            if getattr(policy, name) < least:
                found.append(f"{field}.{name}: {getattr(policy, name)} is below Azure's minimum of {least}")
        if sku in self.skus_without:
            found.append(f"{field}: the gateway's SKU {sku} takes no custom IPsec/IKE policy")
        return found


class Range(Data):
    source: str
    min: float
    max: float


class BgpTimerRule(Data):
    source: str
    keepalive_s: int
    hold_s: int


class Documented(Data):
    source: str


class AzureRules(Data):
    reserved_asns: ReservedAsns
    psk: PskRule
    skus: Skus
    expressroute_skus: ExpressRouteSkus
    zones: ZoneRules
    default_policy: DefaultPolicy
    recommended: Recommended
    custom_policy: CustomPolicyRule
    dpd_timeout_s: Range
    bgp_timers: BgpTimerRule
    bfd: Documented

    def departures(self, profile: Profile) -> dict[str, str]:
        """Where a timer profile departs from what Azure documents, by key, each said in one line."""
        found = {}
        dpd = self.dpd_timeout_s
        if not dpd.min <= profile.ike.dpd_timeout_s <= dpd.max:
            found["dpd_timeout"] = (f"DPD timeout {profile.ike.dpd_timeout_s:g} s (Azure: {dpd.min:g} to {dpd.max:g} s; "
                                    f"{dpd.source})")
        if profile.bfd is not None:
            found["bfd"] = (f"BFD on the tunnels' BGP sessions, {profile.bfd.interval_ms} ms x {profile.bfd.multiplier} "
                            f"({self.bfd.source})")
        timers = self.bgp_timers
        if (profile.bgp.keepalive_s, profile.bgp.hold_s) != (timers.keepalive_s, timers.hold_s):
            found["bgp_timers"] = (f"BGP keepalive/hold {profile.bgp.keepalive_s}/{profile.bgp.hold_s} s "
                                   f"(Azure: {timers.keepalive_s}/{timers.hold_s} s; {timers.source})")
        return found

    def undeclared_departures(self, profile: Profile) -> list[str]:
        """Departures the profile doesn't own up to (Azure would refuse them, so the lab does), and unknown keys."""
        unknown = [f"departs_from_azure: unknown departure {key!r} (known: {', '.join(DEPARTURES)})"
                   for key in profile.departs_from_azure if key not in DEPARTURES]
        return unknown + [f"departs_from_azure: {text}; list {key!r} there to depart on purpose"
                          for key, text in self.departures(profile).items() if key not in profile.departs_from_azure]


@lru_cache(maxsize=1)
def azure_rules() -> AzureRules:
    return AzureRules.model_validate(yaml.safe_load((resources.files("lab.model") / "azure.yaml").read_text()))
