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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from lab.model.azure import azure_rules
from lab.model.errors import LabError
from lab.model.kinds import Can, able, runs_ike
from lab.model.schema import ExpressRouteGateway, LabPlan
from lab.plan.gateway_types.expressroute import circuit_msees, circuit_peerings, msee_side
from lab.run.ports import ContainerInfo, ContainerRuntime, IkeControl, LinkControl, RouteControl
from lab.plan.gateway_types import strategy_of
from lab.run.status import running_node

IKE_PORTS = [500, 4500]
IKE_INIT_PORT = 500
DELETE_TIMEOUT_S = 5.0
TARGET_FORMS = "NODE, gateway:NAME, zone:N, link:NODE/NETWORK, peering:NAME or circuit:GATEWAY"


@dataclass(frozen=True)
class TargetSpec:
    """What a fault hits, resolved from its text through the plan."""
    text: str
    nodes: tuple[str, ...]
    interface: str | None = None     # a link target: the one interface to cut
    # A peering or circuit target: each link as (the node whose end is cut, the network).
    links: tuple[tuple[str, str], ...] = ()
    # The peerings it names (a circuit's links), by name.
    peerings: tuple[str, ...] = ()


def resolve_target(plan: LabPlan, text: str) -> TargetSpec:
    """A target's text to the nodes (and interface) it names; one line naming the problem otherwise."""
    kind, _, name = text.partition(":") if ":" in text else ("node", "", text)
    scenario = plan.scenario
    if kind == "node":
        targets = [n for n, spec in scenario.nodes.items() if able(spec.kind, Can.BE_FAULT_TARGET)]
        if text not in targets:
            raise LabError(f"--target {text!r} is not a node of scenario {scenario.name} that faults can hit "
                           f"(choose from {', '.join(targets)}, or {TARGET_FORMS})")
        return TargetSpec(text, (text,))
    if kind == "peering":
        peering = next((p for p in scenario.peerings if p.name == name), None)
        if peering is None:
            raise LabError(f"--target {text!r}: no peering {name!r} "
                           f"(peerings: {', '.join(p.name for p in scenario.peerings) or 'none'})")
        return TargetSpec(text, tuple(side.node for side in peering.sides),
                          links=((_customer_end(plan, peering.name), peering.network),), peerings=(peering.name,))
    if kind == "circuit":
        gateway = scenario.gateways.get(name)
        if not isinstance(gateway, ExpressRouteGateway):
            circuits = [n for n, g in scenario.gateways.items() if isinstance(g, ExpressRouteGateway)]
            raise LabError(f"--target {text!r}: no ExpressRoute gateway {name!r} "
                           f"(circuits: {', '.join(circuits) or 'none'})")
        links = circuit_peerings(scenario, gateway)
        return TargetSpec(text, tuple(circuit_msees(scenario, gateway)),
                          links=tuple((_customer_end(plan, p.name), p.network) for p in links),
                          peerings=tuple(p.name for p in links))
    if kind == "gateway":
        if name not in scenario.gateways:
            raise LabError(f"--target {text!r}: no gateway {name!r} (gateways: {', '.join(scenario.gateways)})")
        return TargetSpec(text, tuple(scenario.gateways[name].instances))
    if kind == "zone":
        # Every node Azure would place in the zone: gateway instances and zonal hosts, never an
        # on-premises or regional node. A zone none of them is in is a target too: losing it is a non-event.
        numbers = azure_rules().zones.numbers
        if not name.isdigit() or int(name) not in numbers:
            raise LabError(f"--target {text!r}: an Azure region's zones are {', '.join(map(str, numbers))} "
                           f"(write zone:{numbers[0]} to zone:{numbers[-1]})")
        return TargetSpec(text, tuple(n for n, spec in scenario.nodes.items()
                                      if spec.zone == int(name) and able(spec.kind, Can.BE_ZONAL)))
    if kind == "link":
        node, _, network = name.partition("/")
        spec = scenario.nodes.get(node)
        if spec is None:
            raise LabError(f"--target {text!r}: no node {node!r} (write link:NODE/NETWORK)")
        if network not in spec.links:
            raise LabError(f"--target {text!r}: {node} has no link on {network!r} (its links: {', '.join(spec.links)})")
        return TargetSpec(text, (node,), interface=network)
    raise LabError(f"--target {text!r}: unknown target form {kind!r} (use {TARGET_FORMS})")


def _customer_end(plan: LabPlan, peering: str) -> str:
    """Where a link is cut: its on-premises end (the side that is no MSEE), else its first side."""
    p = next(p for p in plan.scenario.peerings if p.name == peering)
    msee = msee_side(plan.scenario, p)
    return p.sides[1 - msee].node if msee is not None else p.sides[0].node


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

    def silence_and_kill(self, node: str) -> str:
        """A node lost as a failed router is: silent at once, then gone. A SIGKILLed container's kernel
        still closes its sockets (a FIN to every BGP peer) and keeps forwarding in its namespace until
        the engine tears it down, seconds later; every link cut first, it does neither. The cuts go
        with the namespace: the restarted container has none."""
        self.cut_off(node, True)
        self.runtime.kill(self.container(node), "SIGKILL")
        return "cut off on every link, then SIGKILLed"

    def cut_off(self, node: str, on: bool) -> None:
        """Every link of the node cut (nothing in, out or through, carrier kept), or back."""
        links = self.links_for(self.info(node))
        for network in self.plan.nodes[node].links:
            stamp = links.cut(network, on)
            if on:
                self.stamp(stamp)

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

    def default_target(self, plan: LabPlan) -> str | None:
        """The target when none is given, read from the plan; None: the active gateway instance."""
        return None

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        """Refuses, in one line, a target this fault can't hit."""
        if spec.interface is not None:
            raise LabError(f"fault {self.name} hits nodes, not links: --target {spec.text!r} is for link-down")
        if not spec.nodes:
            raise LabError(f"--target {spec.text!r} holds no node of this lab: fault {self.name} would do nothing "
                           "(zone-down takes an empty zone, as the non-event it is)")

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


class ZoneDown(Kill):
    """An availability zone lost (Azure's zone outage): everything the lab places in it goes at once.

    Azure's own zone-down drills don't cover gateways (their support matrix lists no VPN or
    ExpressRoute gateway), so this fault is the lab's own. Azure brings the zone's VMs back and
    rebalances: the restore starts them again.
    """
    name, planned, starts_containers = "zone-down", False, True
    summary = ("lose a whole availability zone: every gateway instance and zonal host in it cut off (silent), "
               "then SIGKILLed, at once")

    def default_target(self, plan: LabPlan) -> str | None:
        """The zone of the first gateway instance placed in one (the active one in active-active)."""
        zone = next((plan.nodes[i].zone for i in plan.gateway_instances() if plan.nodes[i].zone is not None), None)
        return None if zone is None else f"zone:{zone}"

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        # An empty zone is a valid target here (a non-event), unlike for the other faults.
        if spec.nodes:
            super().check(plan, spec)
        if not spec.text.startswith("zone:"):
            raise LabError(f"fault zone-down takes a zone: --target zone:N (1 to 3), not {spec.text!r}"
                           + ("" if self.default_target(plan) else
                              f" (no gateway instance of scenario {plan.scenario.name} is in a zone)"))

    def inject(self, target: FaultTarget) -> str:
        if not target.nodes:
            return f"zone {_zone_of(target)} holds no node of this lab: nothing went down"
        # All at once, as a zone goes: one after another, the first node's loss would be seen alone.
        with ThreadPoolExecutor(max_workers=len(target.nodes)) as pool:
            done = list(pool.map(lambda node: self.inject_node(target, node), target.nodes))
        return "; ".join(f"{node}: {what}" for node, what in zip(target.nodes, done))

    def restore(self, target: FaultTarget) -> str:
        if not target.nodes:
            return f"zone {_zone_of(target)} held no node of this lab: nothing to bring back"
        return super().restore(target)

    def inject_node(self, target: FaultTarget, node: str) -> str:
        if node in _probe_hosts(target.plan):
            # The probes run in this host: killed, it would take the measurement with it. Cut off
            # on every link, it is to its peers what a dead VM is (nothing reaches it, nothing leaves).
            target.cut_off(node, True)
            return "cut off on every link (it carries the probes, so it is isolated, not killed)"
        # A zone's VMs stop at once: nothing sent, nothing forwarded (see silence_and_kill).
        return target.silence_and_kill(node)

    def restore_node(self, target: FaultTarget, node: str) -> str:
        if node in _probe_hosts(target.plan):
            target.cut_off(node, False)
            return "links back"
        return super().restore_node(target, node)


def _zone_of(target: FaultTarget) -> str:
    return target.spec.text.partition(":")[2]


def _probe_hosts(plan: LabPlan) -> set[str]:
    return {host for pair in plan.scenario.probes for host in pair}


def _registered() -> dict[str, Fault]:
    # Faults of other modules (a circuit's) subclass these, so they are imported once these exist.
    from lab.failover.circuit_faults import CIRCUIT_FAULTS
    return {f.name: f for f in (Kill(), Maintenance(), Pause(), LinkDown(), Blackhole(), ZoneDown(), *CIRCUIT_FAULTS)}


FAULTS: dict[str, Fault] = _registered()


def check_target(plan: LabPlan, fault: Fault, text: str) -> TargetSpec:
    """The target resolved and checked against the fault; a one-line error otherwise."""
    spec = resolve_target(plan, text)
    fault.check(plan, spec)
    return spec


def get_fault(name: str) -> Fault:
    if name not in FAULTS:
        raise LabError(f"unknown fault {name!r}: choose from {', '.join(FAULTS)}")
    return FAULTS[name]


def target_choices(plan: LabPlan, fault: Fault) -> list[str]:
    """Every target of the plan that `fault` accepts, in the forms `--target` takes: what a
    front end offers to choose from (the console's break and failover forms)."""
    scenario = plan.scenario
    candidates = ([n for n, spec in scenario.nodes.items() if able(spec.kind, Can.BE_FAULT_TARGET)]
                  + [f"gateway:{name}" for name in scenario.gateways]
                  + [f"circuit:{name}" for name, g in scenario.gateways.items() if isinstance(g, ExpressRouteGateway)]
                  + [f"peering:{p.name}" for p in scenario.peerings]
                  + [f"zone:{n}" for n in azure_rules().zones.numbers
                     if any(spec.zone is not None for spec in scenario.nodes.values())]
                  + [f"link:{n}/{network}" for n, spec in scenario.nodes.items()
                     if able(spec.kind, Can.BE_FAULT_TARGET) for network in spec.links])
    accepted = []
    for text in candidates:
        try:
            check_target(plan, fault, text)
        except LabError:
            continue
        accepted.append(text)
    return accepted
