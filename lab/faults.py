"""Faults a failover run injects into a gateway instance, each with its restore.

A fault only reaches the node through ports (the container runtime, VICI,
netlink), so each one reads as the operator's action it imitates. `restore`
undoes the fault itself; putting the lab back in its initial state
(failback) is the experiment's job, the same for every fault.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import LabError
from .model import LabPlan
from .ports import ContainerInfo, ContainerRuntime, IkeControl, LinkControl, RouteControl
from .status import running_node

IKE_PORTS = [500, 4500]
IKE_INIT_PORT = 500
DELETE_TIMEOUT_S = 5.0


@dataclass
class FaultTarget:
    """The instance a fault hits, and how to reach it."""
    plan: LabPlan
    node: str
    runtime: ContainerRuntime
    ike_for: Callable[[ContainerInfo], IkeControl]
    links_for: Callable[[ContainerInfo], LinkControl]
    routes_for: Callable[[ContainerInfo], RouteControl]
    # When the fault's first change took effect in the node (the lab's clock), if the node said.
    applied_ns: int | None = None

    @property
    def container(self) -> str:
        return self.plan.nodes[self.node].container

    def info(self) -> ContainerInfo:
        return running_node(self.runtime, self.plan.lab, self.node)

    @property
    def public_interface(self) -> str:
        """The instance's internet-facing link: named after the network holding the public IP."""
        owner = self.plan.instance_gateway(self.node)
        if owner is None:
            raise LabError(f"{self.node} is not a gateway instance")
        return owner[1].public_ip.network

    def tunnel_names(self) -> list[str]:
        return [t.name for t in self.plan.tunnels_of(self.node)]

    def shut_down_tunnel_sessions(self) -> None:
        """Ends the BGP (and BFD) sessions this instance runs over its tunnels."""
        owner = self.plan.instance_gateway(self.node)
        if owner is None:
            raise LabError(f"{self.node} is not a gateway instance")
        gateway = owner[1]
        bfd_local = str(gateway.bgp_peer_ip.address) if self.plan.profile.bfd else None
        routes = self.routes_for(self.info())
        for t in self.plan.tunnels_of(self.node):
            peer = self.plan.scenario.nodes[t.device].bgp_peer_ip
            routes.shut_down_peer(gateway.asn, str(peer), bfd_local)

    def vrrp(self, action: str) -> None:
        code, output = self.runtime.exec(self.container, ["lab-vrrp", action], timeout_s=15)
        if code != 0:
            raise LabError(f"{self.node}: lab-vrrp {action} failed: {output.strip()[:200]}")


class Fault:
    name: str
    planned: bool
    summary: str

    def inject(self, target: FaultTarget) -> str:
        """Applies the fault; returns what was done, for the timeline."""
        raise LabError(f"fault {self.name} can't be injected")

    def restore(self, target: FaultTarget) -> str:
        raise LabError(f"fault {self.name} can't be restored")


class Kill(Fault):
    name, planned = "kill", False
    summary = "SIGKILL the instance's container (unplanned loss of the instance)"

    def inject(self, target: FaultTarget) -> str:
        target.runtime.kill(target.container, "SIGKILL")
        return "container SIGKILLed"

    def restore(self, target: FaultTarget) -> str:
        target.runtime.start(target.container)
        return "container started again"


class Maintenance(Fault):
    name, planned = "maintenance", True
    summary = "graceful hand-over: BGP and BFD shut down, IKE DELETE to the peers, then the public IP is released"

    def inject(self, target: FaultTarget) -> str:
        # New IKE_SA_INIT from the peers would land on this instance until the
        # IP moves: refuse them, so they retry against the standby.
        target.applied_ns = target.links_for(target.info()).block_udp_ports([IKE_INIT_PORT], True)
        # Drain first, as a router leaving service does: the peers drop the
        # session now. Left up, the device's BFD session with this instance
        # would expire later and take the new instance's BGP session with it.
        target.shut_down_tunnel_sessions()
        ike = target.ike_for(target.info())
        for tunnel in target.tunnel_names():
            ike.terminate(tunnel, timeout_s=DELETE_TIMEOUT_S)
        target.vrrp("stop")
        return "BGP and BFD shut down, IKE DELETE sent, VRRP left with priority 0"

    def restore(self, target: FaultTarget) -> str:
        # Back from maintenance the way a patched VM comes back: rebooted, with
        # none of the drain left over, joining VRRP as the standby.
        target.runtime.restart(target.container)
        return "instance restarted, back as standby"


class Pause(Fault):
    name, planned = "pause", False
    summary = "freeze the instance's container (a hung VM)"

    def inject(self, target: FaultTarget) -> str:
        target.runtime.pause(target.container)
        return "container paused"

    def restore(self, target: FaultTarget) -> str:
        target.runtime.unpause(target.container)
        # A frozen master wakes up still believing it holds the IP, with SAs its
        # peers already dropped: make it leave and rejoin as a backup.
        target.vrrp("stop")
        target.vrrp("start")
        return "container unpaused, VRRP rejoined as backup"


class LinkDown(Fault):
    name, planned = "link-down", False
    summary = "cut the instance's internet-facing interface (netlink, in its namespace)"

    def inject(self, target: FaultTarget) -> str:
        target.applied_ns = target.links_for(target.info()).set_link(target.public_interface, False)
        return f"link {target.public_interface} down"

    def restore(self, target: FaultTarget) -> str:
        target.links_for(target.info()).set_link(target.public_interface, True)
        return f"link {target.public_interface} up"


class Blackhole(Fault):
    name, planned = "blackhole", False
    summary = "drop the instance's IKE and ESP-in-UDP traffic (an ISP outage; VRRP still sees it alive)"

    def inject(self, target: FaultTarget) -> str:
        target.applied_ns = target.links_for(target.info()).block_udp_ports(IKE_PORTS, True)
        return "UDP 500/4500 blackholed"

    def restore(self, target: FaultTarget) -> str:
        target.links_for(target.info()).block_udp_ports(IKE_PORTS, False)
        return "UDP 500/4500 open again"


FAULTS: dict[str, Fault] = {f.name: f for f in (Kill(), Maintenance(), Pause(), LinkDown(), Blackhole())}


def check_target(plan: LabPlan, node: str) -> None:
    """Faults hit gateway instances; anything else is refused in one line."""
    instances = plan.gateway_instances()
    if node not in instances:
        raise LabError(f"--target {node!r} is not a gateway instance of scenario {plan.scenario.name} "
                       f"(choose from {', '.join(instances)})")


def get_fault(name: str) -> Fault:
    if name not in FAULTS:
        raise LabError(f"unknown fault {name!r}: choose from {', '.join(FAULTS)}")
    return FAULTS[name]
