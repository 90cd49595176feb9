"""The ExpressRoute gateway: active-active instances, each in eBGP with both MSEEs of its circuit.

The circuit itself is two peerings (primary, secondary), each a link between an
on-premises edge router (CE) and one MSEE. The gateway brings the MSEE
sessions and its iBGP into the VNet; Azure prefers its routes to a VPN's.
"""
from __future__ import annotations

from lab.model.kinds import MSEE_ASN as AZURE_MSEE_ASN, Can, able, kinds_that
from lab.model.schema import AnyGateway, BgpSessionPlan, ExpressRouteGateway, Peering, Scenario, VpnGateway
from lab.plan.gateway_types.base import GatewayType
from lab.plan.redundancy.base import GatewayView, InstanceAddress, Strategy

# The ASN of every ExpressRoute gateway, and of a VPN gateway beside one.
AZURE_GATEWAY_ASN = 65515
# The MSEE-to-gateway sessions over Microsoft's backbone: the lab's reading of Azure's "up to a
# minute for failover between ExpressRoute virtual network gateways and MSEEs" (Configure BFD over
# ExpressRoute) as a 60 s hold time. Azure documents no timers for these sessions.
BACKBONE_KEEPALIVE_S, BACKBONE_HOLD_S = 20, 60
COEXIST_SOURCE = ("Configure ExpressRoute and Site-to-Site coexisting connections: the VPN gateway's ASN "
                  "must stay 65515 where an ExpressRoute gateway is in the same VNet")


class AlwaysActiveActive(Strategy):
    """Every running instance carries: there is no standby and nothing to take over."""
    mode = "active-active"
    summary = "every instance carries traffic (BGP multipath from the MSEEs and into the VNet)"
    shares_tunnels = False
    multipath = True

    def addresses(self, s: Scenario, gw) -> dict[str, InstanceAddress]:
        return {}

    def is_active(self, public_ip: str, addresses: list[str]) -> bool:
        return True

    def unsettled(self, gw: GatewayView) -> list[str]:
        return [f"gateway {gw.name}: instance {i} is not live" for i in gw.instances if i not in gw.active]


def circuit_peerings(s: Scenario, gw: ExpressRouteGateway) -> list[Peering]:
    """The circuit's links as peerings, primary first (on a checked scenario)."""
    by_name = {p.name: p for p in s.peerings}
    return [by_name[link.peering] for link in gw.circuit if link.peering in by_name]


def msee_side(s: Scenario, peering: Peering) -> int | None:
    """Which side of a peering is the MSEE (0 or 1); None when neither or both are."""
    edges = [i for i, side in enumerate(peering.sides)
             if side.node in s.nodes and able(s.nodes[side.node].kind, Can.EDGE_CIRCUITS)]
    return edges[0] if len(edges) == 1 else None


def circuit_msees(s: Scenario, gw: ExpressRouteGateway) -> list[str]:
    return [p.sides[i].node for p in circuit_peerings(s, gw) for i in [msee_side(s, p)] if i is not None]


class ExpressRoute(GatewayType):
    type = "expressroute"
    summary = "ExpressRoute gateway"
    vnet_weight = 32769
    vnet_weight_source = ("Using S2S VPN as a backup for ExpressRoute private peering: Azure prefers ExpressRoute "
                          "for the same prefix; the VPN gateway shows ExpressRoute-learned routes at weight 32769 "
                          "against 32768 for the VPN's")

    def strategy(self, mode: str) -> Strategy:
        return AlwaysActiveActive()

    def vnet_network(self, gw: AnyGateway) -> str:
        assert isinstance(gw, ExpressRouteGateway)
        return gw.network

    def default_sku(self, gw: AnyGateway) -> str:
        return gw.sku or ("ErGw1AZ" if gw.zones != "regional" else "Standard")

    def check(self, s: Scenario, name: str, gw: AnyGateway) -> list[str]:
        assert isinstance(gw, ExpressRouteGateway)
        field = f"gateways.{name}"
        problems = []
        if gw.mode != "active-active":
            problems.append(f"{field}.mode: an ExpressRoute gateway is active-active, not {gw.mode!r}")
        if gw.asn != AZURE_GATEWAY_ASN:
            problems.append(f"{field}.asn: an ExpressRoute gateway's ASN is {AZURE_GATEWAY_ASN}, not {gw.asn}")
        for other, vpn in s.gateways.items():
            if isinstance(vpn, VpnGateway) and vpn.asn != AZURE_GATEWAY_ASN:
                problems.append(f"gateways.{other}.asn: must stay {AZURE_GATEWAY_ASN} beside ExpressRoute gateway "
                                f"{name}, not {vpn.asn} ({COEXIST_SOURCE})")
        for net in (gw.network, gw.backbone):
            if net not in s.networks:
                problems.append(f"{field}: unknown network {net!r}")
        for inst in gw.instances:
            node = s.nodes.get(inst)
            if node is not None:
                problems += [f"nodes.{inst}.links: no link on {net}, where the gateway's instances meet "
                             f"{'the VNet router' if net == gw.network else 'the MSEEs'}"
                             for net in (gw.network, gw.backbone) if net not in node.links]
        problems += self._check_circuit(s, name, gw)
        return problems

    def _check_circuit(self, s: Scenario, name: str, gw: ExpressRouteGateway) -> list[str]:
        field = f"gateways.{name}.circuit"
        if len(gw.circuit) != 2:
            return [f"{field}: an ExpressRoute circuit has two links, primary and secondary (Azure's SLA needs "
                    f"both); {len(gw.circuit)} given"]
        by_name = {p.name: p for p in s.peerings}
        problems, msees = [], []
        for i, link in enumerate(gw.circuit):
            peering = by_name.get(link.peering)
            if peering is None:
                problems.append(f"{field}[{i}].peering: no peering named {link.peering!r}")
                continue
            side = msee_side(s, peering)
            if side is None:
                problems.append(f"{field}[{i}]: peering {peering.name} must join one {kinds_that(Can.EDGE_CIRCUITS)} "
                                "node and one on-premises router")
                continue
            msee = peering.sides[side].node
            msees.append(msee)
            if gw.backbone not in s.nodes[msee].links:
                problems.append(f"nodes.{msee}.links: no link on {gw.backbone}, where it meets gateway {name}")
            net = s.networks.get(peering.network)
            if net is not None and net.subnet.prefixlen != 30:
                problems.append(f"peerings: {peering.name}'s network {peering.network} is {net.subnet}: an "
                                "ExpressRoute link is a /30 (Azure's private peering subnets)")
        if len(msees) == 2 and msees[0] == msees[1]:
            problems.append(f"{field}: both links end on {msees[0]}; the primary and secondary links end on "
                            "two MSEEs")
        return problems

    def edge_sessions(self, s: Scenario, name: str, gw: AnyGateway) -> list[BgpSessionPlan]:
        """Each instance with each MSEE of the circuit, over Microsoft's backbone, from both ends."""
        assert isinstance(gw, ExpressRouteGateway)
        sessions = []
        for msee in circuit_msees(s, gw):
            msee_node = s.nodes[msee]
            msee_asn = msee_node.asn or AZURE_MSEE_ASN
            for inst in gw.instances:
                here, there = s.nodes[inst].links[gw.backbone], msee_node.links[gw.backbone]
                sessions.append(BgpSessionPlan(
                    node=inst, peer_address=there, peer_asn=msee_asn, source=here,
                    description=f"MSEE {msee}", multihop=False, path=f"ExpressRoute (MSEE {msee})",
                    carrier="expressroute", keepalive_s=BACKBONE_KEEPALIVE_S, hold_s=BACKBONE_HOLD_S))
                sessions.append(BgpSessionPlan(
                    node=msee, peer_address=here, peer_asn=gw.asn, source=there,
                    description=f"ExpressRoute gateway instance {inst}", multihop=False,
                    path=f"ExpressRoute gateway {name} ({inst})", carrier="expressroute",
                    keepalive_s=BACKBONE_KEEPALIVE_S, hold_s=BACKBONE_HOLD_S))
        return sessions


