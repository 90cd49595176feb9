"""Scenario and profile files → validated models → a resolved LabPlan.

Reads like a pipeline of small named checks; every check adds to one list
of problems, so a user sees all of them at once, each naming its field.
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Callable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lab.model.azure import azure_rules
from lab.model.ipsec import NO_GROUP
from lab.model import names
from lab.model.errors import TopologyError
from lab.model.names import check_lab_name
from lab.model.kinds import KINDS, Role, has_role, kind_name_of
from lab.model.limits import lab_limits
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

M = TypeVar("M", bound=BaseModel)
VXLAN_BASE_VNI = 100


def builtin_scenarios() -> list[str]:
    folder = resources.files("lab") / "scenarios"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_profiles() -> list[str]:
    folder = resources.files("lab") / "profiles"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _locate(name_or_path: str, folder: str, known: list[str]) -> tuple[str, str]:
    """Returns (label, text) for a built-in name or a file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise TopologyError(str(path), ["no such file"])
        return path.name, _read_text(path.name, path)
    if name_or_path not in known:
        raise TopologyError(name_or_path, [f"unknown {folder[:-1]} (known: {', '.join(known)})"])
    label = f"{name_or_path}.yaml"
    return label, _read_text(label, resources.files("lab") / folder / label)


def _read_text(label: str, source: Path | Traversable) -> str:
    """The file's text; refused in one line when it is too large or not UTF-8."""
    limits = lab_limits()
    most = limits.file_bytes.value
    try:
        with source.open("rb") as file:
            data = file.read(most + 1)  # no more: a huge file is never read whole
            size = file.seek(0, io.SEEK_END)
    except OSError as exc:
        raise TopologyError(label, [f"can't read it ({exc.strerror or exc})"]) from None
    if len(data) > most:
        raise TopologyError(label, [limits.refusal("file_bytes", f"{size:,} bytes")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TopologyError(label, [f"line {line}, byte {exc.start} (0x{data[exc.start]:02x}): not UTF-8 text "
                                    f"({exc.reason}); scenarios and profiles are UTF-8"]) from None


@dataclass
class _OpenCollection:
    anchor: str | None
    level: int
    nodes_before: int  # the document's expanded node count when it opened
    deepest: int       # the deepest level inside it so far


def _check_yaml_bounds(label: str, text: str) -> None:
    """Refuses YAML nested deeper, or larger once aliases are expanded, than the limits: before
    it is composed, by walking the parser's events (no recursion). PyYAML composes recursively
    (a RecursionError near 500 levels), and an alias is one node to safe_load but its whole
    anchor to whatever walks the data: a few lines of aliases (a billion laughs) stand for 10^9."""
    limits = lab_limits()
    expanded = 0
    anchored: dict[str, tuple[int, int]] = {}  # anchor -> its nodes, and the levels it spans
    opened: list[_OpenCollection] = []

    def refuse(limit: str, found: str) -> TopologyError:
        return TopologyError(label, [limits.refusal(limit, f"line {event.start_mark.line + 1}: {found}")])

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            done = opened.pop()
            if done.anchor is not None:
                anchored[done.anchor] = (expanded - done.nodes_before, done.deepest - done.level + 1)
            if opened:
                opened[-1].deepest = max(opened[-1].deepest, done.deepest)
            continue
        if isinstance(event, yaml.AliasEvent):
            if any(c.anchor == event.anchor for c in opened):
                raise refuse("yaml_nodes", f"*{event.anchor} lies inside its own anchor, so it expands without end")
            nodes, levels = anchored.get(event.anchor, (1, 0))  # an unknown one: the composer says so
        elif isinstance(event, yaml.CollectionStartEvent):
            opened.append(_OpenCollection(event.anchor, len(opened) + 1, expanded, len(opened) + 1))
            nodes, levels = 1, 0
        elif isinstance(event, yaml.ScalarEvent):
            nodes, levels = 1, 0
            if event.anchor is not None:
                anchored[event.anchor] = (1, 0)
        else:
            continue  # stream and document boundaries
        expanded += nodes
        reached = len(opened) + levels
        if reached > limits.yaml_depth.value:
            raise refuse("yaml_depth", f"nested {reached} levels deep")
        if expanded > limits.yaml_nodes.value:
            raise refuse("yaml_nodes", f"{expanded:,} YAML nodes so far, aliases expanded")
        if opened:
            opened[-1].deepest = max(opened[-1].deepest, reached)


def _parse(label: str, text: str, model: type[M]) -> M:
    try:
        _check_yaml_bounds(label, text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise TopologyError(label, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    except ValueError as exc:  # a constructor's: a date like 2024-13-01, an integer of over 4,300 digits
        raise TopologyError(label, [f"not valid YAML ({exc})"]) from None
    if not isinstance(raw, dict):
        raise TopologyError(label, ["expected a mapping at the top level"])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise TopologyError(label, [_describe(err) for err in exc.errors()]) from None


def _field_part(part: object) -> str:
    text = str(part)
    return text if names.KEY.problem(text) is None else repr(text)


def _describe(err: dict) -> str:
    """One line per pydantic error; a name a user typed is shown escaped (it may hold a newline)."""
    loc = list(err["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc.pop()
    field = ".".join(_field_part(part) for part in loc) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    elif err["type"] == "missing":
        message = "required field is missing"
    value = err.get("input")
    shown = ""
    if err["type"] not in ("missing", "extra_forbidden", "value_error") and isinstance(value, (str, int, float)):
        shown = f" (got {value!r})"
    return f"{field}{' (name)' if is_key else ''}: {message}{shown}"


def load_scenario(name_or_path: str) -> tuple[str, Scenario]:
    label, text = _locate(name_or_path, "scenarios", builtin_scenarios())
    scenario = _parse(label, text, Scenario)
    problems = check_scenario(scenario)
    if problems:
        raise TopologyError(label, problems)
    return label, scenario


def load_profile(name_or_path: str) -> Profile:
    label, text = _locate(name_or_path, "profiles", builtin_profiles())
    profile = _parse(label, text, Profile)
    problems = azure_rules().undeclared_departures(profile)
    if problems:
        raise TopologyError(label, problems)
    return profile


# --- cross-field checks: each returns a list of problems ---------------------------


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
        problems.extend(strategy_for(gw.mode).check(s, gw_name, gw))
        for i, inst in enumerate(gw.instances):
            field = f"gateways.{gw_name}.instances[{i}]"
            node = s.nodes.get(inst)
            if node is None:
                problems.append(f"{field}: unknown node {inst!r}")
            elif not has_role(node.kind, Role.GATEWAY_INSTANCE):
                problems.append(f"{field}: {inst} is a {node.kind}, not an {kind_name_of(Role.GATEWAY_INSTANCE)}")
            else:
                for spot in (gw.public_ip, gw.bgp_peer_ip):
                    if spot.network not in node.links:
                        problems.append(f"nodes.{inst}.links: no link on {spot.network}, where the gateway's address lives")
        router = s.nodes.get(gw.vnet_router)
        if router is None or not has_role(router.kind, Role.VNET_ROUTER):
            problems.append(f"gateways.{gw_name}.vnet_router: {gw.vnet_router!r} is not a "
                            f"{kind_name_of(Role.VNET_ROUTER)} node")
        elif gw.bgp_peer_ip.network not in router.links:
            problems.append(f"nodes.{gw.vnet_router}.links: no link on {gw.bgp_peer_ip.network}, where it meets the gateway")
        elif router.asn != gw.asn:
            problems.append(f"nodes.{gw.vnet_router}.asn: must equal gateways.{gw_name}.asn ({gw.asn})")
    in_gateways = {i for gw in s.gateways.values() for i in gw.instances}
    for name, node in s.nodes.items():
        if has_role(node.kind, Role.GATEWAY_INSTANCE) and name not in in_gateways:
            problems.append(f"nodes.{name}: gateway instance belongs to no gateway")
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
        limits = rules.skus.limits.get(gw.sku)
        if limits is None:
            problems.append(f"gateways.{name}.sku: unknown SKU {gw.sku!r} (known: {', '.join(rules.skus.limits)})")
            continue
        planned = planned_tunnel_count(s, name)
        if planned > limits.tunnels:
            problems.append(f"gateways.{name}.sku: {gw.sku} takes {limits.tunnels} site-to-site tunnels, "
                            f"{planned} are planned ({rules.skus.source})")
    for name, node in s.nodes.items():
        if node.asn is None or not has_role(node.kind, Role.VPN_DEVICE):
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
        for field in kind.required_fields:
            if getattr(node, field) in (None, []):
                problems.append(f"nodes.{name}.{field}: required for a {node.kind}")
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
        if device is None or not has_role(device.kind, Role.VPN_DEVICE):
            problems.append(f"{field}.device: {t.device!r} is not an {kind_name_of(Role.VPN_DEVICE)} node")
        gw = s.gateways.get(t.gateway)
        if gw is None:
            problems.append(f"{field}.gateway: unknown gateway {t.gateway!r}")
        elif device is not None and gw.public_ip.network not in device.links:
            problems.append(f"{field}.device: {t.device} has no link on {gw.public_ip.network}, where the gateway's public IP is")
    capacity = s.tunnel_pool.num_addresses // 16
    planned = planned_tunnel_count(s)
    if planned > capacity:
        problems.append(f"tunnel_pool: {s.tunnel_pool} holds {capacity} tunnels, {planned} are planned")
    return problems


def planned_tunnel_count(s: Scenario, gateway: str | None = None) -> int:
    """IKE tunnels the scenario's entries make (of one gateway): one per entry, or one per
    instance when the gateway's instances don't share tunnels."""
    return sum(1 if t.gateway not in s.gateways or strategy_for(s.gateways[t.gateway].mode).shares_tunnels
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
            if node is None or not has_role(node.kind, Role.VPN_DEVICE):
                problems.append(f"{field}.routers[{i}]: {router!r} is not an {kind_name_of(Role.VPN_DEVICE)} node")
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
            if node is None or not has_role(node.kind, Role.WORKLOAD_HOST):
                problems.append(f"probes[{i}][{j}]: {name!r} is not a {kind_name_of(Role.WORKLOAD_HOST)} node")
        if pair[0] == pair[1]:
            problems.append(f"probes[{i}]: a host can't probe itself ({pair[0]})")
    return problems


SCENARIO_CHECKS: list[Callable[[Scenario], list[str]]] = [
    _check_kinds,
    _check_links,
    _check_overlaps,
    _check_gateways,
    _check_node_fields,
    _check_tunnels,
    _check_first_hop,
    _check_azure_rules,
    _check_probes,
]


def _check_planned_names(s: Scenario) -> list[str]:
    """Names the plan derives must stay unique (only checked on an otherwise valid scenario)."""
    names = Counter(t.name for t in plan_tunnels(s))
    return [f"tunnels: two tunnels would be named {name!r} (an active-active gateway's tunnels are named "
            "NAME-0, NAME-1, ...): rename one" for name in sorted(n for n, count in names.items() if count > 1)]


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


# --- resolution ----------------------------------------------------------------------


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


# VRRP router IDs: gateways first, then LAN first-hop groups, each its own.
FIRST_VRID = 51
LAST_VRID = 255  # RFC 5798: a virtual router ID is 1 to 255


def _check_planned_vrids(s: Scenario) -> list[str]:
    """Every VRRP group needs its own router ID (only checked on an otherwise valid scenario)."""
    groups = plan_vrrp_groups(s)
    if not groups or groups[-1].vrid <= LAST_VRID:
        return []
    return [f"first_hop: {len(groups)} VRRP groups (first-hop groups and active-standby gateways) would need "
            f"router IDs {FIRST_VRID} to {groups[-1].vrid}; VRRP's end at {LAST_VRID} (RFC 5798)"]


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
        name: NodePlan(name=name, kind=node.kind, container=f"lab-{lab_name}-{name}", links=node.links, zone=node.zone)
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


def load_plan(scenario: str, profile: str | None = None, lab: str | None = None) -> LabPlan:
    if lab is not None:
        check_lab_name(lab, "--lab")
    _, model = load_scenario(scenario)
    return resolve(model, load_profile(profile or model.profile), lab)
