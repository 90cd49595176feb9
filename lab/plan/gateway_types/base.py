"""What every gateway type answers: its checks, the BGP sessions it brings, its labels, its strategy.

Pure. A gateway type is one module in this package plus its entry in
GATEWAY_TYPES; planning, rendering, status and faults ask the type.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from lab.model.schema import AnyGateway, BfdTimers, BgpSessionPlan, Scenario
from lab.plan.redundancy import Strategy


class GatewayType(ABC):
    type: str
    summary: str
    # The kind capability the instances need is `instance_of == type` (lab/model/kinds.py).
    # The weight the VNet's routing gives routes learned from this type's instances: Azure prefers
    # ExpressRoute to a VPN for the same prefix (and the longest prefix beats both).
    vnet_weight: int
    vnet_weight_source: str

    @abstractmethod
    def strategy(self, mode: str) -> Strategy:
        """What "active" means for its instances, how it settles, how an instance leaves."""

    def modes(self) -> list[str]:
        """The redundancy modes this type may have."""
        return [self.strategy("").mode]

    @abstractmethod
    def vnet_network(self, gw: AnyGateway) -> str:
        """The network where the instances meet the VNet router."""

    def default_sku(self, gw: AnyGateway) -> str:
        return gw.sku or ""

    def check(self, s: Scenario, name: str, gw: AnyGateway) -> list[str]:
        """Problems with the gateway's own fields under this type, each naming its field."""
        return []

    def vnet_sessions(self, s: Scenario, name: str, gw: AnyGateway,
                      bfd: BfdTimers | None = None) -> list[BgpSessionPlan]:
        """iBGP between each instance and the VNet router, from both ends; with `bfd` (the profile's,
        like the tunnels'), the VNet drops a lost instance's paths as fast as its peers do."""
        router = s.nodes[gw.vnet_router]
        inside = self.vnet_network(gw)
        sessions = []
        for inst in gw.instances:
            sessions.append(BgpSessionPlan(
                node=inst, peer_address=router.links[inside], peer_asn=gw.asn, source=s.nodes[inst].links[inside],
                description=f"VNet routing ({gw.vnet_router})", multihop=False, next_hop_self=True,
                bfd=bfd, path="the VNet"))
        for inst in gw.instances:
            sessions.append(BgpSessionPlan(
                node=gw.vnet_router, peer_address=s.nodes[inst].links[inside], peer_asn=gw.asn,
                source=router.links[inside], description=f"{self.summary} instance {inst}", multihop=False,
                weight=self.vnet_weight, bfd=bfd, path=f"{self.summary} {name} ({inst})", carrier=self.type))
        return sessions

    def edge_sessions(self, s: Scenario, name: str, gw: AnyGateway) -> list[BgpSessionPlan]:
        """Sessions the instances have toward the outside, other than tunnels' (planned from tunnels)."""
        return []

    def labels(self, s: Scenario, name: str, gw: AnyGateway, node: str) -> dict[str, str]:
        return {"lab.gateway": name, "lab.gateway-type": self.type, "lab.redundancy": gw.mode,
                "lab.sku": self.default_sku(gw)}
