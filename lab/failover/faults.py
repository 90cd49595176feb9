"""Faults a failover run injects, each with its restore, and the targets they hit.

A target is data: a node (a gateway instance, a VPN device), a whole
gateway, a zone, or one link of a node, written `NODE`, `gateway:NAME`,
`zone:N` or `link:NODE/NETWORK`. It resolves, through the plan, to nodes
(and an interface), whose containers are found by their labels. A fault
only reaches a node through ports (the container runtime, the node agent,
FRR), so each one reads as the operator's action it imitates. `restore`
undoes the fault itself; putting the lab back in its initial state
(failback) is the experiment's job, the same for every fault.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lab.model.errors import LabError
from lab.model.kinds import runs_ike
from lab.model.schema import LabPlan
from lab.run.ports import ContainerInfo, ContainerRuntime, IkeControl, LinkControl, RouteControl
from lab.plan.gateway_types import strategy_of
from lab.run.status import running_node

IKE_PORTS = [500, 4500]
IKE_INIT_PORT = 500
DELETE_TIMEOUT_S = 5.0
TARGET_FORMS = "NODE, gateway:NAME, zone:N or link:NODE/NETWORK"


@dataclass(frozen=True)
class TargetSpec:
    """What a fault hits, resolved from its text through the plan."""
    text: str
    nodes: tuple[str, ...]
    interface: str | None = None     # a link target: the one interface to cut


def resolve_target(plan: LabPlan, text: str) -> TargetSpec:
    """A target's text to the nodes (and interface) it names; one line naming the problem otherwise."""
    kind, _, name = text.partition(":") if ":" in text else ("node", "", text)
    scenario = plan.scenario
    if kind == "node":
        vpn = [n for n, spec in scenario.nodes.items() if runs_ike(spec.kind)]
        if text not in vpn:
            raise LabError(f"--target {text!r} is not a gateway instance or VPN device of scenario {scenario.name} "
                           f"(choose from {', '.join(vpn)}, or {TARGET_FORMS})")
        return TargetSpec(text, (text,))
    if kind == "gateway":
        if name not in scenario.gateways:
            raise LabError(f"--target {text!r}: no gateway {name!r} (gateways: {', '.join(scenario.gateways)})")
        return TargetSpec(text, tuple(scenario.gateways[name].instances))
    if kind == "zone":
        nodes = tuple(n for n, spec in scenario.nodes.items() if spec.zone is not None and str(spec.zone) == name)
        if not nodes:
            zones = sorted({str(spec.zone) for spec in scenario.nodes.values() if spec.zone is not None})
            raise LabError(f"--target {text!r}: no node of scenario {scenario.name} is in zone {name!r} "
                           f"(zones: {', '.join(zones) or 'none'})")
        return TargetSpec(text, nodes)
    if kind == "link":
        node, _, network = name.partition("/")
        spec = scenario.nodes.get(node)
        if spec is None:
            raise LabError(f"--target {text!r}: no node {node!r} (write link:NODE/NETWORK)")
        if network not in spec.links:
            raise LabError(f"--target {text!r}: {node} has no link on {network!r} (its links: {', '.join(spec.links)})")
        return TargetSpec(text, (node,), interface=network)
    raise LabError(f"--target {text!r}: unknown target form {kind!r} (use {TARGET_FORMS})")


@dataclass
class FaultTarget:
    """The nodes a fault hits, and how to reach them."""
    plan: LabPlan
    spec: TargetSpec
    runtime: ContainerRuntime
    ike_for: Callable[[ContainerInfo], IkeControl]
    links_for: Callable[[ContainerInfo], LinkControl]
    routes_for: Callable[[ContainerInfo], RouteControl]
    # When the fault's first change took effect in a node (the lab's clock), if the node said.
    applied_ns: int | None = None
    # Called once a restore has started containers again (clears their old bridge ports).
    after_start: Callable[[], object] | None = None

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.spec.nodes

    def container(self, node: str) -> str:
        return self.plan.nodes[node].container

    def info(self, node: str) -> ContainerInfo:
        return running_node(self.runtime, self.plan.lab, node)

    def stamp(self, applied_ns: int | None) -> None:
        """Keeps the earliest node stamp: the fault began with its first change."""
        if applied_ns is not None and (self.applied_ns is None or applied_ns < self.applied_ns):
            self.applied_ns = applied_ns

    def interface(self, node: str) -> str:
        """The link a link fault cuts: the one named, else the node's internet-facing link."""
        name = self.spec.interface or self.plan.public_network(node)
        if name is None:
            raise LabError(f"{node} has no internet-facing link: target link:{node}/NETWORK")
        return name

    def tunnel_names(self, node: str) -> list[str]:
        return [t.name for t in self.plan.tunnels_of(node)]

    def shut_down_tunnel_sessions(self, node: str) -> None:
        """Ends the BGP (and BFD) sessions the node runs over its tunnels."""
        self._each_tunnel_session(node, lambda routes: routes.shut_down_peer)

    def bring_up_tunnel_sessions(self, node: str) -> None:
        """Undoes `shut_down_tunnel_sessions`."""
        self._each_tunnel_session(node, lambda routes: routes.bring_up_peer)

    def _each_tunnel_session(self, node: str, change_of: Callable) -> None:
        change = change_of(self.routes_for(self.info(node)))
        for session in (b for b in self.plan.sessions_of(node) if b.tunnel):
            change(self._asn(node), str(session.peer_address), str(session.source) if self.plan.profile.bfd else None)

    def _asn(self, node: str) -> int:
        owner = self.plan.instance_gateway(node)
        asn = owner[1].asn if owner else self.plan.scenario.nodes[node].asn
        if asn is None:
            raise LabError(f"{node} runs no BGP")
        return asn

    def vrrp(self, node: str, action: str) -> None:
        code, output = self.runtime.exec(self.container(node), ["lab-vrrp", action], timeout_s=15)
        if code != 0:
            raise LabError(f"{node}: lab-vrrp {action} failed: {output.strip()[:200]}")


class Fault:
    name: str
    planned: bool
    summary: str
    # Its restore starts the target's containers again.
    starts_containers = False

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        """Refuses, in one line, a target this fault can't hit."""
        if spec.interface is not None:
            raise LabError(f"fault {self.name} hits nodes, not links: --target {spec.text!r} is for link-down")

    def inject(self, target: FaultTarget) -> str:
        """Applies the fault to every node of the target; returns what was done, for the timeline."""
        return _each(target, self.inject_node)

    def restore(self, target: FaultTarget) -> str:
        done = _each(target, self.restore_node)
        if self.starts_containers and target.after_start is not None:
            target.after_start()
        return done

    def inject_node(self, target: FaultTarget, node: str) -> str:
        raise LabError(f"fault {self.name} can't be injected")

    def restore_node(self, target: FaultTarget, node: str) -> str:
        raise LabError(f"fault {self.name} can't be restored")


def _each(target: FaultTarget, action: Callable[[FaultTarget, str], str]) -> str:
    done = [action(target, node) for node in target.nodes]
    if len(done) == 1:
        return done[0]
    return "; ".join(f"{node}: {what}" for node, what in zip(target.nodes, done))


def _vpn_nodes_only(fault: Fault, plan: LabPlan, spec: TargetSpec) -> None:
    Fault.check(fault, plan, spec)
    others = [n for n in spec.nodes if not runs_ike(plan.nodes[n].kind)]
    if others:
        raise LabError(f"fault {fault.name} hits IKE traffic: {', '.join(others)} runs no IKE")


class Kill(Fault):
    name, planned, starts_containers = "kill", False, True
    summary = "SIGKILL the target's containers (unplanned loss of an instance, a device, a zone)"

    def inject_node(self, target: FaultTarget, node: str) -> str:
        target.runtime.kill(target.container(node), "SIGKILL")
        return "container SIGKILLed"

    def restore_node(self, target: FaultTarget, node: str) -> str:
        target.runtime.start(target.container(node))
        return "container started again"


class Maintenance(Fault):
    name, planned, starts_containers = "maintenance", True, True
    summary = "graceful hand-over: BGP and BFD shut down, IKE DELETE to the peers, then what the gateway's mode needs"

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        super().check(plan, spec)
        others = [n for n in spec.nodes if plan.instance_gateway(n) is None]
        if others or len(spec.nodes) != 1:
            raise LabError(f"fault maintenance takes one gateway instance out of service: "
                           f"--target {spec.text!r} is not one")

    def inject_node(self, target: FaultTarget, node: str) -> str:
        # New IKE_SA_INIT from the peers would land on this instance while it
        # leaves: refuse them, so they retry elsewhere or after its return.
        target.stamp(target.links_for(target.info(node)).block_udp_ports([IKE_INIT_PORT], True))
        # Drain first, as a router leaving service does: the peers drop the
        # session now. Left up, a device's BFD session with this instance
        # would expire later and take the new instance's BGP session with it.
        target.shut_down_tunnel_sessions(node)
        ike = target.ike_for(target.info(node))
        for tunnel in target.tunnel_names(node):
            ike.terminate(tunnel, timeout_s=DELETE_TIMEOUT_S)
        _, gateway = target.plan.instance_gateway(node)  # type: ignore[misc]
        released = strategy_of(gateway).release(target, node)
        return ", ".join(filter(None, ["BGP and BFD shut down, IKE DELETE sent", released]))

    def restore_node(self, target: FaultTarget, node: str) -> str:
        # Back from maintenance the way a patched VM comes back: rebooted, with
        # none of the drain left over, joining as a standby where there is one.
        target.runtime.restart(target.container(node))
        return "instance restarted"


class Pause(Fault):
    name, planned = "pause", False
    summary = "freeze the target's containers (a hung VM or device)"

    def inject_node(self, target: FaultTarget, node: str) -> str:
        # Fenced just before it freezes: the fence is inert while frozen (nothing runs to send),
        # and keeps the thawed node quiet until `restore` has taken it out of its roles.
        target.stamp(target.links_for(target.info(node)).fence(True))
        target.runtime.pause(target.container(node))
        return "container fenced and paused"

    def restore_node(self, target: FaultTarget, node: str) -> str:
        target.runtime.unpause(target.container(node))
        links = target.links_for(target.info(node))
        if not target.plan.groups_of(node):
            links.fence(False)
            return "container unpaused"
        # A frozen VRRP master wakes up still believing it holds the addresses (and, on a
        # gateway, SAs its peers already dropped). Unfenced, its first adverts made the new
        # master yield and drop its tunnel: 2.3 s without traffic at the restore. So it leaves
        # VRRP while still fenced, and rejoins as a backup once it is let out.
        target.vrrp(node, "stop")
        links.fence(False)
        target.vrrp(node, "start")
        return "container unpaused, left VRRP while fenced, rejoined as backup"


class LinkDown(Fault):
    name, planned = "link-down", False
    summary = "cut the target's internet-facing interface, or the one named (netlink, in its namespace)"

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        if spec.interface is None:
            unlinked = [n for n in spec.nodes if plan.public_network(n) is None]
            if unlinked:
                raise LabError(f"fault link-down: {', '.join(unlinked)} has no internet-facing link "
                               f"(name one: link:{unlinked[0]}/NETWORK)")

    def inject_node(self, target: FaultTarget, node: str) -> str:
        name = target.interface(node)
        target.stamp(target.links_for(target.info(node)).set_link(name, False))
        return f"link {name} down"

    def restore_node(self, target: FaultTarget, node: str) -> str:
        name = target.interface(node)
        target.links_for(target.info(node)).set_link(name, True)
        return f"link {name} up"


class Blackhole(Fault):
    name, planned = "blackhole", False
    summary = "drop the target's IKE and ESP-in-UDP traffic (an ISP outage; VRRP still sees it alive)"

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        _vpn_nodes_only(self, plan, spec)

    def inject_node(self, target: FaultTarget, node: str) -> str:
        target.stamp(target.links_for(target.info(node)).block_udp_ports(IKE_PORTS, True))
        return "UDP 500/4500 blackholed"

    def restore_node(self, target: FaultTarget, node: str) -> str:
        target.links_for(target.info(node)).block_udp_ports(IKE_PORTS, False)
        return "UDP 500/4500 open again"


FAULTS: dict[str, Fault] = {f.name: f for f in (Kill(), Maintenance(), Pause(), LinkDown(), Blackhole())}


def check_target(plan: LabPlan, fault: Fault, text: str) -> TargetSpec:
    """The target resolved and checked against the fault; a one-line error otherwise."""
    spec = resolve_target(plan, text)
    fault.check(plan, spec)
    return spec


def get_fault(name: str) -> Fault:
    if name not in FAULTS:
        raise LabError(f"unknown fault {name!r}: choose from {', '.join(FAULTS)}")
    return FAULTS[name]
