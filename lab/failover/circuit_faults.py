"""ExpressRoute's faults: a circuit link lost in the provider's network, an MSEE lost, the peering
location lost. Each resolves through the plan (a peering, a circuit, an MSEE) and has its restore.

A circuit link fails silently: the provider's network between the CE and the
MSEE drops everything while both ends keep their carrier, which is why BFD
matters on ExpressRoute. So `circuit-down` cuts the CE's end with a filter
(the interface stays up), never by taking the interface down, which FRR
would notice at once (fast external failover) whatever BFD does.
"""
from __future__ import annotations

from lab.model.errors import LabError
from lab.model.kinds import Can, able
from lab.model.schema import ExpressRouteGateway, LabPlan
from lab.failover.faults import FaultTarget, Kill, TargetSpec, Fault


def _circuit_gateway(plan: LabPlan) -> str | None:
    return next((n for n, g in plan.scenario.gateways.items() if isinstance(g, ExpressRouteGateway)), None)


class CircuitDown(Fault):
    name, planned = "circuit-down", False
    summary = ("the circuit's links lost in the provider's network (both ends keep carrier; BFD or the BGP "
               "hold timer notices): one link (peering:NAME) or the whole circuit (circuit:GATEWAY)")

    def default_target(self, plan: LabPlan) -> str | None:
        gateway = _circuit_gateway(plan)
        return f"circuit:{gateway}" if gateway else None

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        if not spec.links:
            raise LabError(f"fault circuit-down cuts circuit links: --target {spec.text!r} is none "
                           "(use peering:NAME or circuit:GATEWAY)")

    def inject(self, target: FaultTarget) -> str:
        done = []
        for node, network in target.spec.links:
            target.stamp(target.links_for(target.info(node)).cut(network, True))
            done.append(f"{network} cut at {node}")
        return ", ".join(done)

    def restore(self, target: FaultTarget) -> str:
        for node, network in target.spec.links:
            target.links_for(target.info(node)).cut(network, False)
        return ", ".join(f"{network} carries again" for _, network in target.spec.links)


class MseeDown(Kill):
    """A router that fails sends and forwards nothing more. Killed alone, a container's kernel
    still sends a FIN to every BGP peer ("Peer closed the session" at once) and forwards for
    seconds until the engine tears its namespace down: so every link is cut first, and its peers
    notice the loss as they would a dead router's, by BFD or the hold timer."""
    name = "msee-down"
    summary = ("one MSEE fails (or circuit:GATEWAY: both): cut off on every link, then SIGKILLed; its links "
               "and its sessions with the gateway go with it")

    def inject_node(self, target: FaultTarget, node: str) -> str:
        return target.silence_and_kill(node)

    def default_target(self, plan: LabPlan) -> str | None:
        gateway = _circuit_gateway(plan)
        if gateway is None:
            return None
        from lab.plan.gateway_types.expressroute import circuit_msees
        msees = circuit_msees(plan.scenario, plan.scenario.gateways[gateway])  # type: ignore[arg-type]
        return msees[0] if msees else None

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        others = [n for n in spec.nodes if not able(plan.nodes[n].kind, Can.EDGE_CIRCUITS)]
        if others or spec.interface is not None or not spec.nodes:
            raise LabError(f"fault {self.name} hits MSEEs: --target {spec.text!r} is not one "
                           f"(an msee node, or circuit:GATEWAY)")


class PeeringLocationDown(MseeDown):
    name = "peering-location-down"
    summary = ("both MSEEs of the circuit fail at once (the peering location is lost; cut off, then SIGKILLed): "
               "the VPN carries")

    def default_target(self, plan: LabPlan) -> str | None:
        return CircuitDown.default_target(self, plan)  # type: ignore[arg-type]

    def inject(self, target: FaultTarget) -> str:
        # Both silenced before either is killed: the location goes dark at once, not one MSEE a
        # tenth of a second before the other.
        for node in target.nodes:
            target.cut_off(node, True)
        for node in target.nodes:
            target.runtime.kill(target.container(node), "SIGKILL")
        return f"{', '.join(target.nodes)} cut off on every link, then SIGKILLed"

    def check(self, plan: LabPlan, spec: TargetSpec) -> None:
        super().check(plan, spec)
        if not spec.text.startswith("circuit:"):
            raise LabError(f"fault {self.name} takes a whole peering location: --target circuit:GATEWAY, "
                           f"not {spec.text!r}")


CIRCUIT_FAULTS = (CircuitDown(), MseeDown(), PeeringLocationDown())
