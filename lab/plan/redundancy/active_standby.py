"""active-standby, Azure's default: one public IP and one BGP peer IP, held by
one instance at a time (VRRP, no pre-emption); the standby takes both."""
from __future__ import annotations

from lab.model.schema import Gateway, Scenario, VrrpGroupPlan
from lab.plan.redundancy.base import GatewayView, InstanceAddress, Leaving, Strategy


class ActiveStandby(Strategy):
    mode = "active-standby"
    summary = "one shared public IP and BGP peer IP (VRRP); the standby takes them over"
    shares_tunnels = True
    has_standbys = True
    hands_over = True

    def check(self, s: Scenario, name: str, gw: Gateway) -> list[str]:
        problems = [f"gateways.{name}.{field}.address: required for an active-standby gateway (the shared address)"
                    for field in ("public_ip", "bgp_peer_ip") if getattr(gw, field).address is None]
        if gw.apipa_bgp_ips:
            problems.append(f"gateways.{name}.apipa_bgp_ips: Azure offers APIPA BGP addresses per instance, "
                            "so only to an active-active gateway")
        return problems

    def addresses(self, s: Scenario, gw: Gateway) -> dict[str, InstanceAddress]:
        shared = InstanceAddress(gw.public_ip.address, gw.bgp_peer_ip.address)  # type: ignore[arg-type]
        return {i: shared for i in gw.instances}

    def vrrp_group(self, s: Scenario, name: str, gw: Gateway, vrid: int) -> VrrpGroupPlan:
        prefix = {n: net.subnet.prefixlen for n, net in s.networks.items()}
        return VrrpGroupPlan(
            name=name, vrid=vrid, routers=tuple(gw.instances), interface=gw.bgp_peer_ip.network,
            addresses=((gw.public_ip.address, prefix[gw.public_ip.network], gw.public_ip.network),
                       (gw.bgp_peer_ip.address, prefix[gw.bgp_peer_ip.network], gw.bgp_peer_ip.network)),
            moves_tunnels=True)

    def unsettled(self, gw: GatewayView) -> list[str]:
        reasons = []
        if len(gw.active) != 1:
            reasons.append(f"gateway {gw.name} has {len(gw.active)} active instances")
        for standby in (i for i in gw.instances if i not in gw.active):
            if gw.established.get(standby):
                # A standby holding an SA is left over from a hand-over: not settled yet.
                reasons.append(f"standby {standby} still holds a tunnel")
        return reasons

    def release(self, target: Leaving, node: str) -> str:
        target.vrrp(node, "stop")
        return "VRRP left with priority 0"
