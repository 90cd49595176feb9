"""Withdrawal: the target's peers drop its tunnels and sessions and keep their other paths."""
from __future__ import annotations

from lab.model.daemon_events import Event
from lab.model.schema import LabPlan
from lab.failover.faults import Fault, TargetSpec
from lab.failover.metrics import DirectionResult, Phase, Withdrawal, withdrawal_breakdown
from lab.failover.stories.base import Story


def withdrawal_of(plan: LabPlan, spec: TargetSpec) -> Withdrawal:
    """The tunnels and sessions whose far ends must drop the target's paths."""
    hit = set(spec.nodes)
    tunnels, sessions = [], []
    for node in spec.nodes:
        for t in plan.tunnels_of(node):
            ends = tuple(n for n in ((t.device,) if node in t.instances else t.instances) if n not in hit)
            if ends:
                tunnels.append((t.name, ends))
        # The sessions over its tunnels, seen from their far ends (the VNet's own session with an
        # instance is not a path it loses: an instance leaving for maintenance keeps it).
        sources = {b.source for b in plan.sessions_of(node) if b.tunnel}
        by_tunnel: dict[str, list[tuple[str, str]]] = {}
        for b in plan.bgp_sessions:
            if b.tunnel and b.peer_address in sources and b.node not in hit:
                by_tunnel.setdefault(b.tunnel, []).append((b.node, str(b.peer_address)))
        sessions += [(label, tuple(views)) for label, views in by_tunnel.items()]
    routers = tuple(r for node in spec.nodes for g in plan.groups_of(node) if not g.moves_tunnels
                    for r in g.routers if r not in hit)
    return Withdrawal(target=spec.text, nodes=spec.nodes, tunnels=tuple(tunnels), sessions=tuple(sessions),
                      first_hop_routers=routers)


class WithdrawalStory(Story):
    name = "withdrawal"
    summary = "detected -> tunnels down at its peers -> BGP down at its peers -> traffic restored"

    @classmethod
    def applies(cls, plan: LabPlan, fault: Fault, spec: TargetSpec) -> bool:
        return True     # the default: whatever the target, its peers drop what went with it

    def phases(self, events: list[Event], fault_ns: int, until_ns: int,
               directions: list[DirectionResult]) -> list[Phase]:
        return withdrawal_breakdown(events, fault_ns, until_ns, withdrawal_of(self.plan, self.spec), directions)
