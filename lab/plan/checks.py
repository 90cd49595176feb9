"""The cross-field checks of a scenario (and a profile): each returns a list of problems, so a
user sees all of them at once, each naming its field."""
from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address
from typing import Callable

from lab.model.azure import azure_rules
from lab.model.ipsec import NO_GROUP
from lab.model.kinds import KINDS, Can, able, instance_of, kinds_of_type, kinds_that
from lab.model.limits import lab_limits
from lab.model.schema import Profile, Scenario, Tunnel, VpnGateway
from lab.plan.gateway_types import GATEWAY_TYPES, strategy_of, type_of
from lab.plan.resolve import FIRST_VRID, node_asn, plan_tunnels, plan_vrrp_groups
from lab.plan.zones import check_zones

LAST_VRID = 255  # RFC 5798: a virtual router ID is 1 to 255


def _check_kinds(s: Scenario) -> list[str]:
    return [
        f"nodes.{name}.kind: unknown kind {node.kind!r} (known: {', '.join(sorted(KINDS))})"
        for name, node in s.nodes.items()
        if node.kind not in KINDS
    ]


def _check_links(s: Scenario) -> list[str]:
    problems = []
    owner: dict[IPv4Address, str] = {}
    for name, node in s.nodes.items():
        for net_name, address in node.links.items():
            field = f"nodes.{name}.links.{net_name}"
            net = s.networks.get(net_name)
            if net is None:
                problems.append(f"{field}: unknown network {net_name!r}")
                continue
            if address not in net.subnet or address in (net.subnet.network_address, net.subnet.broadcast_address):
                problems.append(f"{field}: {address} is not a host address of {net.subnet}")
            elif address in owner:
                problems.append(f"{field}: {address} is already taken by {owner[address]}")
            else:
                owner[address] = f"nodes.{name}"
    for gw_name, gw in s.gateways.items():
        if not isinstance(gw, VpnGateway):
            continue
        for field_name in ("public_ip", "bgp_peer_ip"):
            spot: object = getattr(gw, field_name)
            field = f"gateways.{gw_name}.{field_name}"
            net = s.networks.get(spot.network)  # type: ignore[attr-defined]
            if net is None:
                problems.append(f"{field}.network: unknown network {spot.network!r}")  # type: ignore[attr-defined]
            elif spot.address is None:  # type: ignore[attr-defined]
                continue   # each instance's own address (the mode's check decides if that's allowed)
            elif spot.address not in net.subnet:  # type: ignore[attr-defined]
                problems.append(f"{field}.address: {spot.address} is not inside {net.subnet}")  # type: ignore[attr-defined]
            elif spot.address in owner:  # type: ignore[attr-defined]
                problems.append(f"{field}.address: {spot.address} is already taken by {owner[spot.address]}")  # type: ignore[attr-defined]
    return problems


def _check_overlaps(s: Scenario) -> list[str]:
    """Each address space inside another, named from the later of the two in the file.

    CIDR blocks overlap only by nesting, so one sweep in address order, with a stack of the
    blocks that hold the current address, finds each block's innermost holder: n log n, not
    every pair (and a block inside several is said once, with the innermost).
    """
    spaces = [(f"networks.{n}.subnet", net.subnet) for n, net in s.networks.items()]
    spaces.append(("tunnel_pool", s.tunnel_pool))
    pairs: list[tuple[int, int]] = []
    holders: list[int] = []
    for i in sorted(range(len(spaces)), key=lambda i: (spaces[i][1].network_address, spaces[i][1].prefixlen, i)):
        block = spaces[i][1]
        while holders and spaces[holders[-1]][1].broadcast_address < block.network_address:
            holders.pop()
        if holders:
            pairs.append((min(holders[-1], i), max(holders[-1], i)))
        holders.append(i)
    return [f"{spaces[b][0]}: {spaces[b][1]} overlaps {spaces[a][0]} ({spaces[a][1]})" for a, b in sorted(pairs)]


def _check_gateways(s: Scenario) -> list[str]:
    problems = []
    for gw_name, gw in s.gateways.items():
        gw_type = type_of(gw)
        problems.extend(gw_type.check(s, gw_name, gw))
        seen: set[str] = set()
        for i, inst in enumerate(gw.instances):
            field = f"gateways.{gw_name}.instances[{i}]"
            node = s.nodes.get(inst)
            if inst in seen:
                problems.append(f"{field}: {inst} is listed twice")
            seen.add(inst)
            if node is None:
                problems.append(f"{field}: unknown node {inst!r}")
            elif instance_of(node.kind) != gw.type:
                problems.append(f"{field}: {inst} is a {node.kind}, not an {kinds_of_type(gw.type)}")
            elif isinstance(gw, VpnGateway):
                for spot in (gw.public_ip, gw.bgp_peer_ip):
                    if spot.network not in node.links:
                        problems.append(f"nodes.{inst}.links: no link on {spot.network}, where the gateway's address lives")
        router = s.nodes.get(gw.vnet_router)
        inside = gw_type.vnet_network(gw)
        if router is None or not able(router.kind, Can.ROUTE_VNET):
            problems.append(f"gateways.{gw_name}.vnet_router: {gw.vnet_router!r} is not a "
                            f"{kinds_that(Can.ROUTE_VNET)} node")
        elif inside not in router.links:
            problems.append(f"nodes.{gw.vnet_router}.links: no link on {inside}, where it meets the gateway")
        elif router.asn != gw.asn:
            problems.append(f"nodes.{gw.vnet_router}.asn: must equal gateways.{gw_name}.asn ({gw.asn})")
    in_gateways = {i for gw in s.gateways.values() for i in gw.instances}
    for name, node in s.nodes.items():
        if instance_of(node.kind) is not None and name not in in_gateways:
            problems.append(f"nodes.{name}: gateway instance belongs to no gateway")
    return problems


def _check_gateway_types(s: Scenario) -> list[str]:
    """A gateway's `type` is one of the registered types (the model lets only those through)."""
    return [f"gateways.{name}.type: unknown type {gw.type!r} (known: {', '.join(GATEWAY_TYPES)})"
            for name, gw in s.gateways.items() if gw.type not in GATEWAY_TYPES]


def _check_peerings(s: Scenario) -> list[str]:
    problems = []
    seen: set[str] = set()
    for i, p in enumerate(s.peerings):
        field = f"peerings[{i}]"
        if p.name in seen:
            problems.append(f"{field}.name: duplicate peering name {p.name!r}")
        seen.add(p.name)
        if p.network not in s.networks:
            problems.append(f"{field}.network: unknown network {p.network!r}")
        if p.sides[0].node == p.sides[1].node:
            problems.append(f"{field}.sides: {p.sides[0].node} can't peer with itself")
        for j, side in enumerate(p.sides):
            node = s.nodes.get(side.node)
            where = f"{field}.sides[{j}].node"
            if node is None:
                problems.append(f"{where}: unknown node {side.node!r}")
            elif not able(node.kind, Can.ROUTE):
                problems.append(f"{where}: {side.node} is a {node.kind}, which runs no BGP")
            elif p.network not in node.links:
                problems.append(f"{where}: {side.node} has no link on {p.network}")
            elif node_asn(s, side.node) is None:
                problems.append(f"nodes.{side.node}.asn: required for peering {p.name}")
    return problems


def _check_azure_rules(s: Scenario) -> list[str]:
    """Azure's own refusals: reserved ASNs, a device sharing the gateway's ASN, the SKU's tunnel limit."""
    rules = azure_rules()
    reserved = rules.reserved_asns
    problems = []
    gateway_asns = {gw.asn for gw in s.gateways.values()}
    for name, gw in s.gateways.items():
        if gw.asn != reserved.gateway_default and reserved.reserved(gw.asn):
            problems.append(f"gateways.{name}.asn: {gw.asn} is reserved by Azure or IANA ({reserved.source})")
        if not isinstance(gw, VpnGateway):
            continue
        sku = type_of(gw).default_sku(gw)
        limits = rules.skus.limits.get(sku)
        if limits is None:
            problems.append(f"gateways.{name}.sku: unknown SKU {sku!r} (known: {', '.join(rules.skus.limits)})")
            continue
        planned = planned_tunnel_count(s, name)
        if planned > limits.tunnels:
            problems.append(f"gateways.{name}.sku: {sku} takes {limits.tunnels} site-to-site tunnels, "
                            f"{planned} are planned ({rules.skus.source})")
    for name, node in s.nodes.items():
        if node.asn is None or not able(node.kind, Can.START_TUNNELS):
            continue
        if reserved.reserved(node.asn):
            problems.append(f"nodes.{name}.asn: {node.asn} is reserved by Azure or IANA ({reserved.source})")
        elif node.asn in gateway_asns:
            problems.append(f"nodes.{name}.asn: {node.asn} is the gateway's own ASN; an on-premises device needs another")
    for i, t in enumerate(s.tunnels):
        gw = s.gateways.get(t.gateway)
        problems += _check_policy_based(s, i, t)
        if t.ipsec_policy is not None and gw is not None:
            field = f"tunnels[{i}].ipsec_policy"
            problems.extend(rules.custom_policy.problems(t.ipsec_policy, field, gw.sku))
            if t.ipsec_policy.dh_group == NO_GROUP:
                problems.append(f"{field}.dh_group: None is in Azure's list, but an IKEv2 SA always needs a key "
                                "exchange: the lab's gateway (strongSwan) can't build one without a DH group")
    return problems


def _check_policy_based(s: Scenario, i: int, t: Tunnel) -> list[str]:
    """The lab's userspace ESP picks an SA by selector alone: one device can't carry the same
    prefixes over two tunnels. (Both sides' prefixes are required fields of their kinds.)"""
    if not t.policy_based_selectors or t.gateway not in s.gateways:
        return []
    if planned_tunnel_count(s.model_copy(update={"tunnels": [x for x in s.tunnels if x.device == t.device]})) < 2:
        return []
    return [f"tunnels[{i}].policy_based_selectors: {t.device} has more than one tunnel; the lab's userspace ESP "
            "picks an SA by traffic selector alone, so two tunnels can't carry the same prefixes (use route-based)"]


def _check_node_fields(s: Scenario) -> list[str]:
    problems = []
    for name, node in s.nodes.items():
        kind = KINDS.get(node.kind)
        if kind is None:
            continue
        problems += kind.field_problems(name, dict(asn=node.asn, bgp_peer_ip=node.bgp_peer_ip,
                                                   address_space=node.address_space, router=node.router))
        if node.zone is not None and not kind.able(Can.BE_ZONAL):
            problems.append(f"nodes.{name}.zone: a {node.kind} is regional, it goes in no zone")
        if node.router is not None and not any(
            node.router in s.networks[n].subnet for n in node.links if n in s.networks
        ):
            problems.append(f"nodes.{name}.router: {node.router} is on none of the node's networks")
    return problems


def _check_tunnels(s: Scenario) -> list[str]:
    problems = []
    seen: set[str] = set()
    for i, t in enumerate(s.tunnels):
        field = f"tunnels[{i}]"
        if t.name in seen:
            problems.append(f"{field}.name: duplicate tunnel name {t.name!r}")
        seen.add(t.name)
        device = s.nodes.get(t.device)
        if device is None or not able(device.kind, Can.START_TUNNELS):
            problems.append(f"{field}.device: {t.device!r} is not an {kinds_that(Can.START_TUNNELS)} node")
        gw = s.gateways.get(t.gateway)
        if gw is None:
            problems.append(f"{field}.gateway: unknown gateway {t.gateway!r}")
        elif not isinstance(gw, VpnGateway):
            problems.append(f"{field}.gateway: {t.gateway} is an {type_of(gw).summary}; tunnels end on a VPN gateway")
        elif device is not None and gw.public_ip.network not in device.links:
            problems.append(f"{field}.device: {t.device} has no link on {gw.public_ip.network}, where the gateway's public IP is")
    capacity = s.tunnel_pool.num_addresses // 16
    planned = planned_tunnel_count(s)
    if planned > capacity:
        problems.append(f"tunnel_pool: {s.tunnel_pool} holds {capacity} tunnels, {planned} are planned")
    return problems


def _shares_tunnels(gw) -> bool:
    """A gateway whose mode is unknown counts one tunnel per entry (its mode is refused on its own)."""
    return gw.mode not in type_of(gw).modes() or strategy_of(gw).shares_tunnels


def planned_tunnel_count(s: Scenario, gateway: str | None = None) -> int:
    """IKE tunnels the scenario's entries make (of one gateway): one per entry, or one per
    instance when the gateway's instances don't share tunnels."""
    return sum(1 if t.gateway not in s.gateways or _shares_tunnels(s.gateways[t.gateway])
               else len(s.gateways[t.gateway].instances)
               for t in s.tunnels if gateway is None or t.gateway == gateway)


def _check_first_hop(s: Scenario) -> list[str]:
    problems = []
    taken = {address: name for name, node in s.nodes.items() for address in node.links.values()}
    for name, group in s.first_hop.items():
        field = f"first_hop.{name}"
        if name in s.gateways:
            problems.append(f"{field}: a gateway has that name; VRRP groups are named apart from gateways")
        net = s.networks.get(group.network)
        if net is None:
            problems.append(f"{field}.network: unknown network {group.network!r}")
            continue
        if group.address not in net.subnet or group.address in (net.subnet.network_address,
                                                                 net.subnet.broadcast_address):
            problems.append(f"{field}.address: {group.address} is not a host address of {net.subnet}")
        elif group.address in taken and taken[group.address] not in group.routers:
            problems.append(f"{field}.address: {group.address} is already taken by nodes.{taken[group.address]}")
        if len(set(group.routers)) != len(group.routers):
            problems.append(f"{field}.routers: a router is listed twice")
        for i, router in enumerate(group.routers):
            node = s.nodes.get(router)
            if node is None or not able(node.kind, Can.HOLD_FIRST_HOP):
                problems.append(f"{field}.routers[{i}]: {router!r} is not an {kinds_that(Can.HOLD_FIRST_HOP)} node")
            elif group.network not in node.links:
                problems.append(f"{field}.routers[{i}]: {router} has no link on {group.network}")
            elif node.links[group.network] == group.address:
                problems.append(f"{field}.address: {group.address} is {router}'s own address; the shared one must differ")
    return problems


def _check_probes(s: Scenario) -> list[str]:
    problems = []
    for i, pair in enumerate(s.probes):
        for j, name in enumerate(pair):
            node = s.nodes.get(name)
            if node is None or not able(node.kind, Can.SEND_PROBES):
                problems.append(f"probes[{i}][{j}]: {name!r} is not a {kinds_that(Can.SEND_PROBES)} node")
        if pair[0] == pair[1]:
            problems.append(f"probes[{i}]: a host can't probe itself ({pair[0]})")
    return problems


SCENARIO_CHECKS: list[Callable[[Scenario], list[str]]] = [
    _check_kinds,
    _check_links,
    _check_overlaps,
    _check_gateway_types,
    _check_peerings,
    _check_gateways,
    _check_node_fields,
    _check_tunnels,
    _check_first_hop,
    _check_azure_rules,
    check_zones,
    _check_probes,
]


def _check_planned_names(s: Scenario) -> list[str]:
    """Names the plan derives must stay unique (only checked on an otherwise valid scenario)."""
    names = Counter(t.name for t in plan_tunnels(s))
    return [f"tunnels: two tunnels would be named {name!r} (an active-active gateway's tunnels are named "
            "NAME-0, NAME-1, ...): rename one" for name in sorted(n for n, count in names.items() if count > 1)]


def _check_planned_vrids(s: Scenario) -> list[str]:
    """Every VRRP group needs its own router ID (only checked on an otherwise valid scenario)."""
    groups = plan_vrrp_groups(s)
    if not groups or groups[-1].vrid <= LAST_VRID:
        return []
    return [f"first_hop: {len(groups)} VRRP groups (first-hop groups and active-standby gateways) would need "
            f"router IDs {FIRST_VRID} to {groups[-1].vrid}; VRRP's end at {LAST_VRID} (RFC 5798)"]


def _check_counts(s: Scenario) -> list[str]:
    """Nodes, networks and planned tunnels past the lab's limits (lab/model/limits.yaml)."""
    limits = lab_limits()
    counts = {"nodes": (len(s.nodes), "nodes"), "networks": (len(s.networks), "networks"),
              "tunnels": (planned_tunnel_count(s), "planned tunnels")}
    return [limits.refusal(name, f"{name}: {count:,} {what}") for name, (count, what) in counts.items()
            if count > getattr(limits, name).value]


def check_scenario(scenario: Scenario) -> list[str]:
    too_large = _check_counts(scenario)
    if too_large:
        return too_large  # refused at once: the checks below grow with the scenario
    problems: list[str] = []
    for check in SCENARIO_CHECKS:
        problems.extend(check(scenario))
    return problems or _check_planned_names(scenario) + _check_planned_vrids(scenario)


def check_profile(profile: Profile) -> list[str]:
    """Departures from Azure the profile does not own up to, and unknown departure keys."""
    return azure_rules().undeclared_departures(profile)
