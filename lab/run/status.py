"""What a running lab looks like right now, as one value.

Built from the containers' labels, so a lab started by `docker compose` is
read the same way as one started by `lab up`. Each daemon is asked through
its own port: VICI for IKE/ESP, vtysh JSON for BGP, netlink for addresses,
all through the engine, every node at once.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from lab.model.errors import LabError
from lab.run.hostcheck import ESP_OPTION, kernel_esp_support
from lab.model.kinds import Can, able, instance_of, runs_bgp, runs_ike
from lab.run.ports import ContainerInfo, ContainerRuntime, IkeControl, LinkControl, RouteControl
from lab.plan.gateway_types import strategy_named
from lab.plan.redundancy.base import GatewayView

# A tunnel carries traffic now when its ESP packet rate, over the window, is at least this.
CARRYING_PPS = 1.0


def not_ready(status: str, health: str | None) -> bool:
    """A container that isn't running, or whose healthcheck doesn't pass (yet)."""
    return status != "running" or health not in ("healthy", None)


def running_node(runtime: ContainerRuntime, lab: str, node: str) -> ContainerInfo:
    """A node's container, which must be running (faults and watchers exec into it)."""
    found = runtime.containers({"lab.name": lab, "lab.node": node})
    if not found or found[0].pid == 0:
        raise LabError(f"{node} is not running")
    return found[0]


@dataclass(frozen=True)
class NodeRow:
    node: str
    kind: str
    status: str
    health: str | None


@dataclass(frozen=True)
class TunnelRow:
    node: str
    tunnel: str
    ike_state: str
    child_state: str
    remote: str
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int
    # ESP packets per second in/out over the status window; None when not measured.
    pps_in: float | None = None
    pps_out: float | None = None
    bps_in: float | None = None
    bps_out: float | None = None
    # What the IKE SA and its CHILD_SA negotiated (strongSwan's notation).
    ike_algorithms: str = ""
    esp_algorithms: str = ""

    @property
    def carrying(self) -> bool | None:
        if self.pps_in is None or self.pps_out is None:
            return None
        return max(self.pps_in, self.pps_out) >= CARRYING_PPS


@dataclass(frozen=True)
class RouteRow:
    """A BGP route a node forwards on, with every next hop it uses (more than one: ECMP)."""
    node: str
    prefix: str
    next_hops: list[str]


@dataclass(frozen=True)
class VrrpRow:
    """Addresses routers share by VRRP (a gateway's, a LAN's first hop) and who holds them."""
    group: str
    address: str
    holders: list[str]
    routers: list[str]


@dataclass(frozen=True)
class BgpRow:
    node: str
    peer: str
    description: str
    state: str
    prefixes_received: int


@dataclass(frozen=True)
class GatewayRow:
    gateway: str
    mode: str
    # Per instance, the address that makes it active (shared or its own).
    public_ips: dict[str, str]
    active: list[str]
    instances: list[str]
    sku: str = ""
    type: str = "vpn"

    @property
    def strategy(self):
        """What "active" means for this gateway, as its type and mode say."""
        return strategy_named(self.type, self.mode)


@dataclass
class LabStatus:
    lab: str
    scenario: str
    profile: str
    data_plane: str
    host_kernel_esp: str
    nodes: list[NodeRow] = field(default_factory=list)
    tunnels: list[TunnelRow] = field(default_factory=list)
    bgp: list[BgpRow] = field(default_factory=list)
    gateways: list[GatewayRow] = field(default_factory=list)
    vrrp: list[VrrpRow] = field(default_factory=list)
    routes: list[RouteRow] = field(default_factory=list)
    # Tunnels each VPN node should hold once settled (from its labels).
    expected_tunnels: dict[str, list[str]] = field(default_factory=dict)
    rate_window_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    # Addresses held by active gateway instances: their BGP sessions count.
    active_addresses: list[str] = field(default_factory=list)
    # Faults `lab break` left in place, e.g. "link-down on azure-gw-0".
    faults_in_place: list[str] = field(default_factory=list)
    # The host's forwarding guard: packets per rule ("forwarded out of the lab" must stay 0).
    guard: dict[str, int] = field(default_factory=dict)
    # Where the lab's timer profile departs from what Azure documents, one line each.
    departures: list[str] = field(default_factory=list)

    @property
    def active_instances(self) -> list[str]:
        """Every gateway instance active now (holding the shared public IP, or live with its own), gateways in order."""
        return [a for g in self.gateways for a in g.active]

    @property
    def converged(self) -> bool:
        return not self.unconverged_reasons()

    def unconverged_reasons(self) -> list[str]:
        """Why the lab is not (yet) converged; empty when it is."""
        reasons = list(self.problems)
        reasons += [f"{n.node} is {n.health or n.status}" for n in self.nodes if not_ready(n.status, n.health)]
        standby: set[str] = set()
        for gw in self.gateways:
            strategy = gw.strategy
            established = {i: sum(1 for t in self.tunnels if t.node == i and t.ike_state == "ESTABLISHED")
                           for i in gw.instances}
            reasons += strategy.unsettled(GatewayView(gw.gateway, gw.instances, gw.active, established))
            standby |= {i for i in gw.instances if i not in gw.active}
        for node, names in self.expected_tunnels.items():
            if node in standby:
                continue
            for name in names:
                # Settled: the tunnel's SA is up, and no other one (a duplicate, one still connecting) is around.
                held = [t for t in self.tunnels if t.node == node and t.tunnel == name]
                if not held:
                    reasons.append(f"{node} tunnel {name}: no IKE_SA")
                reasons += [f"{node} tunnel {name}: IKE {t.ike_state}, CHILD {t.child_state}" for t in held
                            if t.ike_state != "ESTABLISHED" or t.child_state != "INSTALLED"]
        kinds_of = {n.node: n.kind for n in self.nodes}
        for device in (n for n, k in kinds_of.items() if able(k, Can.START_TUNNELS) and n not in self.expected_tunnels):
            # A node started without the lab's tunnel labels (an older lab, a hand-written
            # compose file): each SA it holds must be up, and it must hold one.
            held = [t for t in self.tunnels if t.node == device]
            if not held:
                reasons.append(f"{device}: no IKE_SA")
            reasons += [f"{device} tunnel {t.tunnel}: IKE {t.ike_state}, CHILD {t.child_state}" for t in held
                        if t.ike_state != "ESTABLISHED" or t.child_state != "INSTALLED"]
        gateway_names = {g.gateway for g in self.gateways}
        for group in self.vrrp:
            # A gateway's own group is judged by its strategy, above.
            if group.group not in gateway_names and len(group.holders) != 1:
                reasons.append(f"VRRP group {group.group} ({group.address}) held by {len(group.holders)} routers")
        for b in self.bgp:
            if b.node in standby:
                continue
            if able(kinds_of.get(b.node, ""), Can.ROUTE_VNET) and not self._peer_is_active(b.peer):
                continue
            if b.state != "Established" or b.prefixes_received == 0:
                reasons.append(f"{b.node} BGP {b.peer}: {b.state}, {b.prefixes_received} prefixes")
        return reasons

    def _peer_is_active(self, peer: str) -> bool:
        return peer in self.active_addresses

    def to_dict(self) -> dict:
        data = asdict(self)
        data["converged"] = self.converged
        data["unconverged"] = self.unconverged_reasons()
        return data


def _tunnel_rows(c: ContainerInfo, sas) -> list[TunnelRow]:
    rows = []
    for sa in sas:
        # While a CHILD_SA is rekeyed the old one lingers a moment beside the new: the tunnel is
        # up if one of them is installed.
        child = next((ch for ch in sa.children if ch.state == "INSTALLED"), sa.children[0] if sa.children else None)
        rows.append(TunnelRow(
            node=c.node, tunnel=sa.name, ike_state=sa.state,
            child_state=child.state if child else "none",
            remote=sa.remote_host,
            packets_in=sum(ch.packets_in for ch in sa.children),
            packets_out=sum(ch.packets_out for ch in sa.children),
            bytes_in=sum(ch.bytes_in for ch in sa.children),
            bytes_out=sum(ch.bytes_out for ch in sa.children),
            ike_algorithms=sa.algorithms, esp_algorithms=child.algorithms if child else "",
        ))
    return rows


@dataclass
class NodeReading:
    """What one running node's daemons said."""
    tunnels: list[TunnelRow] = field(default_factory=list)
    bgp: list[BgpRow] = field(default_factory=list)
    plane: str | None = None
    addresses: list[str] | None = None       # nodes whose addresses move: gateway instances, VRRP routers
    routes: list[RouteRow] = field(default_factory=list)
    kernel_esp: str | None = None
    problem: str | None = None


def read_node(c: ContainerInfo, ike_for: Callable[[ContainerInfo], IkeControl],
              routes_for: Callable[[ContainerInfo], RouteControl],
              links_for: Callable[[ContainerInfo], LinkControl], with_kernel: bool) -> NodeReading:
    reading = NodeReading()
    links = links_for(c)
    try:
        if runs_ike(c.kind):
            if with_kernel:
                reading.kernel_esp = kernel_esp_support(*links.kernel_option(ESP_OPTION)).summary
            kinds = links.link_kinds()
            reading.plane = ("userspace ESP (strongSwan kernel-libipsec, TUN ipsec0)" if kinds.get("ipsec0") == "tun"
                             else "kernel XFRM ESP")
            reading.tunnels = _tunnel_rows(c, ike_for(c).list_sas())
        if instance_of(c.kind) is not None or "lab.vrrp" in c.labels:
            reading.addresses = [a for addrs in links.addresses().values() for a in addrs]
        if runs_bgp(c.kind):
            routes = routes_for(c)
            for peer in routes.bgp_peers():
                reading.bgp.append(BgpRow(c.node, peer.peer, peer.description, peer.state, peer.prefixes_received))
            reading.routes = [RouteRow(c.node, prefix, hops) for prefix, hops in sorted(routes.bgp_next_hops().items())]
    except LabError as exc:
        reading.problem = str(exc)
    return reading


def _departures(label: str | None) -> list[str]:
    """The profile's departures from Azure, as `up` labelled them (a lab from before the label: none known)."""
    try:
        found = json.loads(label or "[]")
    except ValueError:
        return []
    return [str(line) for line in found] if isinstance(found, list) else []


def collect_status(
    lab: str,
    runtime: ContainerRuntime,
    ike_for: Callable[[ContainerInfo], IkeControl],
    routes_for: Callable[[ContainerInfo], RouteControl],
    links_for: Callable[[ContainerInfo], LinkControl],
    kernel_esp: str | None = None,
    rate_window_s: float = 0.0,
) -> LabStatus:
    """The lab now. `kernel_esp`, when known, saves asking a node for the engine kernel's ESP support;
    with `rate_window_s`, each tunnel's ESP rate over that window is measured too."""
    containers = runtime.containers({"lab.name": lab})
    if not containers:
        raise LabError(f"no lab named {lab!r} is running")
    first = containers[0].labels
    status = LabStatus(
        lab=lab,
        scenario=first.get("lab.scenario", "?"),
        profile=first.get("lab.profile", "?"),
        departures=_departures(first.get("lab.departures")),
        data_plane="none",
        host_kernel_esp=kernel_esp or "unknown",
    )
    running = [c for c in containers if c.status == "running"]
    kernel_reader = None if kernel_esp else next((c.name for c in running if runs_ike(c.kind)), None)
    if kernel_reader is None and not kernel_esp:
        status.host_kernel_esp = "unknown (no VPN node running)"
    # Each read is a round trip through the engine: ask every node at once.
    with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        vpn = [c for c in running if runs_ike(c.kind)]
        before: dict[str, dict[str, TunnelRow]] = {}
        if rate_window_s > 0:
            window_start = time.monotonic()
            before = dict(zip([c.node for c in vpn], pool.map(lambda c: _counters(c, ike_for), vpn)))
            # The window is the measurement itself: counters read at both ends of it.
            time.sleep(max(0.0, rate_window_s - (time.monotonic() - window_start)))
        readings = dict(zip([c.name for c in running], pool.map(
            lambda c: read_node(c, ike_for, routes_for, links_for, c.name == kernel_reader), running)))
        if rate_window_s > 0:
            elapsed = time.monotonic() - window_start
            for reading in readings.values():
                reading.tunnels = [_with_rate(t, before.get(t.node, {}).get(t.tunnel), elapsed)
                                   for t in reading.tunnels]
            status.rate_window_s = round(elapsed, 2)
    planes: set[str] = set()
    gateways: dict[str, GatewayRow] = {}
    groups: dict[str, VrrpRow] = {}
    for c in containers:
        status.nodes.append(NodeRow(c.node, c.kind, c.status, c.health))
        if c.labels.get("lab.tunnels"):
            status.expected_tunnels[c.node] = c.labels["lab.tunnels"].split(",")
        if instance_of(c.kind) is not None:
            gw = _gateway_row(gateways, c)
        memberships = _vrrp_memberships(groups, c)
        reading = readings.get(c.name)
        if reading is None:
            continue
        status.tunnels.extend(reading.tunnels)
        status.bgp.extend(reading.bgp)
        status.routes.extend(reading.routes)
        for row in memberships:
            if reading.addresses is not None and row.address in reading.addresses:
                row.holders.append(c.node)
        planes.update([reading.plane] if reading.plane else [])
        if reading.kernel_esp:
            status.host_kernel_esp = reading.kernel_esp
        if reading.problem:
            status.problems.append(reading.problem)
        if (instance_of(c.kind) is not None and reading.addresses is not None
                and gw.strategy.is_active(c.labels.get("lab.public-ip", ""), reading.addresses)):
            gw.active.append(c.node)
            status.active_addresses.extend(reading.addresses)
    status.gateways = sorted(gateways.values(), key=lambda g: g.gateway)
    status.vrrp = sorted(groups.values(), key=lambda g: g.group)
    status.data_plane = ", ".join(sorted(planes)) or "none"
    return status


def _gateway_row(gateways: dict[str, GatewayRow], c: ContainerInfo) -> GatewayRow:
    """The row of the gateway an instance belongs to, with the instance added."""
    name = c.labels.get("lab.gateway", "?")
    row = gateways.setdefault(name, GatewayRow(name, c.labels.get("lab.redundancy", "active-standby"), {}, [], [],
                                               c.labels.get("lab.sku", ""), c.labels.get("lab.gateway-type", "vpn")))
    row.instances.append(c.node)
    row.public_ips[c.node] = c.labels.get("lab.public-ip", "")
    return row


def _vrrp_memberships(groups: dict[str, VrrpRow], c: ContainerInfo) -> list[VrrpRow]:
    """The VRRP groups a node's labels put it in, with the node added to each."""
    rows = []
    for entry in filter(None, c.labels.get("lab.vrrp", "").split(",")):
        name, _, address = entry.partition("=")
        row = groups.setdefault(name, VrrpRow(name, address, [], []))
        row.routers.append(c.node)
        rows.append(row)
    return rows


def _counters(c: ContainerInfo, ike_for: Callable[[ContainerInfo], IkeControl]) -> dict[str, TunnelRow]:
    """A VPN node's SA counters by tunnel, for the first end of a rate window; empty if it can't say."""
    try:
        return {t.tunnel: t for t in _tunnel_rows(c, ike_for(c).list_sas())}
    except LabError:
        return {}


def _with_rate(now: TunnelRow, before: TunnelRow | None, elapsed_s: float) -> TunnelRow:
    """A tunnel row with its ESP rates; none when the SA is new since the window began (counters restarted)."""
    if before is None or now.packets_in < before.packets_in or now.packets_out < before.packets_out or elapsed_s <= 0:
        return now
    return replace(now, pps_in=round((now.packets_in - before.packets_in) / elapsed_s, 1),
                   pps_out=round((now.packets_out - before.packets_out) / elapsed_s, 1),
                   bps_in=round(8 * (now.bytes_in - before.bytes_in) / elapsed_s),
                   bps_out=round(8 * (now.bytes_out - before.bytes_out) / elapsed_s))
