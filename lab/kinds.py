"""Node kinds: what each role runs and which configs it gets.

Kinds are data plus renderer functions, all registered here in one place.
A new scenario reuses these; a new role (an ExpressRoute edge, say) is a new
entry, not a new code path in deploy or status.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

from .render import render_frr, render_keepalived, render_network, render_strongswan

Renderer = Callable[..., dict[str, str]]


class Role(Enum):
    """The part a kind plays in a scenario: planning, status and faults ask for roles, never for kind names."""
    GATEWAY_INSTANCE = "gateway instance"
    VPN_DEVICE = "VPN device"
    VNET_ROUTER = "VNet router"
    WORKLOAD_HOST = "workload host"


@dataclass(frozen=True)
class Kind:
    name: str
    summary: str
    role: Role
    # The daemons it may run; the entrypoint starts those the node has configs for.
    daemons: tuple[str, ...]
    renderers: tuple[Renderer, ...]
    needs_tun: bool = False
    required_fields: tuple[str, ...] = ()
    # Docker's defaults plus what plumbing and the daemons need; never privileged.
    capabilities: tuple[str, ...] = field(default=("NET_ADMIN", "NET_RAW"))

    @property
    def runs_ike(self) -> bool:
        """strongSwan runs here: status and observation read its SAs and events."""
        return "charon" in self.daemons

    @property
    def runs_bgp(self) -> bool:
        """FRR's bgpd runs here: status reads its sessions, observation its log."""
        return "bgpd" in self.daemons


# FRR's daemons refuse to start without SYS_ADMIN in their permitted set
# (they keep it for network-namespace VRFs).
FRR_CAPABILITIES = ("NET_ADMIN", "NET_RAW", "SYS_ADMIN")


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            name="azure-gateway-instance",
            summary="one VM instance of an Azure VPN gateway (IKEv2, BGP; VRRP when its mode shares the IPs)",
            role=Role.GATEWAY_INSTANCE,
            daemons=("charon", "bgpd", "keepalived"),
            renderers=(render_network, render_strongswan, render_frr, render_keepalived),
            needs_tun=True,
            capabilities=FRR_CAPABILITIES,
        ),
        Kind(
            name="onprem-vpn-device",
            summary="an on-premises VPN device (IKEv2 initiator, eBGP; VRRP on its LAN when it shares a first hop)",
            role=Role.VPN_DEVICE,
            daemons=("charon", "bgpd", "keepalived"),
            renderers=(render_network, render_strongswan, render_frr, render_keepalived),
            needs_tun=True,
            required_fields=("asn", "bgp_peer_ip", "address_space"),
            capabilities=FRR_CAPABILITIES,
        ),
        Kind(
            name="vnet-router",
            summary="the VNet's routing (Azure SDN), fed by the gateway instances over iBGP",
            role=Role.VNET_ROUTER,
            daemons=("bgpd",),
            renderers=(render_network, render_frr),
            required_fields=("asn", "address_space"),
            capabilities=FRR_CAPABILITIES,
        ),
        Kind(
            name="workload-host",
            summary="a workload VM or host that sends and receives probe traffic",
            role=Role.WORKLOAD_HOST,
            daemons=(),
            renderers=(render_network,),
            required_fields=("router",),
        ),
    )
}


def has_role(kind_name: str, role: Role) -> bool:
    kind = KINDS.get(kind_name)
    return kind is not None and kind.role is role


def runs_ike(kind_name: str) -> bool:
    kind = KINDS.get(kind_name)
    return kind is not None and kind.runs_ike


def runs_bgp(kind_name: str) -> bool:
    kind = KINDS.get(kind_name)
    return kind is not None and kind.runs_bgp


def kind_name_of(role: Role) -> str:
    """The kind that plays `role` (one per role today), for messages that name it."""
    return next(k.name for k in KINDS.values() if k.role is role)
