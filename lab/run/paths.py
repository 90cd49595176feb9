"""Which path carries each prefix now, and why: a route's next hops mapped back to the planned
sessions they were learned over (a circuit link, a tunnel, a gateway). Pure: a plan and a status in."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from ipaddress import IPv4Network

from lab.model.kinds import Can, able
from lab.model.schema import LabPlan

EXPRESSROUTE, VPN = "expressroute", "vpn"


@dataclass(frozen=True)
class PathRow:
    node: str
    prefix: str
    # "expressroute", "vpn", both (ECMP over both: "expressroute+vpn"), or "" (neither: on-premises, the VNet).
    carrier: str
    # The sessions the next hops were learned over, as the plan names them ("ExpressRoute, primary link").
    via: list[str]
    next_hops: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def vnet_prefixes(plan: LabPlan) -> list[IPv4Network]:
    return [p for n in plan.scenario.nodes.values() if able(n.kind, Can.ROUTE_VNET) for p in n.address_space]


def onprem_prefixes(plan: LabPlan) -> list[IPv4Network]:
    vnet = set(vnet_prefixes(plan))
    return list(dict.fromkeys(p for p in plan.routed_prefixes() if p not in vnet))


def choosing_routers(plan: LabPlan) -> tuple[list[str], list[str]]:
    """(on-premises routers, Azure's routers) that choose between paths: the circuit's on-premises ends
    and the VPN devices; the VNet routers."""
    onprem = sorted({b.node for b in plan.bgp_sessions
                     if (b.carrier == EXPRESSROUTE and b.peering and not able(plan.nodes[b.node].kind, Can.EDGE_CIRCUITS))
                     or able(plan.nodes[b.node].kind, Can.START_TUNNELS)})
    azure = sorted(n for n, spec in plan.nodes.items() if able(spec.kind, Can.ROUTE_VNET))
    return onprem, azure


def carriers(plan: LabPlan, node: str, next_hops: list[str]) -> tuple[set[str], list[str]]:
    """Which way a route's next hops go, and the sessions they came over, from the node's plan."""
    sessions = {str(b.peer_address): b for b in plan.sessions_of(node)}
    # Over a tunnel the next hop is the tunnel's routed link, not the BGP peer's loopback address.
    sessions.update({str(b.static_via): b for b in plan.sessions_of(node) if b.static_via is not None})
    ways, via = set(), []
    for hop in next_hops:
        session = sessions.get(hop.split()[0])
        ways.add(session.carrier if session is not None else "?")
        via.append(session.path if session is not None else f"{hop} (no planned session)")
    return ways, via


def route_paths(plan: LabPlan, routes: list) -> list[PathRow]:
    """For each choosing router, each prefix of the other side: what carries it now (`routes`: a
    status's RouteRows)."""
    onprem, azure = choosing_routers(plan)
    wanted = [(n, vnet_prefixes(plan)) for n in onprem] + [(n, onprem_prefixes(plan)) for n in azure]
    rows = []
    for node, prefixes in wanted:
        at_node = {r.prefix: r.next_hops for r in routes if r.node == node}
        for prefix in map(str, prefixes):
            hops = at_node.get(prefix, [])
            ways, via = carriers(plan, node, hops)
            rows.append(PathRow(node, prefix, "+".join(sorted(w for w in ways if w)), via, list(hops)))
    return rows
