"""What a person needs to point their own VPN device at a tunnel of the lab's gateway (pure).

Azure's side of a connection (its public IP, BGP peer, ASN, IPsec/IKE policy)
comes first, as the Azure portal shows it; then what the lab needs beyond
Azure's documents (UDP encapsulation, the tunnel's /32 selectors, the VXLAN
link that stands in for a VTI). The shared key is never shown: only where it is.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from lab.model.errors import LabError
from lab.model.ipsec import device_proposals, gateway_proposals
from lab.model.schema import LabPlan, TunnelPlan
from lab.render.configs import TUNNEL_MTU, VXLAN_PORT, link_mac


@dataclass(frozen=True)
class DeviceConnection:
    tunnel: str
    device: str
    gateway: str
    gateway_instances: list[str]
    # Azure's side, as its portal shows a connection.
    gateway_public_ip: str
    gateway_bgp_ip: str
    gateway_asn: int
    gateway_opens_bgp: bool
    device_public_ip: str
    device_bgp_ip: str
    device_asn: int | None
    policy: str                  # "Azure default" or the custom policy in Azure's names
    gateway_ike: str             # what the gateway offers and accepts (strongSwan proposals)
    gateway_esp: str
    suggested_ike: str           # what the lab's own device offers: the recommended set or the custom policy
    suggested_esp: str
    ike_lifetime_s: int
    child_lifetime_s: int
    dpd_timeout_s: float
    psk_file: str                # where the key is (0600); the key itself is never printed
    # What the lab needs beyond Azure's documents.
    encapsulation: str
    device_ts: str
    gateway_ts: str
    vxlan_vni: int
    vxlan_port: int
    device_link: str
    gateway_link: str
    gateway_link_mac: str
    link_mtu: int

    def as_dict(self) -> dict:
        return asdict(self)


def _policy_text(t: TunnelPlan) -> str:
    p = t.ipsec_policy
    if p is None:
        return "Azure default: the offer and acceptance lists of Azure's page on IPsec/IKE parameters"
    return (f"custom: IKE {p.ike_encryption}/{p.ike_integrity}/{p.dh_group}, "
            f"IPsec {p.ipsec_encryption}/{p.ipsec_integrity}/{p.pfs_group}, {p.sa_lifetime_s} s / {p.sa_data_kb} KB")


def device_connections(plan: LabPlan, state_dir: Path, tunnel: str | None = None) -> list[DeviceConnection]:
    chosen = [t for t in plan.tunnels if tunnel in (None, t.name)]
    if not chosen:
        raise LabError(f"no tunnel named {tunnel!r} (tunnels: {', '.join(t.name for t in plan.tunnels)})")
    views = []
    for t in chosen:
        gateway = plan.scenario.gateways[t.gateway]
        device = plan.scenario.nodes[t.device]
        offered, suggested = gateway_proposals(t.ipsec_policy), device_proposals(t.ipsec_policy)
        views.append(DeviceConnection(
            tunnel=t.name, device=t.device, gateway=t.gateway, gateway_instances=list(t.instances),
            gateway_public_ip=str(t.gateway_public_ip), gateway_bgp_ip=str(t.gateway_bgp_ip),
            gateway_asn=gateway.asn, gateway_opens_bgp=not t.gateway_bgp_passive,
            device_public_ip=str(t.device_public_ip), device_bgp_ip=str(device.bgp_peer_ip),
            device_asn=device.asn, policy=_policy_text(t),
            gateway_ike=offered.ike, gateway_esp=offered.esp, suggested_ike=suggested.ike, suggested_esp=suggested.esp,
            ike_lifetime_s=plan.profile.ike.ike_lifetime_s,
            child_lifetime_s=t.ipsec_policy.sa_lifetime_s if t.ipsec_policy else plan.profile.ike.child_lifetime_s,
            dpd_timeout_s=plan.profile.ike.dpd_timeout_s,
            psk_file=f"{state_dir / 'psk.json'} (key {t.name!r}; 0600, never printed)",
            encapsulation="UDP (NAT-T) on port 4500, always: the lab's ESP is userspace",
            device_ts=", ".join([f"{t.device_endpoint}/32", *map(str, t.device_prefixes)]),
            gateway_ts=", ".join([f"{t.gateway_endpoint}/32", *map(str, t.gateway_prefixes)]),
            vxlan_vni=t.vni, vxlan_port=VXLAN_PORT,
            device_link=f"{t.device_link_ip}/{t.link_prefixlen}", gateway_link=f"{t.gateway_link_ip}/{t.link_prefixlen}",
            gateway_link_mac=link_mac(t.gateway_link_ip), link_mtu=TUNNEL_MTU,
        ))
    return views
