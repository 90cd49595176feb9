"""Validated models → a resolved LabPlan, as a pipeline of small named steps: sites and
addresses (the scenario, checked) → tunnels → BGP sessions → address sharing (VRRP) →
multipath → segments. Pure: no I/O."""
from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address, IPv4Network

from lab.model.kinds import KINDS, Can, able
from lab.model.names import container_name
from lab.model.schema import (
    BfdTimers,
    BgpSessionPlan,
    LabPlan,
    NodePlan,
    Profile,
    Scenario,
    Segment,
    Tunnel,
    TunnelPlan,
    VpnGateway,
    VrrpGroupPlan,
)
from lab.plan.gateway_types import strategy_of, type_of
from lab.plan.segments import bridge_prefix, plan_segments

VXLAN_BASE_VNI = 100
# VRRP router IDs: gateways first, then LAN first-hop groups, each its own.
FIRST_VRID = 51


def _policy_prefixes(s: Scenario, t: Tunnel) -> dict[str, tuple[IPv4Network, ...]]:
    """A policy-based connection's selectors beyond the /32 pair: the VNet's and the site's prefixes."""
    if not t.policy_based_selectors:
        return {}
    vnet = s.nodes[s.gateways[t.gateway].vnet_router]
    return dict(gateway_prefixes=tuple(vnet.address_space), device_prefixes=tuple(s.nodes[t.device].address_space))


def plan_tunnels(s: Scenario) -> list[TunnelPlan]:
    """One tunnel per device and gateway, or per device and instance when the gateway's
    instances each have their own IP; each gets a /28 of the pool: two /32 selector
    endpoints and a /30 link."""
    plans: list[TunnelPlan] = []
    for t in s.tunnels:
        gw = s.gateways[t.gateway]
        assert isinstance(gw, VpnGateway)
        strategy = strategy_of(gw)
        addresses = strategy.addresses(s, gw)
        served_by = [tuple(gw.instances)] if strategy.shares_tunnels else [(i,) for i in gw.instances]
        for instances in served_by:
            index = len(plans)
            block = int(s.tunnel_pool.network_address) + 16 * index
            serving = addresses[instances[0]]
            name = t.name if len(served_by) == 1 else f"{t.name}-{gw.instances.index(instances[0])}"
            plans.append(TunnelPlan(
                name=name, device=t.device, gateway=t.gateway, instances=instances,
                gateway_public_ip=serving.public_ip, gateway_bgp_ip=serving.bgp_ip,
                gateway_bgp_passive=serving.bgp_on_loopback,
                device_public_ip=s.nodes[t.device].links[gw.public_ip.network],
                gateway_endpoint=IPv4Address(block + 1), device_endpoint=IPv4Address(block + 2),
                gateway_link_ip=IPv4Address(block + 5), device_link_ip=IPv4Address(block + 6),
                vni=VXLAN_BASE_VNI + index, interface=f"vti{index}", ipsec_policy=t.ipsec_policy,
                **_policy_prefixes(s, t),
            ))
    return plans


def node_asn(s: Scenario, node: str) -> int | None:
    """A node's ASN: its gateway's, its own, or its kind's default (an MSEE's 12076)."""
    for gw in s.gateways.values():
        if node in gw.instances:
            return gw.asn
    spec = s.nodes[node]
    if spec.asn is not None:
        return spec.asn
    kind = KINDS.get(spec.kind)
    default = kind.default("asn") if kind is not None else None
    return default if isinstance(default, int) else None


def _vnet_weights_apply(s: Scenario, router: str) -> bool:
    """Weights between gateway types matter only where one VNet router hears several types."""
    return len({gw.type for gw in s.gateways.values() if gw.vnet_router == router}) > 1


def plan_peering_sessions(s: Scenario) -> list[BgpSessionPlan]:
    """Each listed peering from both ends, each end with its own policy toward the other."""
    sessions = []
    for p in s.peerings:
        circuit = any(able(s.nodes[side.node].kind, Can.EDGE_CIRCUITS) for side in p.sides if side.node in s.nodes)
        for mine, theirs in (p.sides, tuple(reversed(p.sides))):
            sessions.append(BgpSessionPlan(
                node=mine.node, peer_address=s.nodes[theirs.node].links[p.network],
                peer_asn=node_asn(s, theirs.node), source=s.nodes[mine.node].links[p.network],  # type: ignore[arg-type]
                description=f"peering {p.name} to {theirs.node}", multihop=False,
                next_hop_self=mine.next_hop_self, peering=p.name,
                bfd=BfdTimers(interval_ms=p.bfd_interval_ms, multiplier=p.bfd_multiplier) if mine.bfd else None,
                local_pref=mine.local_pref, weight=mine.weight, as_path_prepend=mine.as_path_prepend,
                keepalive_s=p.keepalive_s, hold_s=p.hold_s,
                path=p.path or (f"ExpressRoute {p.name}" if circuit else f"peering {p.name}"),
                carrier="expressroute" if circuit else "vpn" if able(s.nodes[theirs.node].kind, Can.START_TUNNELS)
                else ""))
    return sessions


def plan_bgp_sessions(s: Scenario, tunnels: list[TunnelPlan], tunnel_bfd: BfdTimers | None = None) -> list[BgpSessionPlan]:
    """Every BGP session, from each end: over each tunnel (each instance serving it, and the
    device), each gateway's own (into the VNet, to the MSEEs) and each listed peering. The
    profile's BFD is the default of tunnel sessions and the gateways' VNet sessions only: a
    peering says its own. Renderers only format these."""
    sessions: list[BgpSessionPlan] = []
    for gw_name, gw in s.gateways.items():
        for inst in gw.instances:
            for t in (t for t in tunnels if inst in t.instances):
                device = s.nodes[t.device]
                sessions.append(BgpSessionPlan(
                    node=inst, peer_address=device.bgp_peer_ip, peer_asn=device.asn, source=t.gateway_bgp_ip,
                    description=f"tunnel {t.name} to {t.device}", multihop=True, static_via=t.device_link_ip,
                    tunnel=t.name, passive=t.gateway_bgp_passive, bfd=tunnel_bfd, path=f"VPN tunnel {t.name}",
                    carrier="vpn"))
        gw_type = type_of(gw)
        weighted = _vnet_weights_apply(s, gw.vnet_router)
        sessions += [b if b.node != gw.vnet_router or weighted else b.model_copy(update={"weight": None})
                     for b in gw_type.vnet_sessions(s, gw_name, gw, tunnel_bfd)]
        sessions += gw_type.edge_sessions(s, gw_name, gw)
    for t in tunnels:
        gw = s.gateways[t.gateway]
        sessions.append(BgpSessionPlan(
            node=t.device, peer_address=t.gateway_bgp_ip, peer_asn=gw.asn,
            source=s.nodes[t.device].bgp_peer_ip, description=f"tunnel {t.name} to {t.gateway}", multihop=True,
            static_via=t.gateway_link_ip, tunnel=t.name, bfd=tunnel_bfd, path=f"VPN tunnel {t.name}",
            carrier="vpn"))
    sessions += plan_peering_sessions(s)
    return sessions


def plan_vrrp_groups(s: Scenario) -> list[VrrpGroupPlan]:
    """Address sharing by VRRP: what each gateway's mode asks for, and each LAN's first hop."""
    groups: list[VrrpGroupPlan] = []
    for name, gw in s.gateways.items():
        group = strategy_of(gw).vrrp_group(s, name, gw, FIRST_VRID + len(groups))
        if group is not None:
            groups.append(group)
    for name, hop in s.first_hop.items():
        groups.append(VrrpGroupPlan(
            name=name, vrid=FIRST_VRID + len(groups), routers=tuple(hop.routers), interface=hop.network,
            addresses=((hop.address, s.networks[hop.network].subnet.prefixlen, hop.network),)))
    return groups


def plan_multipath(s: Scenario, tunnels: list[TunnelPlan], sessions: list[BgpSessionPlan]) -> frozenset[str]:
    """Nodes with more than one live path to a prefix: a device with tunnels to several
    instances, an instance with tunnels to several devices, the VNet router of an
    active-active gateway, a router with several eBGP peers (a circuit's two links)."""
    nodes: set[str] = set()
    for name, gw in s.gateways.items():
        if strategy_of(gw).multipath:
            nodes.add(gw.vnet_router)
    tunnel_sessions = Counter(b.node for b in sessions if b.tunnel is not None)
    nodes.update(node for node, count in tunnel_sessions.items() if count > 1)
    # Two eBGP paths outside tunnels (a CE's two circuit links, an MSEE's gateway instances).
    outside = Counter(b.node for b in sessions if b.tunnel is None and b.peer_asn != node_asn(s, b.node))
    nodes.update(node for node, count in outside.items() if count > 1)
    return frozenset(nodes)


def resolve(scenario: Scenario, profile: Profile, lab: str | None = None,
            segments: dict[str, Segment] | None = None) -> LabPlan:
    """The plan; without `segments`, transport subnets are the pool's first (the host decides at `up`)."""
    lab_name = lab or scenario.name
    nodes = {
        name: NodePlan(name=name, kind=node.kind, container=container_name(lab_name, name), links=node.links,
                       zone=node.zone, asn=node_asn(scenario, name))
        for name, node in scenario.nodes.items()
    }
    # The planning pipeline: sites and addresses (the scenario, checked) → tunnels →
    # BGP sessions → address sharing (VRRP) → multipath → segments.
    tunnels = plan_tunnels(scenario)
    sessions = plan_bgp_sessions(scenario, tunnels, profile.bfd)
    return LabPlan(lab=lab_name, scenario=scenario, profile=profile, nodes=nodes, tunnels=tunnels,
                   bgp_sessions=sessions, vrrp_groups=plan_vrrp_groups(scenario),
                   multipath_nodes=plan_multipath(scenario, tunnels, sessions),
                   segments=segments or plan_segments(scenario, lab_name, taken=[]),
                   bridge_prefix=bridge_prefix(lab_name))

