"""What a running lab looks like right now, as one value.

Built from the containers' labels, so a lab started by `docker compose` is
read the same way as one started by `lab up`. Each daemon is asked through
its own port: VICI for IKE/ESP, vtysh JSON for BGP, netlink for addresses,
all through the engine, every node at once.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

from .errors import LabError
from .hostcheck import ESP_OPTION, kernel_esp_support
from .kinds import Role, has_role, runs_bgp, runs_ike
from .ports import ContainerInfo, ContainerRuntime, IkeControl, LinkControl, RouteControl



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
    public_ip: str
    active: list[str]
    instances: list[str]


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
    problems: list[str] = field(default_factory=list)
    # Addresses held by active gateway instances: their BGP sessions count.
    active_addresses: list[str] = field(default_factory=list)
    # Faults `lab break` left in place, e.g. "link-down on azure-gw-0".
    faults_in_place: list[str] = field(default_factory=list)
    # The host's forwarding guard: packets per rule ("forwarded out of the lab" must stay 0).
    guard: dict[str, int] = field(default_factory=dict)

    @property
    def active_instances(self) -> list[str]:
        """Every gateway instance holding its gateway's public IP now, gateways in order."""
        return [a for g in self.gateways for a in g.active]

    @property
    def converged(self) -> bool:
        return not self.unconverged_reasons()

    def unconverged_reasons(self) -> list[str]:
        """Why the lab is not (yet) converged; empty when it is."""
        reasons = list(self.problems)
        reasons += [f"{n.node} is {n.health or n.status}" for n in self.nodes if not_ready(n.status, n.health)]
        for gw in self.gateways:
            if len(gw.active) != 1:
                reasons.append(f"gateway {gw.gateway} has {len(gw.active)} active instances")
        active = {a for gw in self.gateways for a in gw.active}
        kinds = {n.node: n.kind for n in self.nodes}
        standby = {i for gw in self.gateways for i in gw.instances} - active
        for t in self.tunnels:
            if has_role(kinds.get(t.node, ""), Role.VPN_DEVICE) or t.node in active:
                if t.ike_state != "ESTABLISHED" or t.child_state != "INSTALLED":
                    reasons.append(f"{t.node} tunnel {t.tunnel}: IKE {t.ike_state}, CHILD {t.child_state}")
            elif t.node in standby and t.ike_state == "ESTABLISHED":
                # A standby holding an SA is left over from a hand-over: not settled yet.
                reasons.append(f"standby {t.node} still holds tunnel {t.tunnel}")
        expected_tunnels = [n.node for n in self.nodes if has_role(n.kind, Role.VPN_DEVICE)]
        for device in expected_tunnels:
            if not any(t.node == device for t in self.tunnels):
                reasons.append(f"{device}: no IKE_SA")
        for b in self.bgp:
            if b.node in standby:
                continue
            if has_role(kinds.get(b.node, ""), Role.VNET_ROUTER) and not self._peer_is_active(b.peer):
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


@dataclass
class NodeReading:
    """What one running node's daemons said."""
    tunnels: list[TunnelRow] = field(default_factory=list)
    bgp: list[BgpRow] = field(default_factory=list)
    plane: str | None = None
    addresses: list[str] | None = None       # gateway instances only
    kernel_esp: str | None = None
    problem: str | None = None


def read_node(c: ContainerInfo, ike_for: Callable[[ContainerInfo], IkeControl],
              routes_for: Callable[[ContainerInfo], RouteControl],
              links_for: Callable[[ContainerInfo], LinkControl], with_kernel: bool) -> NodeReading:
    reading = NodeReading()
    try:
        if runs_ike(c.kind):
            links = links_for(c)
            if with_kernel:
                reading.kernel_esp = kernel_esp_support(*links.kernel_option(ESP_OPTION)).summary
            kinds = links.link_kinds()
            reading.plane = ("userspace ESP (strongSwan kernel-libipsec, TUN ipsec0)" if kinds.get("ipsec0") == "tun"
                             else "kernel XFRM ESP")
            for sa in ike_for(c).list_sas():
                child = sa.children[0] if sa.children else None
                reading.tunnels.append(TunnelRow(
                    node=c.node, tunnel=sa.name, ike_state=sa.state,
                    child_state=child.state if child else "none",
                    remote=sa.remote_host,
                    packets_in=sum(ch.packets_in for ch in sa.children),
                    packets_out=sum(ch.packets_out for ch in sa.children),
                    bytes_in=sum(ch.bytes_in for ch in sa.children),
                    bytes_out=sum(ch.bytes_out for ch in sa.children),
                ))
            if has_role(c.kind, Role.GATEWAY_INSTANCE):
                reading.addresses = [a for addrs in links.addresses().values() for a in addrs]
        if runs_bgp(c.kind):
            for peer in routes_for(c).bgp_peers():
                reading.bgp.append(BgpRow(c.node, peer.peer, peer.description, peer.state, peer.prefixes_received))
    except LabError as exc:
        reading.problem = str(exc)
    return reading


def collect_status(
    lab: str,
    runtime: ContainerRuntime,
    ike_for: Callable[[ContainerInfo], IkeControl],
    routes_for: Callable[[ContainerInfo], RouteControl],
    links_for: Callable[[ContainerInfo], LinkControl],
    kernel_esp: str | None = None,
) -> LabStatus:
    """The lab now. `kernel_esp`, when known, saves asking a node for the engine kernel's ESP support."""
    containers = runtime.containers({"lab.name": lab})
    if not containers:
        raise LabError(f"no lab named {lab!r} is running")
    first = containers[0].labels
    status = LabStatus(
        lab=lab,
        scenario=first.get("lab.scenario", "?"),
        profile=first.get("lab.profile", "?"),
        data_plane="none",
        host_kernel_esp=kernel_esp or "unknown",
    )
    running = [c for c in containers if c.status == "running"]
    kernel_reader = None if kernel_esp else next((c.name for c in running if runs_ike(c.kind)), None)
    if kernel_reader is None and not kernel_esp:
        status.host_kernel_esp = "unknown (no VPN node running)"
    # Each read is a round trip through the engine: ask every node at once.
    with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        readings = dict(zip([c.name for c in running], pool.map(
            lambda c: read_node(c, ike_for, routes_for, links_for, c.name == kernel_reader), running)))
    planes: set[str] = set()
    gateways: dict[str, GatewayRow] = {}
    for c in containers:
        status.nodes.append(NodeRow(c.node, c.kind, c.status, c.health))
        if has_role(c.kind, Role.GATEWAY_INSTANCE):
            gw = _gateway_row(gateways, c)
        reading = readings.get(c.name)
        if reading is None:
            continue
        status.tunnels.extend(reading.tunnels)
        status.bgp.extend(reading.bgp)
        planes.update([reading.plane] if reading.plane else [])
        if reading.kernel_esp:
            status.host_kernel_esp = reading.kernel_esp
        if reading.problem:
            status.problems.append(reading.problem)
        if reading.addresses is not None and c.labels["lab.public-ip"] in reading.addresses:
            gw.active.append(c.node)
            status.active_addresses.extend(reading.addresses)
    status.gateways = sorted(gateways.values(), key=lambda g: g.gateway)
    status.data_plane = ", ".join(sorted(planes)) or "none"
    return status


def _gateway_row(gateways: dict[str, GatewayRow], c: ContainerInfo) -> GatewayRow:
    """The row of the gateway an instance belongs to, with the instance added."""
    name = c.labels["lab.gateway"]
    row = gateways.setdefault(name, GatewayRow(name, c.labels["lab.public-ip"], [], []))
    row.instances.append(c.node)
    return row
