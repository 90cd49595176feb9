"""Validated models → a resolved LabPlan, as a pipeline of small named steps: sites and
addresses (the scenario, checked) → tunnels → BGP sessions → address sharing (VRRP) →
multipath → segments. Pure: no I/O."""
from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address, IPv4Network

from lab.model.names import container_name
from lab.model.schema import (
    BgpSessionPlan,
    LabPlan,
    NodePlan,
    Profile,
    Scenario,
    Segment,
    Tunnel,
    TunnelPlan,
    VrrpGroupPlan,
)
from lab.plan.redundancy import strategy_for
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
        strategy = strategy_for(gw.mode)
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


def plan_bgp_sessions(s: Scenario, tunnels: list[TunnelPlan]) -> list[BgpSessionPlan]:
    """Every BGP session, from each end: over each tunnel (each instance serving it, and the
    device), and iBGP between each instance and its VNet router. Renderers only format these."""
    sessions: list[BgpSessionPlan] = []
    for gw_name, gw in s.gateways.items():
        router = s.nodes[gw.vnet_router]
        inside = gw.bgp_peer_ip.network
        for inst in gw.instances:
            for t in (t for t in tunnels if inst in t.instances):
                device = s.nodes[t.device]
                sessions.append(BgpSessionPlan(
                    node=inst, peer_address=device.bgp_peer_ip, peer_asn=device.asn, source=t.gateway_bgp_ip,
                    description=f"tunnel {t.name} to {t.device}", multihop=True, static_via=t.device_link_ip,
                    tunnel=t.name, passive=t.gateway_bgp_passive))
            sessions.append(BgpSessionPlan(
                node=inst, peer_address=router.links[inside], peer_asn=gw.asn, source=s.nodes[inst].links[inside],
                description=f"VNet routing ({gw.vnet_router})", multihop=False, next_hop_self=True))
    for t in tunnels:
        gw = s.gateways[t.gateway]
        sessions.append(BgpSessionPlan(
            node=t.device, peer_address=t.gateway_bgp_ip, peer_asn=gw.asn,
            source=s.nodes[t.device].bgp_peer_ip, description=f"tunnel {t.name} to {t.gateway}", multihop=True,
            static_via=t.gateway_link_ip, tunnel=t.name))
    for gw_name, gw in s.gateways.items():
        for inst in gw.instances:
            sessions.append(BgpSessionPlan(
                node=gw.vnet_router, peer_address=s.nodes[inst].links[gw.bgp_peer_ip.network], peer_asn=gw.asn,
                source=s.nodes[gw.vnet_router].links[gw.bgp_peer_ip.network], description=f"gateway instance {inst}",
                multihop=False))
    return sessions



def plan_vrrp_groups(s: Scenario) -> list[VrrpGroupPlan]:
    """Address sharing by VRRP: what each gateway's mode asks for, and each LAN's first hop."""
    groups: list[VrrpGroupPlan] = []
    for name, gw in s.gateways.items():
        group = strategy_for(gw.mode).vrrp_group(s, name, gw, FIRST_VRID + len(groups))
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
    active-active gateway."""
    nodes: set[str] = set()
    for name, gw in s.gateways.items():
        if strategy_for(gw.mode).multipath:
            nodes.add(gw.vnet_router)
    tunnel_sessions = Counter(b.node for b in sessions if b.tunnel is not None)
    nodes.update(node for node, count in tunnel_sessions.items() if count > 1)
    return frozenset(nodes)


def resolve(scenario: Scenario, profile: Profile, lab: str | None = None,
            segments: dict[str, Segment] | None = None) -> LabPlan:
    """The plan; without `segments`, transport subnets are the pool's first (the host decides at `up`)."""
    lab_name = lab or scenario.name
    nodes = {
        name: NodePlan(name=name, kind=node.kind, container=container_name(lab_name, name), links=node.links, zone=node.zone)
        for name, node in scenario.nodes.items()
    }
    # The planning pipeline: sites and addresses (the scenario, checked) → tunnels →
    # BGP sessions → address sharing (VRRP) → multipath → segments.
    tunnels = plan_tunnels(scenario)
    sessions = plan_bgp_sessions(scenario, tunnels)
    return LabPlan(lab=lab_name, scenario=scenario, profile=profile, nodes=nodes, tunnels=tunnels,
                   bgp_sessions=sessions, vrrp_groups=plan_vrrp_groups(scenario),
                   multipath_nodes=plan_multipath(scenario, tunnels, sessions),
                   segments=segments or plan_segments(scenario, lab_name, taken=[]),
                   bridge_prefix=bridge_prefix(lab_name))

