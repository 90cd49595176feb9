"""A lab's topology laid out from its plan (pure: no I/O, no Docker), and drawn as SVG or PNG.

`layout(plan)` places every node, network, tunnel, BGP session, ExpressRoute circuit, VRRP group
and zone of a `LabPlan` on one canvas; `render_svg` and `render_png` draw that same `Topology`,
and `Topology.as_dict()` gives it to the browser console, which colours the SVG by live state.

Where things go, left to right (read from each kind's capabilities, never its name):
on-premises hosts | on-premises routers | MSEEs (the circuit's peering location) | gateway
instances, grouped per gateway | the VNet router | Azure's hosts. Each network sits between the
columns of the nodes on it. Rows follow the links (barycentres), packed so no two boxes meet.
Where nodes are placed in zones, the columns from the first to the last zonal node are cut into
one band per Azure zone (1, 2, 3, an empty zone too) and, below them, the regional rest.

SVG ids (each a valid XML id; `xml_id` builds them, the same way in as_dict()):
  node-NAME            <g class="node kind-KIND role-ROLE" data-node="NAME">: a <rect>,
                       <text class="label">, <text class="caption">, and an empty
                       <text class="state" id="state-NAME"> for the console to fill
  net-NAME             <g class="network" data-network="NAME">
  link-NODE.NET        <line class="link">: a node's link on a network
  tunnel-NAME          <path class="tunnel" data-tunnel="NAME">: one sub-path per gateway instance
                       that can serve it (two behind an active-standby gateway's shared IP)
  bgp-A.B[.VIA]        <path class="bgp via-KIND[ bfd]" data-a data-b>: one per pair of nodes (A, B
                       in sorted order) and tunnel or peering (VIA) the session rides; KIND is
                       tunnel, peering, vnet (a gateway with the VNet router) or backbone (an
                       ExpressRoute gateway with an MSEE); `bfd` where the session runs BFD
  circuit-PEERING      <path class="circuit primary|secondary">: an ExpressRoute circuit's link
  location-GATEWAY     <g class="location">: the frame around a circuit's MSEEs
  gateway-NAME         <g class="gateway">: the frame around a gateway's instances
  vrrp-NAME            <g class="vrrp">: the frame around routers sharing a VRRP address
  zone-N               <g class="zone" data-zone="N">: an availability zone's band
  legend               <g class="legend">
A name is kept as it is when it is plain [A-Za-z0-9-]; any other character becomes _HEX_, and the
parts of a compound id are joined by '.', so ids are unique for any names (names never hold '.').

as_dict() (JSON-ready; x, y are a box's centre, w, h its size, in the SVG's units):
  scenario, description, profile, width, height
  nodes        [{id, name, kind, role, label, caption, zone, gateway, state_id, x, y, w, h}]
  networks     [{id, name, subnet, members, x, y, w, h}]
  links        [{id, node, network, address}]
  tunnels      [{id, name, device, gateway, instances, connections: {node: IKE connection name}}]
  bgp_sessions [{id, a, b, peers: {node: the peer address that node configures}, bfd, kind, tunnel, peering}]
  circuit      {gateway, msees, location: frame, links: [{id, peering, network, ce, msee, role}]} or null
               (the first ExpressRoute gateway's; `circuits` lists every one)
  gateways     [frame]   frame = {id, name, members, lines, x, y, w, h}
  vrrp_groups  [{id, name, members, address, addresses, network (where its adverts go)}]
  zones        [{id, zone, nodes, x, y, w, h}]: zones 1-3 when any node is placed in one, else []
A live event maps back with tunnel_at(node, connection) (VICI's ike-updown) and sessions_at(node,
peer address) (FRR's neighbour): several sessions share one end where the peer is a shared address
(an active-standby gateway's VIP: one per instance behind it).
"""
from __future__ import annotations

import io
import re
from dataclasses import asdict, dataclass, field
from html import escape
from math import hypot
from typing import Iterable

from lab.model.azure import azure_rules
from lab.model.kinds import Can, able, instance_of
from lab.model.schema import ExpressRouteGateway, LabPlan, TunnelPlan
from lab.plan.gateway_types import type_of
from lab.plan.gateway_types.expressroute import circuit_peerings, msee_side

# --- the model the renderers and the console share ---------------------------------


@dataclass(frozen=True)
class Box:
    """A rectangle by its centre and size, in SVG user units (pixels), y pointing down."""
    x: float
    y: float
    w: float
    h: float

    @property
    def left(self) -> float:
        return self.x - self.w / 2

    @property
    def right(self) -> float:
        return self.x + self.w / 2

    @property
    def top(self) -> float:
        return self.y - self.h / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h / 2

    def overlaps(self, other: "Box", margin: float = 0.0) -> bool:
        return (self.left - margin < other.right and other.left - margin < self.right
                and self.top - margin < other.bottom and other.top - margin < self.bottom)

    def holds(self, x: float, y: float, margin: float = 0.0) -> bool:
        return self.left - margin <= x <= self.right + margin and self.top - margin <= y <= self.bottom + margin


Point = tuple[float, float]


@dataclass(frozen=True)
class Curve:
    """A quadratic Bézier from `start` to `end` (a straight line when `control` is their midpoint)."""
    start: Point
    control: Point
    end: Point

    def at(self, t: float) -> Point:
        (x0, y0), (x1, y1), (x2, y2) = self.start, self.control, self.end
        u = 1 - t
        return (u * u * x0 + 2 * u * t * x1 + t * t * x2, u * u * y0 + 2 * u * t * y1 + t * t * y2)


@dataclass(frozen=True)
class NodeView:
    id: str
    name: str
    kind: str
    role: str                # the column: onprem-host, onprem-router, edge, instance, vnet, azure-host
    label: str               # the big line: the node's name
    caption: str             # the small line: its ASN or address, and its zone
    zone: int | None
    gateway: str | None      # the gateway it is an instance of
    box: Box


@dataclass(frozen=True)
class NetworkView:
    id: str
    name: str
    subnet: str
    members: tuple[str, ...]
    box: Box


@dataclass(frozen=True)
class LinkView:
    id: str
    node: str
    network: str
    address: str


@dataclass(frozen=True)
class TunnelView:
    id: str
    name: str
    device: str
    gateway: str
    instances: tuple[str, ...]
    # The IKE connection (and CHILD_SA) name each end's strongSwan uses: what VICI's ike-updown names.
    connections: tuple[tuple[str, str], ...]
    # One curve per instance that can serve the tunnel, device first.
    curves: tuple[tuple[str, Curve], ...]


@dataclass(frozen=True)
class SessionView:
    id: str
    a: str
    b: str
    # The peer address each end configures (its BgpSessionPlan.peer_address): FRR's neighbour there.
    peers: tuple[tuple[str, str], ...]
    bfd: bool
    kind: str                # tunnel, peering, vnet or backbone
    tunnel: str | None
    peering: str | None
    curve: Curve


@dataclass(frozen=True)
class CircuitLinkView:
    id: str
    peering: str
    network: str
    ce: str
    msee: str
    role: str                # primary or secondary
    points: tuple[Point, ...]


@dataclass(frozen=True)
class FrameView:
    """A rounded frame around nodes: a gateway's instances, a VRRP group, a circuit's MSEEs."""
    id: str
    name: str
    members: tuple[str, ...]
    lines: tuple[str, ...]   # its caption (above for gateways and locations, below for VRRP)
    box: Box


@dataclass(frozen=True)
class CircuitView:
    gateway: str
    links: tuple[CircuitLinkView, ...]
    msees: tuple[str, ...]
    location: FrameView


@dataclass(frozen=True)
class VrrpView:
    name: str
    members: tuple[str, ...]
    addresses: tuple[str, ...]
    network: str
    frame: FrameView


@dataclass(frozen=True)
class ZoneView:
    id: str
    zone: int
    nodes: tuple[str, ...]
    box: Box


@dataclass(frozen=True)
class Topology:
    scenario: str
    description: str
    profile: str
    width: float
    height: float
    nodes: tuple[NodeView, ...]
    networks: tuple[NetworkView, ...]
    links: tuple[LinkView, ...]
    tunnels: tuple[TunnelView, ...]
    sessions: tuple[SessionView, ...]
    circuits: tuple[CircuitView, ...]
    gateways: tuple[FrameView, ...]
    vrrp_groups: tuple[VrrpView, ...]
    zones: tuple[ZoneView, ...]
    # Roles present, in column order, each with the kinds that play it (the legend's rows).
    roles: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def node(self, name: str) -> NodeView:
        return next(n for n in self.nodes if n.name == name)

    def tunnel_at(self, node: str, connection: str) -> str | None:
        """The id of the tunnel a node's IKE connection of that name is (a VICI event's), or None."""
        return next((t.id for t in self.tunnels if dict(t.connections).get(node) == connection), None)

    def sessions_at(self, node: str, peer_address: str) -> list[str]:
        """The ids of the BGP sessions a node configures toward that peer address (an FRR event's)."""
        return [s.id for s in self.sessions if dict(s.peers).get(node) == peer_address]

    def as_dict(self) -> dict:
        """JSON-ready, for the console: every object with the id of what draws it in the SVG."""
        def box(b: Box) -> dict:
            return {"x": round(b.x, 1), "y": round(b.y, 1), "w": round(b.w, 1), "h": round(b.h, 1)}

        def frame(f: FrameView) -> dict:
            return {"id": f.id, "name": f.name, "members": list(f.members), "lines": list(f.lines), **box(f.box)}

        circuits = [{"gateway": c.gateway, "msees": list(c.msees), "location": frame(c.location),
                     "links": [{"id": link.id, "peering": link.peering, "network": link.network, "ce": link.ce,
                                "msee": link.msee, "role": link.role} for link in c.links]}
                    for c in self.circuits]
        return {
            "scenario": self.scenario, "description": self.description, "profile": self.profile,
            "width": round(self.width, 1), "height": round(self.height, 1),
            "nodes": [{"id": n.id, "name": n.name, "kind": n.kind, "role": n.role, "label": n.label,
                       "caption": n.caption, "zone": n.zone, "gateway": n.gateway, "state_id": xml_id("state", n.name),
                       **box(n.box)} for n in self.nodes],
            "networks": [{"id": n.id, "name": n.name, "subnet": n.subnet, "members": list(n.members), **box(n.box)}
                         for n in self.networks],
            "links": [asdict(link) for link in self.links],
            "tunnels": [{"id": t.id, "name": t.name, "device": t.device, "gateway": t.gateway,
                         "instances": list(t.instances), "connections": dict(t.connections)} for t in self.tunnels],
            "bgp_sessions": [{"id": s.id, "a": s.a, "b": s.b, "peers": dict(s.peers), "bfd": s.bfd, "kind": s.kind,
                              "tunnel": s.tunnel, "peering": s.peering} for s in self.sessions],
            "circuit": circuits[0] if circuits else None,
            "circuits": circuits,
            "gateways": [frame(g) for g in self.gateways],
            "vrrp_groups": [{"id": v.frame.id, "name": v.name, "members": list(v.members),
                             "address": v.addresses[0] if v.addresses else None, "addresses": list(v.addresses),
                             "network": v.network} for v in self.vrrp_groups],
            "zones": [{"id": z.id, "zone": z.zone, "nodes": list(z.nodes), **box(z.box)} for z in self.zones],
        }


# --- ids ---------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9-]")


def _id_part(text: str) -> str:
    return "".join(c if _PLAIN.fullmatch(c) else f"_{ord(c):x}_" for c in text)


def xml_id(prefix: str, *parts: str) -> str:
    """`prefix-PART.PART...`: a valid XML id, one for each (prefix, parts) (see the module's docstring)."""
    assert re.fullmatch(r"[a-z]+", prefix), prefix
    return f"{prefix}-{'.'.join(_id_part(p) for p in parts)}"


def css_class(text: str) -> str:
    return _id_part(text)


# --- sizes (px) ----------------------------------------------------------------------

FONT = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"
LABEL_PX, CAPTION_PX, SMALL_PX, TITLE_PX = 12.0, 10.0, 10.0, 15.0
NODE_H, NET_H = 50.0, 34.0
V_GAP, H_GAP, MARGIN = 18.0, 34.0, 24.0
FRAME_PAD, LINE_H = 7.0, 12.0
ZONE_HEADER, ZONE_PAD, ZONE_EMPTY = 6.0, 14.0, 30.0

# Advance widths in em of DejaVu Sans (the widest of the usual sans-serif faces), for sizing boxes.
_EM = {**{c: 0.636 for c in "0123456789"}, "i": 0.278, "l": 0.278, "j": 0.278, "f": 0.352, "t": 0.392,
       "r": 0.411, "m": 0.974, "w": 0.818, "-": 0.361, ".": 0.318, ",": 0.318, " ": 0.318, ":": 0.337,
       "/": 0.337, "(": 0.390, ")": 0.390, "·": 0.318}


def text_width(text: str, px: float, bold: bool = False) -> float:
    em = sum(_EM.get(c, 0.72 if c.isupper() else 0.62) for c in text)
    return em * px * (1.14 if bold else 1.02)


# --- roles: which column a node goes in ---------------------------------------------

ROLES = ("onprem-host", "onprem-router", "edge", "instance", "vnet", "azure-host")
ROLE_TITLES = {"onprem-host": "on-premises host", "onprem-router": "on-premises router",
               "edge": "MSEE at a peering location", "instance": "gateway instance", "vnet": "VNet router",
               "azure-host": "Azure host"}
_AZURE = {"edge", "instance", "vnet", "azure-host"}


def _roles(plan: LabPlan) -> dict[str, str]:
    roles: dict[str, str] = {}
    for name, node in plan.nodes.items():
        if instance_of(node.kind) is not None:
            roles[name] = "instance"
        elif able(node.kind, Can.EDGE_CIRCUITS):
            roles[name] = "edge"
        elif able(node.kind, Can.ROUTE_VNET):
            roles[name] = "vnet"
    for name, node in plan.nodes.items():
        if name in roles:
            continue
        if not able(node.kind, Can.SEND_PROBES):
            roles[name] = "onprem-router"
            continue
        # A host is on the side of its router (or of the Azure nodes on its networks).
        router = plan.scenario.nodes[name].router
        owners = [o for o, other in plan.nodes.items() if o != name and
                  (router in other.links.values() if router is not None else set(other.links) & set(node.links))]
        roles[name] = "azure-host" if any(roles.get(o) in _AZURE for o in owners) else "onprem-host"
    return roles


# --- sessions paired, tunnels' connection names --------------------------------------


def connection_name(tunnel: TunnelPlan) -> str:
    """The strongSwan connection (and CHILD_SA) a tunnel is at both ends (templates/swanctl.conf.j2)."""
    return tunnel.name


@dataclass
class _Pair:
    a: str
    b: str
    via: str | None
    kind: str
    tunnel: str | None
    peering: str | None
    peers: dict[str, str] = field(default_factory=dict)
    bfd: bool = False


def _session_pairs(plan: LabPlan) -> list[_Pair]:
    """Each BGP session once per pair of nodes (and tunnel or peering), with the peer address at each end."""
    tunnels = {t.name: t for t in plan.tunnels}
    peerings = {p.name: p for p in plan.scenario.peerings}
    pairs: dict[tuple[str, str, str | None], _Pair] = {}
    for s in plan.bgp_sessions:
        if s.tunnel is not None:
            t = tunnels[s.tunnel]
            others = list(t.instances) if s.node == t.device else [t.device]
        elif s.peering is not None:
            others = [side.node for side in peerings[s.peering].sides if side.node != s.node]
        else:
            others = [n for n, node in plan.nodes.items() if n != s.node and s.peer_address in node.links.values()]
            if not others:  # a shared address: the VRRP group's routers
                others = [r for g in plan.vrrp_groups for a, _, _ in g.addresses if a == s.peer_address
                          for r in g.routers]
        for other in others:
            a, b = sorted((s.node, other))
            via = s.tunnel or s.peering
            if s.tunnel:
                kind = "tunnel"
            elif s.peering:
                kind = "peering"
            elif any(able(plan.nodes[n].kind, Can.ROUTE_VNET) for n in (a, b)):
                kind = "vnet"
            else:
                kind = "backbone"
            pair = pairs.setdefault((a, b, via), _Pair(a, b, via, kind, s.tunnel, s.peering))
            pair.peers[s.node] = str(s.peer_address)
            pair.bfd = pair.bfd or s.bfd is not None
    return list(pairs.values())


# --- layout --------------------------------------------------------------------------


@dataclass
class _Item:
    key: str                  # "n:NAME" or "w:NETWORK"
    w: float
    h: float
    order: int                # plan order, for ties
    stripe: int | None = None  # the zone band it must sit in (None: regional)
    y: float = 0.0
    above: float = 0.0        # room its frames need above and below it
    below: float = 0.0


def _pack(items: list[_Item], desired: list[float]) -> list[float]:
    """Ys as close to `desired` (least squares) as keeping `items` apart in this order allows (PAVA)."""
    offsets = [0.0]
    for upper, lower in zip(items, items[1:]):
        offsets.append(offsets[-1] + upper.h / 2 + upper.below + V_GAP + lower.above + lower.h / 2)
    blocks: list[list[float]] = []  # [sum, count]
    for d, o in zip(desired, offsets):
        blocks.append([d - o, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    fitted = [s / c for s, c in blocks for _ in range(int(c))]
    return [z + o for z, o in zip(fitted, offsets)]


def _span(items: list[_Item]) -> tuple[float, float]:
    return items[0].y - items[0].h / 2 - items[0].above, items[-1].y + items[-1].h / 2 + items[-1].below


def _caption(plan: LabPlan, name: str) -> str:
    node = plan.nodes[name]
    parts = [f"AS {node.asn}"] if node.asn is not None else [str(next(iter(node.links.values())))]
    if node.zone is not None:
        parts.append(f"zone {node.zone}")
    return " · ".join(parts)


def layout(plan: LabPlan) -> Topology:
    """Every node, network, tunnel, BGP session, circuit, VRRP group and zone of the plan, placed."""
    roles = _roles(plan)
    order = {name: i for i, name in enumerate(plan.nodes)}
    gateway_of = {i: g for g, gw in plan.scenario.gateways.items() for i in gw.instances}
    gateway_rank = {g: i for i, g in enumerate(plan.scenario.gateways)}
    columns = [r for r in ROLES if r in roles.values()]
    col = {name: columns.index(role) for name, role in roles.items()}
    captions = {name: _caption(plan, name) for name in plan.nodes}

    # Networks: between the columns of the nodes on them (or in a node column, when that is between).
    members = {net: tuple(n for n, node in plan.nodes.items() if net in node.links) for net in plan.scenario.networks}
    slot_of: dict[str, int] = {}
    for name in plan.nodes:
        slot_of[f"n:{name}"] = 2 * col[name]
    last = 2 * (len(columns) - 1)
    for net, on in members.items():
        if not on:
            slot_of[f"w:{net}"] = min(1, last)
            continue
        low, high = min(col[n] for n in on), max(col[n] for n in on)
        slot_of[f"w:{net}"] = low + high if low != high else (2 * low + 1 if 2 * low < last else max(2 * low - 1, 0))

    items: dict[str, _Item] = {}
    for name in plan.nodes:
        width = max(text_width(name, LABEL_PX, bold=True), text_width(captions[name], CAPTION_PX)) + 20
        items[f"n:{name}"] = _Item(f"n:{name}", max(width, 96.0), NODE_H, order[name], plan.nodes[name].zone)
    for i, net in enumerate(plan.scenario.networks):
        subnet = str(plan.scenario.networks[net].subnet)
        width = max(text_width(net, SMALL_PX + 1, bold=True), text_width(subnet, SMALL_PX)) + 22
        items[f"w:{net}"] = _Item(f"w:{net}", max(width, 84.0), NET_H, len(order) + i)

    frames = _frames(plan)

    # Zone bands: over the slots from the first to the last holding a zonal node.
    zone_numbers = list(azure_rules().zones.numbers)
    zoned = [n for n, node in plan.nodes.items() if node.zone in zone_numbers]
    band = (min(slot_of[f"n:{n}"] for n in zoned), max(slot_of[f"n:{n}"] for n in zoned)) if zoned else None
    slots: dict[int, list[_Item]] = {}
    for key, item in items.items():
        slots.setdefault(slot_of[key], []).append(item)
    in_band = {s for s in slots if band is not None and band[0] <= s <= band[1]}
    for s in slots:
        for it in slots[s]:
            it.stripe = it.stripe if s in in_band and it.stripe in zone_numbers else None

    # Neighbours: a node and the networks it is on; a tunnel's ends pull each other too.
    neighbours: dict[str, list[str]] = {k: [] for k in items}
    for name, node in plan.nodes.items():
        for net in node.links:
            neighbours[f"n:{name}"].append(f"w:{net}")
            neighbours[f"w:{net}"].append(f"n:{name}")
    for t in plan.tunnels:
        for inst in t.instances:
            neighbours[f"n:{t.device}"].append(f"n:{inst}")
            neighbours[f"n:{inst}"].append(f"n:{t.device}")

    instance_rank = {i: (gateway_rank[g], gw.instances.index(i))
                     for g, gw in plan.scenario.gateways.items() for i in gw.instances}
    # The gateway instances' column keeps the plan's order (gateways in turn), and so does every
    # column under zone bands; the others follow their links.
    fixed = ({2 * columns.index("instance")} if "instance" in columns else set()) | in_band
    framed = {k: (fi, f.keys.index(k)) for fi, f in reversed(list(enumerate(frames))) for k in f.keys}

    def groups_of(s: int) -> list[list[_Item]]:
        """The slot's items by stripe: each zone's band in turn, then the rest (all one group outside bands)."""
        if s not in in_band:
            return [slots[s]]
        return [[it for it in slots[s] if it.stripe == z] for z in zone_numbers] + \
               [[it for it in slots[s] if it.stripe is None]]

    def order_slot(s: int, desired: dict[str, float]) -> list[list[_Item]]:
        groups = groups_of(s)
        for group in groups:
            if s in fixed:
                group.sort(key=lambda it: (instance_rank.get(it.key[2:], (len(gateway_rank), 0)), it.order))
                continue
            # A frame's members move as one (at their mean), so no other item comes between them.
            spots: dict[int, list[float]] = {}
            for it in group:
                if it.key in framed:
                    spots.setdefault(framed[it.key][0], []).append(desired.get(it.key, it.y))

            def key(it: _Item) -> tuple:
                if it.key not in framed:
                    return (desired.get(it.key, it.y), 0, 0, it.order)
                fi, index = framed[it.key]
                return (sum(spots[fi]) / len(spots[fi]), 1 + fi, index, it.order)
            group.sort(key=key)
        # Each frame's room goes above its top member and below its bottom one, as now ordered.
        flat = [it for group in groups for it in group]
        for it in flat:
            it.above = it.below = 0.0
        for f in frames:
            mine = [it for it in flat if it.key in f.keys]
            if mine:
                above, below = f.room()
                mine[0].above += above
                mine[-1].below += below
        return groups

    def clamp(group: list[_Item], gi: int) -> None:
        header = ZONE_HEADER if gi < len(zone_numbers) else ZONE_PAD / 2
        lo, hi = stripe_top[gi] + header, stripe_top[gi] + stripe_h[gi] - ZONE_PAD / 2
        top, bottom = _span(group)
        shift = lo - top if top < lo or bottom - top > hi - lo else (hi - bottom if bottom > hi else 0.0)
        for it in group:
            it.y += shift

    def arrange(s: int, desired: dict[str, float]) -> None:
        for gi, group in enumerate(order_slot(s, desired)):
            if not group:
                continue
            for it, y in zip(group, _pack(group, [desired.get(it.key, it.y) for it in group])):
                it.y = y
            if s in in_band:
                clamp(group, gi)

    # Stripe heights: the tallest stack any band slot puts in each (band slots keep their order).
    stripe_h: list[float] = []
    for gi in range(len(zone_numbers) + 1):
        tallest = 0.0
        for s in in_band:
            group = order_slot(s, {})[gi]
            if group:
                for it, y in zip(group, _pack(group, [0.0] * len(group))):
                    it.y = y
                top, bottom = _span(group)
                tallest = max(tallest, bottom - top)
        if gi < len(zone_numbers):
            stripe_h.append(ZONE_HEADER + (tallest + ZONE_PAD / 2 if tallest else ZONE_EMPTY))
        else:
            stripe_h.append(tallest + ZONE_PAD if tallest else 0.0)
    stripe_top = [sum(stripe_h[:i]) for i in range(len(stripe_h))]

    for s in sorted(slots):  # a first stack, in plan order
        slots[s].sort(key=lambda it: it.order)
        arrange(s, {it.key: i * (NODE_H + V_GAP) for i, it in enumerate(slots[s])})
    sweep = sorted(slots)
    for rnd in range(8):
        for s in (sweep if rnd % 2 == 0 else sweep[::-1]):
            desired = {}
            for it in slots[s]:
                near = [items[k].y for k in neighbours[it.key] if slot_of[k] != s]
                desired[it.key] = sum(near) / len(near) if near else it.y
            arrange(s, desired)

    # x: each slot as wide as its widest item or frame caption.
    widths = {s: max([it.w for it in slots.get(s, [])] + [f.caption_width for f in frames if slot_of[f.keys[0]] == s]
                     + [0.0]) for s in range(last + 1)}
    for s in range(last + 1):
        if s % 2 == 1 and not slots.get(s):
            widths[s] = 30.0
    xs: dict[int, float] = {}
    x = MARGIN + 8
    # A band's captions get a column of their own, left of its slots: no frame crosses them.
    label_w = max(text_width(f"zone {z}", SMALL_PX, bold=True) for z in zone_numbers) + 12 + 2 * FRAME_PAD
    for s in range(last + 1):
        if band is not None and s == band[0]:
            x += label_w
        xs[s] = x + widths[s] / 2
        x += widths[s] + H_GAP
    content_w = x - H_GAP + 8 + MARGIN

    # y: everything below the title, whose height depends on the width (the description wraps).
    width = max(content_w, 720.0)
    title_lines = _title_lines(plan, width)
    top_of_content = MARGIN + TITLE_PX + len(title_lines) * (SMALL_PX + 4) + 22
    tops = [it.y - it.h / 2 - it.above for it in items.values()]
    if band is not None:
        tops.append(0.0)
    shift = top_of_content - min(tops)
    boxes: dict[str, Box] = {}
    for key, it in items.items():
        boxes[key] = Box(xs[slot_of[key]], it.y + shift, it.w, it.h)

    nodes = tuple(NodeView(xml_id("node", n), n, node.kind, roles[n], n, captions[n], node.zone, gateway_of.get(n),
                           boxes[f"n:{n}"]) for n, node in plan.nodes.items())
    networks = tuple(NetworkView(xml_id("net", net), net, str(plan.scenario.networks[net].subnet), members[net],
                                 boxes[f"w:{net}"]) for net in plan.scenario.networks)
    links = tuple(LinkView(xml_id("link", n, net), n, net, str(address))
                  for n, node in plan.nodes.items() for net, address in node.links.items())

    frame_views: dict[str, FrameView] = {}
    for f in frames:
        frame_views[f.id] = f.view(boxes, list(frame_views.values()))
    zones: list[ZoneView] = []
    if band is not None:
        band_left = xs[band[0]] - widths[band[0]] / 2 - label_w
        band_right = max(xs[s] + widths[s] / 2 for s in range(band[0], band[1] + 1)) + ZONE_PAD + 2
        for gi, z in enumerate(zone_numbers):
            zones.append(ZoneView(xml_id("zone", str(z)), z, tuple(n for n in plan.nodes if plan.nodes[n].zone == z),
                                  Box((band_left + band_right) / 2, stripe_top[gi] + shift + stripe_h[gi] / 2,
                                      band_right - band_left, stripe_h[gi] - 4)))

    obstacles = [(k, b) for k, b in boxes.items()]
    router = _Router(obstacles)
    pairs = _session_pairs(plan)
    tunnel_curves: dict[tuple[str, str], Curve] = {}
    tunnels = []
    for t in plan.tunnels:
        curves = []
        for inst in t.instances:
            curve = router.route(boxes[f"n:{t.device}"], boxes[f"n:{inst}"], (f"n:{t.device}", f"n:{inst}"))
            tunnel_curves[(t.name, inst)] = curve
            curves.append((inst, curve))
        name = connection_name(t)
        tunnels.append(TunnelView(xml_id("tunnel", t.name), t.name, t.device, t.gateway, t.instances,
                                  tuple([(t.device, name)] + [(i, name) for i in t.instances]), tuple(curves)))
    sessions = []
    for p in pairs:
        if p.tunnel is not None:
            inst = p.b if p.a == next(t.device for t in plan.tunnels if t.name == p.tunnel) else p.a
            curve = tunnel_curves[(p.tunnel, inst)]
        else:
            curve = router.route(boxes[f"n:{p.a}"], boxes[f"n:{p.b}"], (f"n:{p.a}", f"n:{p.b}"))
        sessions.append(SessionView(xml_id("bgp", p.a, p.b, *([p.via] if p.via else [])), p.a, p.b,
                                    tuple(sorted(p.peers.items())), p.bfd, p.kind, p.tunnel, p.peering, curve))

    circuits = []
    for g, gw in plan.scenario.gateways.items():
        if not isinstance(gw, ExpressRouteGateway):
            continue
        links_ = []
        for i, peering in enumerate(circuit_peerings(plan.scenario, gw)):
            side = msee_side(plan.scenario, peering)
            if side is None:
                continue
            msee, ce = peering.sides[side].node, peering.sides[1 - side].node
            pts = tuple((b.x, b.y) for b in (boxes[f"n:{ce}"], boxes[f"w:{peering.network}"], boxes[f"n:{msee}"]))
            links_.append(CircuitLinkView(xml_id("circuit", peering.name), peering.name, peering.network, ce, msee,
                                          "primary" if i == 0 else "secondary", pts))
        location = frame_views.get(xml_id("location", g))
        if location is not None:
            circuits.append(CircuitView(g, tuple(links_), tuple(link.msee for link in links_), location))
    gateways = tuple(frame_views[xml_id("gateway", g)] for g in plan.scenario.gateways
                     if xml_id("gateway", g) in frame_views)
    vrrp = tuple(VrrpView(g.name, g.routers, tuple(str(a) for a, _, _ in g.addresses), g.interface,
                          frame_views[xml_id("vrrp", g.name)]) for g in plan.vrrp_groups)

    everything = [b for b in boxes.values()] + [f.box for f in frame_views.values()] + [z.box for z in zones]
    height = max(b.bottom for b in everything) + 28
    legend_h = _legend_height(plan, roles, width, bool(zones), bool(circuits), bool(vrrp))
    kinds_by_role = tuple((r, tuple(sorted({plan.nodes[n].kind for n in plan.nodes if roles[n] == r})))
                          for r in columns)
    return Topology(plan.scenario.name, plan.scenario.description, plan.profile.name, width, height + legend_h,
                    nodes, networks, links, tuple(tunnels), tuple(sessions), tuple(circuits), gateways, vrrp,
                    tuple(zones), kinds_by_role)


@dataclass
class _Frame:
    id: str
    name: str
    keys: list[str]
    lines: tuple[str, ...]
    below: bool               # caption under the members (VRRP) or over them
    caption_width: float = 0.0

    def __post_init__(self) -> None:
        self.caption_width = max(text_width(line, SMALL_PX, bold=(i == 0 and not self.below))
                                 for i, line in enumerate(self.lines)) + 2 * FRAME_PAD + 8

    @property
    def caption_h(self) -> float:
        return len(self.lines) * LINE_H + 2

    def room(self) -> tuple[float, float]:
        """What the frame adds above its top member and below its bottom one."""
        return (FRAME_PAD + (0.0 if self.below else self.caption_h), FRAME_PAD + (self.caption_h if self.below else 0.0))

    def view(self, boxes: dict[str, Box], inner: list[FrameView]) -> FrameView:
        """Around its members and the frames already drawn around some of them (those come first)."""
        mine = {k[2:] for k in self.keys}
        held = [boxes[k] for k in self.keys] + [f.box for f in inner if set(f.members) <= mine]
        left, right = min(b.left for b in held) - FRAME_PAD, max(b.right for b in held) + FRAME_PAD
        above, below = self.room()
        top = min(b.top for b in held) - above
        bottom = max(b.bottom for b in held) + below
        width = max(right - left, self.caption_width)
        return FrameView(self.id, self.name, tuple(k[2:] for k in self.keys), self.lines,
                         Box((left + right) / 2, (top + bottom) / 2, width, bottom - top))


def _frames(plan: LabPlan) -> list[_Frame]:
    """The frames drawn around nodes, inner ones first: gateways, circuits' peering locations, VRRP groups."""
    frames: list[_Frame] = []
    for g, gw in plan.scenario.gateways.items():
        frames.append(_Frame(xml_id("gateway", g), g, [f"n:{i}" for i in gw.instances],
                             (g, f"{type_of(gw).summary}, {gw.mode}"), False))
        if isinstance(gw, ExpressRouteGateway):
            msees = [p.sides[s].node for p in circuit_peerings(plan.scenario, gw)
                     for s in [msee_side(plan.scenario, p)] if s is not None]
            if msees:
                frames.append(_Frame(xml_id("location", g), g, [f"n:{m}" for m in dict.fromkeys(msees)],
                                     ("peering location", f"circuit of {g}"), False))
    for grp in plan.vrrp_groups:
        addresses = [str(a) for a, _, _ in grp.addresses]
        lines = (f"VRRP {addresses[0]}" if addresses else "VRRP", *addresses[1:])
        frames.append(_Frame(xml_id("vrrp", grp.name), grp.name, [f"n:{r}" for r in grp.routers], lines, True))
    return frames


def zone_lines(z: ZoneView) -> tuple[str, ...]:
    """A zone band's caption, in its own column at the band's left."""
    return (f"zone {z.zone}",) if z.nodes else (f"zone {z.zone}", "no node")


def _title_lines(plan: LabPlan, width: float) -> list[str]:
    return _wrap(plan.scenario.description, width - 2 * MARGIN, SMALL_PX + 1, 3)


def _wrap(text: str, width: float, px: float, most: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if text_width(candidate, px) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = lines[-1].rstrip(".,;") + " …"
    return [ln if text_width(ln, px) <= width else ln[: int(width / (px * 0.64))] + "…" for ln in lines]


# --- routing the curves ----------------------------------------------------------------


class _Router:
    """Bends each tunnel and session just enough to miss the boxes between its ends and the curves before it."""
    BOWS = (0.0, 26.0, -26.0, 48.0, -48.0, 72.0, -72.0, 100.0, -100.0, 135.0, -135.0)

    def __init__(self, obstacles: list[tuple[str, Box]]):
        self.obstacles = obstacles
        self.drawn: list[Point] = []

    def route(self, a: Box, b: Box, ends: tuple[str, str]) -> Curve:
        (x0, y0), (x1, y1) = (a.x, a.y), (b.x, b.y)
        length = hypot(x1 - x0, y1 - y0) or 1.0
        nx, ny = -(y1 - y0) / length, (x1 - x0) / length
        best: tuple[float, Curve] | None = None
        for bow in self.BOWS:
            # The control point is twice as far out as the curve's middle.
            curve = Curve((x0, y0), ((x0 + x1) / 2 + 2 * bow * nx, (y0 + y1) / 2 + 2 * bow * ny), (x1, y1))
            samples = [curve.at(i / 40) for i in range(1, 40)]
            outside = [p for p in samples if not a.holds(*p, 2) and not b.holds(*p, 2)]
            hits = sum(1 for p in outside for k, box in self.obstacles if k not in ends and box.holds(*p, 6))
            close = sum(1 for p in outside[::2] for q in self.drawn if abs(p[0] - q[0]) < 7 and abs(p[1] - q[1]) < 7)
            cost = hits * 1000 + close * 40 + abs(bow)
            if best is None or cost < best[0]:
                best = (cost, curve)
        assert best is not None
        chosen = best[1]
        self.drawn += [chosen.at(i / 40) for i in range(1, 40)]
        return chosen


# --- the legend --------------------------------------------------------------------------

ROLE_COLOURS = {  # fill, stroke
    "onprem-host": ("#eef5ea", "#4e7d3a"), "onprem-router": ("#e2ecf8", "#2f5f96"),
    "edge": ("#fcebd3", "#a86400"), "instance": ("#e9e5f8", "#5a4ca8"),
    "vnet": ("#dcf0f1", "#23747c"), "azure-host": ("#eef5ea", "#4e7d3a"),
}
TUNNEL_COLOUR, BGP_COLOUR, CIRCUIT_COLOUR = "#8fb8e8", "#1f4e8c", "#f2b35c"
LINK_COLOUR, NET_FILL, NET_STROKE = "#9a9a9a", "#f4f4f4", "#6d6d6d"
ZONE_FILL, ZONE_STROKE, VRRP_STROKE, GATEWAY_STROKE = "#fff8dc", "#d9c27a", "#2f8f4e", "#8c82c4"


def _legend_entries(roles_present: Iterable[str], kinds: dict[str, list[str]], zones: bool, circuit: bool,
                    vrrp: bool, tunnels: bool, bfd: bool) -> list[tuple[str, str]]:
    """(symbol, text) pairs: a symbol per role present, then each kind of line and frame drawn."""
    entries = [(f"role:{r}", f"{ROLE_TITLES[r]} ({', '.join(kinds[r])})") for r in roles_present]
    entries += [("network", "network (subnet)"), ("link", "link")]
    if tunnels:
        entries.append(("tunnel", "IPsec tunnel (IKEv2)"))
    entries.append(("bgp", "BGP session"))
    if bfd:
        entries.append(("bfd", "BGP session with BFD"))
    if circuit:
        entries.append(("circuit", "ExpressRoute circuit link"))
    entries.append(("gateway", "gateway (its instances)"))
    if vrrp:
        entries.append(("vrrp", "VRRP group (shared address)"))
    if zones:
        entries.append(("zone", "availability zone"))
    return entries


LEGEND_ROW, LEGEND_SYMBOL = 18.0, 30.0


def _legend_rows(entries: list[tuple[str, str]], width: float) -> list[list[tuple[str, str, float]]]:
    rows: list[list[tuple[str, str, float]]] = [[]]
    x = MARGIN
    for symbol, text in entries:
        w = LEGEND_SYMBOL + 6 + text_width(text, SMALL_PX) + 18
        if rows[-1] and x + w > width - MARGIN:
            rows.append([])
            x = MARGIN
        rows[-1].append((symbol, text, x))
        x += w
    return rows


def _legend_for(topo: Topology) -> list[list[tuple[str, str, float]]]:
    kinds = {r: list(k) for r, k in topo.roles}
    entries = _legend_entries([r for r, _ in topo.roles], kinds, bool(topo.zones), bool(topo.circuits),
                              bool(topo.vrrp_groups), bool(topo.tunnels), any(s.bfd for s in topo.sessions))
    return _legend_rows(entries, topo.width)


def _legend_height(plan: LabPlan, roles: dict[str, str], width: float, zones: bool, circuit: bool,
                   vrrp: bool) -> float:
    present = [r for r in ROLES if r in roles.values()]
    kinds = {r: sorted({plan.nodes[n].kind for n in plan.nodes if roles[n] == r}) for r in present}
    entries = _legend_entries(present, kinds, zones, circuit, vrrp, bool(plan.tunnels),
                              any(s.bfd for s in plan.bgp_sessions))
    return len(_legend_rows(entries, width)) * LEGEND_ROW + 30


def _legend_top(topo: Topology) -> float:
    return topo.height - len(_legend_for(topo)) * LEGEND_ROW - 14


# --- SVG -------------------------------------------------------------------------------

_STYLE = f"""
svg {{ font-family: {FONT}; }}
.background {{ fill: #ffffff; }}
.title {{ font-size: {TITLE_PX}px; font-weight: bold; fill: #202020; }}
.description {{ font-size: {SMALL_PX + 1}px; fill: #404040; }}
.node rect {{ stroke-width: 1.5; }}
.node .label {{ font-size: {LABEL_PX}px; font-weight: bold; fill: #1a1a1a; text-anchor: middle; }}
.node .caption {{ font-size: {CAPTION_PX}px; fill: #505050; text-anchor: middle; }}
.node .state {{ font-size: {CAPTION_PX}px; fill: #1a1a1a; text-anchor: middle; font-style: italic; }}
{chr(10).join(f'.role-{r} rect {{ fill: {f}; stroke: {s}; }}' for r, (f, s) in ROLE_COLOURS.items())}
.network rect {{ fill: {NET_FILL}; stroke: {NET_STROKE}; stroke-width: 1; }}
.network .label {{ font-size: {SMALL_PX + 1}px; font-weight: bold; fill: #303030; text-anchor: middle; }}
.network .subnet {{ font-size: {SMALL_PX}px; fill: #505050; text-anchor: middle; }}
.link {{ stroke: {LINK_COLOUR}; stroke-width: 1.2; }}
.tunnel, .legend-tunnel {{ fill: none; stroke: {TUNNEL_COLOUR}; stroke-width: 9; stroke-linecap: round; opacity: 0.75; }}
.bgp, .legend-bgp {{ fill: none; stroke: {BGP_COLOUR}; stroke-width: 1.6; stroke-dasharray: 5 3; }}
.bgp.bfd, .legend-bgp.legend-bfd {{ stroke-width: 2.6; stroke-dasharray: 9 2 2 2; }}
.circuit, .legend-circuit {{ fill: none; stroke: {CIRCUIT_COLOUR}; stroke-width: 10; stroke-linecap: round;
  stroke-linejoin: round; opacity: 0.8; }}
.zone rect {{ fill: {ZONE_FILL}; stroke: {ZONE_STROKE}; stroke-width: 1; }}
.zone text {{ font-size: {SMALL_PX}px; fill: #7a6520; font-weight: bold; }}
.zone .zone-note {{ font-size: {SMALL_PX - 1}px; font-weight: normal; }}
.gateway rect, .location rect {{ fill: none; stroke: {GATEWAY_STROKE}; stroke-width: 1.2; }}
.location rect {{ stroke: #c08a3a; }}
.gateway text, .location text {{ font-size: {SMALL_PX}px; fill: #3d3470; }}
.location text {{ fill: #7a4f10; }}
.frame-title {{ font-weight: bold; }}
.vrrp rect {{ fill: none; stroke: {VRRP_STROKE}; stroke-width: 1.4; stroke-dasharray: 4 3; }}
.vrrp text {{ font-size: {SMALL_PX}px; fill: {VRRP_STROKE}; }}
.legend text {{ font-size: {SMALL_PX}px; fill: #303030; }}
.legend .legend-frame {{ fill: #fafafa; stroke: #d0d0d0; }}
"""


def _n(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _attr(text: str) -> str:
    return escape(text, quote=True)


def _path_d(curve: Curve) -> str:
    (x0, y0), (cx, cy), (x1, y1) = curve.start, curve.control, curve.end
    return f"M{_n(x0)},{_n(y0)} Q{_n(cx)},{_n(cy)} {_n(x1)},{_n(y1)}"


def _text(x: float, y: float, text: str, cls: str, extra: str = "") -> str:
    return f'<text class="{cls}" x="{_n(x)}" y="{_n(y)}"{extra}>{escape(text, quote=False)}</text>'


def render_svg(topo: Topology) -> str:
    """The topology as one self-contained SVG document (inline style only, a generic font family)."""
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(topo.width)}" height="{_n(topo.height)}" '
        f'viewBox="0 0 {_n(topo.width)} {_n(topo.height)}" role="img" aria-labelledby="graph-title">',
        f'<title id="graph-title">{escape(f"{topo.scenario}: {topo.description}", quote=False)}</title>',
        f"<style>{_STYLE}</style>",
        f'<rect class="background" x="0" y="0" width="{_n(topo.width)}" height="{_n(topo.height)}"/>',
        '<g id="graph-heading">',
        _text(MARGIN, MARGIN + TITLE_PX - 3, f"{topo.scenario}  ·  profile {topo.profile}", "title"),
    ]
    for i, line in enumerate(_wrap(topo.description, topo.width - 2 * MARGIN, SMALL_PX + 1, 3)):
        out.append(_text(MARGIN, MARGIN + TITLE_PX + 14 + i * (SMALL_PX + 4), line, "description"))
    out.append("</g>")

    out.append('<g id="layer-zones">')
    for z in topo.zones:
        b = z.box
        lines = "".join(_text(b.left + 6, b.top + 14 + i * LINE_H, line, "zone-label" if i == 0 else "zone-note")
                        for i, line in enumerate(zone_lines(z)))
        out.append(f'<g id="{z.id}" class="zone" data-zone="{z.zone}"><rect x="{_n(b.left)}" y="{_n(b.top)}" '
                   f'width="{_n(b.w)}" height="{_n(b.h)}" rx="6"/>{lines}</g>')
    out.append("</g>")

    out.append('<g id="layer-frames">')
    for f, cls in [(g, "gateway") for g in topo.gateways] + [(c.location, "location") for c in topo.circuits]:
        out.append(_frame_svg(f, cls, below=False))
    for v in topo.vrrp_groups:
        out.append(_frame_svg(v.frame, "vrrp", below=True))
    out.append("</g>")

    out.append('<g id="layer-circuits">')
    for c in topo.circuits:
        for link in c.links:
            pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in link.points)
            out.append(f'<polyline id="{link.id}" class="circuit {link.role}" data-peering="{_attr(link.peering)}" '
                       f'points="{pts}"/>')
    out.append("</g>")

    nodes = {n.name: n for n in topo.nodes}
    nets = {n.name: n for n in topo.networks}
    out.append('<g id="layer-links">')
    for link in topo.links:
        a, b = nodes[link.node].box, nets[link.network].box
        out.append(f'<line id="{link.id}" class="link" x1="{_n(a.x)}" y1="{_n(a.y)}" x2="{_n(b.x)}" y2="{_n(b.y)}"/>')
    out.append("</g>")

    out.append('<g id="layer-tunnels">')
    for t in topo.tunnels:
        d = " ".join(_path_d(c) for _, c in t.curves)
        out.append(f'<path id="{t.id}" class="tunnel" data-tunnel="{_attr(t.name)}" d="{d}"/>')
    out.append("</g>")

    out.append('<g id="layer-sessions">')
    for s in topo.sessions:
        cls = f"bgp via-{s.kind}" + (" bfd" if s.bfd else "")
        out.append(f'<path id="{s.id}" class="{cls}" data-a="{_attr(s.a)}" data-b="{_attr(s.b)}" '
                   f'd="{_path_d(s.curve)}"/>')
    out.append("</g>")

    out.append('<g id="layer-networks">')
    for net in topo.networks:
        b = net.box
        out.append(f'<g id="{net.id}" class="network" data-network="{_attr(net.name)}">'
                   f'<rect x="{_n(b.left)}" y="{_n(b.top)}" width="{_n(b.w)}" height="{_n(b.h)}" rx="{_n(b.h / 2)}"/>'
                   f'{_text(b.x, b.y - 2, net.name, "label")}{_text(b.x, b.y + 11, net.subnet, "subnet")}</g>')
    out.append("</g>")

    out.append('<g id="layer-nodes">')
    for n in topo.nodes:
        b = n.box
        out.append(f'<g id="{n.id}" class="node kind-{css_class(n.kind)} role-{n.role}" data-node="{_attr(n.name)}">'
                   f'<rect x="{_n(b.left)}" y="{_n(b.top)}" width="{_n(b.w)}" height="{_n(b.h)}" rx="5"/>'
                   f'{_text(b.x, b.y - 8, n.label, "label")}{_text(b.x, b.y + 6, n.caption, "caption")}'
                   f'<text class="state" id="{xml_id("state", n.name)}" x="{_n(b.x)}" y="{_n(b.y + 19)}"></text></g>')
    out.append("</g>")

    out.append(_legend_svg(topo))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _frame_svg(f: FrameView, cls: str, below: bool) -> str:
    b = f.box
    parts = [f'<g id="{f.id}" class="{cls}" data-name="{_attr(f.name)}">'
             f'<rect x="{_n(b.left)}" y="{_n(b.top)}" width="{_n(b.w)}" height="{_n(b.h)}" rx="8"/>']
    for i, line in enumerate(f.lines):
        y = (b.bottom - (len(f.lines) - i) * LINE_H + 6) if below else (b.top + 12 + i * LINE_H)
        parts.append(_text(b.left + FRAME_PAD, y, line, "frame-title" if i == 0 and not below else "frame-line"))
    parts.append("</g>")
    return "".join(parts)


def _legend_svg(topo: Topology) -> str:
    rows = _legend_for(topo)
    top = _legend_top(topo)
    out = ['<g id="legend" class="legend">',
           f'<rect class="legend-frame" x="{_n(MARGIN - 8)}" y="{_n(top - 10)}" width="{_n(topo.width - 2 * MARGIN + 16)}"'
           f' height="{_n(len(rows) * LEGEND_ROW + 8)}" rx="4"/>']
    for r, row in enumerate(rows):
        y = top + r * LEGEND_ROW + 4
        for symbol, text, x in row:
            out.append(_legend_symbol_svg(symbol, x, y))
            out.append(_text(x + LEGEND_SYMBOL + 6, y + 3.5, text, "legend-text"))
    out.append("</g>")
    return "".join(out)


def _legend_symbol_svg(symbol: str, x: float, y: float) -> str:
    x2 = x + LEGEND_SYMBOL
    if symbol.startswith("role:"):
        fill, stroke = ROLE_COLOURS[symbol[5:]]
        return f'<rect x="{_n(x + 4)}" y="{_n(y - 6)}" width="22" height="12" rx="2" fill="{fill}" stroke="{stroke}"/>'
    line = f'x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x2)}" y2="{_n(y)}"'
    return {
        "network": f'<rect x="{_n(x + 2)}" y="{_n(y - 6)}" width="26" height="12" rx="6" fill="{NET_FILL}" '
                   f'stroke="{NET_STROKE}"/>',
        "link": f'<line {line} stroke="{LINK_COLOUR}" stroke-width="1.2"/>',
        "tunnel": f'<line {line} class="legend-tunnel"/>',
        "bgp": f'<line {line} class="legend-bgp"/>',
        "bfd": f'<line {line} class="legend-bgp legend-bfd"/>',
        "circuit": f'<line {line} class="legend-circuit"/>',
        "gateway": f'<rect x="{_n(x + 2)}" y="{_n(y - 6)}" width="26" height="12" rx="3" fill="none" '
                   f'stroke="{GATEWAY_STROKE}"/>',
        "vrrp": f'<rect x="{_n(x + 2)}" y="{_n(y - 6)}" width="26" height="12" rx="3" fill="none" '
                f'stroke="{VRRP_STROKE}" stroke-dasharray="4 3"/>',
        "zone": f'<rect x="{_n(x + 2)}" y="{_n(y - 6)}" width="26" height="12" rx="2" fill="{ZONE_FILL}" '
                f'stroke="{ZONE_STROKE}"/>',
    }[symbol]


# --- PNG (matplotlib, the Agg canvas: no display, no pyplot state) ----------------------

PNG_SCALE = 2.0  # pixels of PNG per SVG unit


def render_png(topo: Topology) -> bytes:
    """The same topology drawn by matplotlib, as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch, PathPatch, Rectangle
    from matplotlib.path import Path as MPath

    dpi = 72.0 * PNG_SCALE  # one SVG unit is one point: font sizes carry over as they are
    fig = Figure(figsize=(topo.width / 72.0, topo.height / 72.0), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, topo.width)
    ax.set_ylim(topo.height, 0)
    ax.axis("off")
    family = ["DejaVu Sans", "sans-serif"]

    def text(x, y, s, size, colour="#1a1a1a", weight="normal", ha="left", style="normal", z=10):
        ax.text(x, y, s, fontsize=size, color=colour, fontweight=weight, ha=ha, va="baseline", family=family,
                fontstyle=style, zorder=z)

    def rounded(b: Box, fill, edge, lw, radius, dash=None, z=1):
        ax.add_patch(FancyBboxPatch((b.left + radius, b.top + radius), b.w - 2 * radius, b.h - 2 * radius,
                                    boxstyle=f"round,pad={radius}", facecolor=fill, edgecolor=edge, linewidth=lw,
                                    linestyle=(0, dash) if dash else "solid", zorder=z))

    def curve(c: Curve, colour, lw, alpha=1.0, dash=None, z=3, cap="round"):
        path = MPath([c.start, c.control, c.end], [MPath.MOVETO, MPath.CURVE3, MPath.CURVE3])
        ax.add_patch(PathPatch(path, facecolor="none", edgecolor=colour, linewidth=lw, alpha=alpha,
                               linestyle=(0, dash) if dash else "solid", capstyle=cap, zorder=z))

    text(MARGIN, MARGIN + TITLE_PX - 3, f"{topo.scenario}  ·  profile {topo.profile}", TITLE_PX, weight="bold")
    for i, line in enumerate(_wrap(topo.description, topo.width - 2 * MARGIN, SMALL_PX + 1, 3)):
        text(MARGIN, MARGIN + TITLE_PX + 14 + i * (SMALL_PX + 4), line, SMALL_PX + 1, "#404040")
    for z in topo.zones:
        rounded(z.box, ZONE_FILL, ZONE_STROKE, 1.0, 6, z=0)
        for i, line in enumerate(zone_lines(z)):
            text(z.box.left + 6, z.box.top + 14 + i * LINE_H, line, SMALL_PX - (1 if i else 0), "#7a6520",
                 "normal" if i else "bold", z=1)
    for f, edge, colour in ([(g, GATEWAY_STROKE, "#3d3470") for g in topo.gateways]
                            + [(c.location, "#c08a3a", "#7a4f10") for c in topo.circuits]):
        rounded(f.box, "none", edge, 1.2, 8)
        for i, line in enumerate(f.lines):
            text(f.box.left + FRAME_PAD, f.box.top + 12 + i * LINE_H, line, SMALL_PX, colour,
                 "bold" if i == 0 else "normal", z=2)
    for v in topo.vrrp_groups:
        b = v.frame.box
        rounded(b, "none", VRRP_STROKE, 1.4, 8, dash=(4, 3))
        for i, line in enumerate(v.frame.lines):
            text(b.left + FRAME_PAD, b.bottom - (len(v.frame.lines) - i) * LINE_H + 6, line, SMALL_PX, VRRP_STROKE,
                 z=2)
    for c in topo.circuits:
        for link in c.links:
            xs, ys = zip(*link.points)
            ax.plot(xs, ys, color=CIRCUIT_COLOUR, linewidth=10, alpha=0.8, solid_capstyle="round",
                    solid_joinstyle="round", zorder=2)
    nodes = {n.name: n for n in topo.nodes}
    nets = {n.name: n for n in topo.networks}
    for link in topo.links:
        a, b = nodes[link.node].box, nets[link.network].box
        ax.plot([a.x, b.x], [a.y, b.y], color=LINK_COLOUR, linewidth=1.2, zorder=3)
    for t in topo.tunnels:
        for _, c in t.curves:
            curve(c, TUNNEL_COLOUR, 9, alpha=0.75, z=4)
    for s in topo.sessions:
        curve(s.curve, BGP_COLOUR, 2.6 if s.bfd else 1.6, dash=(9, 2, 2, 2) if s.bfd else (5, 3), z=5, cap="butt")
    for net in topo.networks:
        rounded(net.box, NET_FILL, NET_STROKE, 1.0, net.box.h / 2 - 0.01, z=6)
        text(net.box.x, net.box.y - 2, net.name, SMALL_PX + 1, "#303030", "bold", "center", z=7)
        text(net.box.x, net.box.y + 11, net.subnet, SMALL_PX, "#505050", ha="center", z=7)
    for n in topo.nodes:
        fill, stroke = ROLE_COLOURS[n.role]
        rounded(n.box, fill, stroke, 1.5, 5, z=8)
        text(n.box.x, n.box.y - 8, n.label, LABEL_PX, weight="bold", ha="center", z=9)
        text(n.box.x, n.box.y + 6, n.caption, CAPTION_PX, "#505050", ha="center", z=9)

    rows = _legend_for(topo)
    top = _legend_top(topo)
    ax.add_patch(Rectangle((MARGIN - 8, top - 10), topo.width - 2 * MARGIN + 16, len(rows) * LEGEND_ROW + 8,
                           facecolor="#fafafa", edgecolor="#d0d0d0", zorder=1))
    for r, row in enumerate(rows):
        y = top + r * LEGEND_ROW + 4
        for symbol, label, x in row:
            _legend_symbol_png(ax, symbol, x, y, Rectangle)
            text(x + LEGEND_SYMBOL + 6, y + 3.5, label, SMALL_PX, "#303030", z=3)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _legend_symbol_png(ax, symbol: str, x: float, y: float, Rectangle) -> None:
    x2 = x + LEGEND_SYMBOL
    if symbol.startswith("role:"):
        fill, stroke = ROLE_COLOURS[symbol[5:]]
        ax.add_patch(Rectangle((x + 4, y - 6), 22, 12, facecolor=fill, edgecolor=stroke, zorder=2))
        return
    boxes = {"network": (NET_FILL, NET_STROKE, "solid"), "gateway": ("none", GATEWAY_STROKE, "solid"),
             "vrrp": ("none", VRRP_STROKE, (0, (4, 3))), "zone": (ZONE_FILL, ZONE_STROKE, "solid")}
    if symbol in boxes:
        fill, stroke, style = boxes[symbol]
        ax.add_patch(Rectangle((x + 2, y - 6), 26, 12, facecolor=fill, edgecolor=stroke, linestyle=style, zorder=2))
        return
    look = {"link": (LINK_COLOUR, 1.2, "solid", 1.0), "tunnel": (TUNNEL_COLOUR, 9, "solid", 0.75),
            "bgp": (BGP_COLOUR, 1.6, (0, (5, 3)), 1.0), "bfd": (BGP_COLOUR, 2.6, (0, (9, 2, 2, 2)), 1.0),
            "circuit": (CIRCUIT_COLOUR, 10, "solid", 0.8)}[symbol]
    colour, width, style, alpha = look
    ax.plot([x, x2], [y, y], color=colour, linewidth=width, linestyle=style, alpha=alpha, zorder=2)
