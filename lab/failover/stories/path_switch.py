"""Path switch: ExpressRoute loses a link, an MSEE or the whole circuit, and traffic moves to the
other link or to the VPN; once the circuit is back, routing moves it back (the reversion).

Phases: the circuit detected down (BFD, or the BGP hold timer without it) -> the
best path changed on-premises (the CE's route to the VNet) -> the best path
changed in Azure (the VNet's route on-premises; the ExpressRoute gateway's
when only one link went and the VNet keeps its path) -> traffic restored.
Best-path changes are bgpd's own route updates to zebra (ROUTE events).
"""
from __future__ import annotations

from lab.model.daemon_events import BFD_DOWN, BGP_DOWN, ROUTE, Event
from lab.model.kinds import Can, able
from lab.model.schema import LabPlan
from lab.failover.faults import Fault, TargetSpec
from lab.failover.metrics import DirectionResult, Phase, _event_phase, _flag_order, _peer, _traffic_phase
from lab.failover.stories.base import Story
from lab.run.paths import EXPRESSROUTE, carriers, choosing_routers, onprem_prefixes, vnet_prefixes

def circuit_routers(plan: LabPlan) -> tuple[list[str], list[str]]:
    """(on-premises ends of circuit links, Azure's routers that choose between the paths)."""
    onprem = sorted({b.node for b in plan.bgp_sessions if b.carrier == EXPRESSROUTE and b.peering
                     and not able(plan.nodes[b.node].kind, Can.EDGE_CIRCUITS)})
    return onprem, choosing_routers(plan)[1]


def _prefix_of(event: Event) -> str:
    return event.detail.split()[0] if event.detail else ""


class PathSwitchStory(Story):
    name = "path switch"
    summary = "circuit detected down -> best path changed on-premises -> best path changed in Azure -> traffic"

    @classmethod
    def applies(cls, plan: LabPlan, fault: Fault, spec: TargetSpec) -> bool:
        return bool(spec.peerings) or any(able(plan.nodes[n].kind, Can.EDGE_CIRCUITS) for n in spec.nodes)

    def phases(self, events: list[Event], fault_ns: int, until_ns: int,
               directions: list[DirectionResult]) -> list[Phase]:
        window = sorted((e for e in events if fault_ns <= e.t_ns <= until_ns), key=lambda e: e.t_ns)
        views = {(b.node, str(b.peer_address)) for b in self.plan.bgp_sessions if b.carrier == EXPRESSROUTE
                 and (b.peering or not able(self.plan.nodes[b.node].kind, Can.ROUTE_VNET))}
        detected = next((e for e in window if e.kind in (BFD_DOWN, BGP_DOWN) and (e.node, _peer(e.detail)) in views),
                        None)
        onprem, azure = circuit_routers(self.plan)
        vnet = {str(p) for p in vnet_prefixes(self.plan)}
        sites = {str(p) for p in onprem_prefixes(self.plan)}
        instances = {i for g in self.plan.scenario.gateways.values() if g.type == EXPRESSROUTE for i in g.instances}
        onprem_changed = next((e for e in window if e.kind == ROUTE and e.node in onprem and _prefix_of(e) in vnet),
                              None)
        azure_changed = next((e for e in window if e.kind == ROUTE and e.node in azure and _prefix_of(e) in sites),
                             None) or next((e for e in window if e.kind == ROUTE and e.node in instances
                                            and _prefix_of(e) in sites), None)
        return _flag_order([
            Phase("fault injected", 0.0, self.spec.text),
            _event_phase("circuit detected down", detected, fault_ns),
            _event_phase("best path changed on-premises", onprem_changed, fault_ns),
            _event_phase("best path changed in Azure", azure_changed, fault_ns),
            _traffic_phase(directions),
        ])

    def noticed_within_s(self) -> float:
        """A silent loss is noticed by BFD, or else by the hold timer of each session that loses its
        peer: the cut peerings' and those with a node the fault takes (the gateway's MSEE sessions)."""
        taken = self.spec.nodes if self.fault is not None and self.fault.starts_containers else ()
        hit = {str(address) for n in taken for address in self.plan.nodes[n].links.values()}
        losing = [b for b in self.plan.bgp_sessions if b.bfd is None and b.node not in taken
                  and ((b.peering in self.spec.peerings and not taken) or str(b.peer_address) in hit)]
        return float(max((b.hold_s or self.plan.profile.bgp.hold_s for b in losing), default=0))

    def back_to_initial(self, status) -> list[str]:
        """The circuit carries again: the CE's routes to the VNet and the VNet's to the sites are ExpressRoute's."""
        onprem, azure = circuit_routers(self.plan)
        wanted = {**{n: {str(p) for p in vnet_prefixes(self.plan)} for n in onprem},
                  **{n: {str(p) for p in onprem_prefixes(self.plan)} for n in azure}}
        reasons = []
        for node, prefixes in wanted.items():
            rows = {r.prefix: r.next_hops for r in status.routes if r.node == node}
            for prefix in sorted(prefixes):
                ways, _ = carriers(self.plan, node, rows.get(prefix, []))
                if ways != {EXPRESSROUTE}:
                    reasons.append(f"{node} {prefix} carried by {', '.join(sorted(ways)) or 'nothing'}, "
                                   "not ExpressRoute")
        return reasons
