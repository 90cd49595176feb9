"""Node kinds: what each role runs and which configs it gets.

Kinds are data plus renderer functions, all registered here in one place.
A new scenario reuses these; a new role (an ExpressRoute edge, say) is a new
entry, not a new code path in deploy or status.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .render import render_frr, render_keepalived, render_network, render_strongswan

Renderer = Callable[..., dict[str, str]]


@dataclass(frozen=True)
class Kind:
    name: str
    summary: str
    daemons: tuple[str, ...]
    renderers: tuple[Renderer, ...]
    needs_tun: bool = False
    required_fields: tuple[str, ...] = ()
    # Docker's defaults plus what plumbing and the daemons need; never privileged.
    capabilities: tuple[str, ...] = field(default=("NET_ADMIN", "NET_RAW"))


# FRR's daemons refuse to start without SYS_ADMIN in their permitted set
# (they keep it for network-namespace VRFs).
FRR_CAPABILITIES = ("NET_ADMIN", "NET_RAW", "SYS_ADMIN")


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            name="azure-gateway-instance",
            summary="one VM instance of an Azure VPN gateway (IKEv2, BGP, VRRP for the shared IPs)",
            daemons=("charon", "bgpd", "keepalived"),
            renderers=(render_network, render_strongswan, render_frr, render_keepalived),
            needs_tun=True,
            capabilities=FRR_CAPABILITIES,
        ),
        Kind(
            name="onprem-vpn-device",
            summary="an on-premises VPN device (IKEv2 initiator, eBGP)",
            daemons=("charon", "bgpd"),
            renderers=(render_network, render_strongswan, render_frr),
            needs_tun=True,
            required_fields=("asn", "bgp_peer_ip", "address_space"),
            capabilities=FRR_CAPABILITIES,
        ),
        Kind(
            name="vnet-router",
            summary="the VNet's routing (Azure SDN), fed by the gateway instances over iBGP",
            daemons=("bgpd",),
            renderers=(render_network, render_frr),
            required_fields=("asn", "address_space"),
            capabilities=FRR_CAPABILITIES,
        ),
        Kind(
            name="workload-host",
            summary="a workload VM or host that sends and receives probe traffic",
            daemons=(),
            renderers=(render_network,),
            required_fields=("router",),
        ),
    )
}
