"""Outage: the target takes every instance of a gateway (a zonal gateway's zone): nothing is left
to take over, so traffic stops until the restore. Reported as the total outage it is."""
from __future__ import annotations

from lab.model.daemon_events import Event
from lab.model.schema import LabPlan
from lab.failover.faults import Fault, TargetSpec
from lab.failover.metrics import DETECTION_KINDS, DirectionResult, Phase, _event_phase, _flag_order, _traffic_phase
from lab.failover.stories.base import Story


def gateways_lost(plan: LabPlan, spec: TargetSpec) -> list[str]:
    """The gateways whose every instance the target hits."""
    return [name for name, gw in plan.scenario.gateways.items() if all(i in spec.nodes for i in gw.instances)]


class OutageStory(Story):
    name = "outage"
    summary = "detected -> (nothing takes over) -> traffic back only after the restore"

    @classmethod
    def applies(cls, plan: LabPlan, fault: Fault, spec: TargetSpec) -> bool:
        # Only where traffic had no other way: a gateway lost whole, with no other gateway beside it.
        lost = gateways_lost(plan, spec)
        return bool(lost) and len(lost) == len(plan.scenario.gateways)

    def phases(self, events: list[Event], fault_ns: int, until_ns: int,
               directions: list[DirectionResult]) -> list[Phase]:
        window = sorted((e for e in events if fault_ns <= e.t_ns <= until_ns), key=lambda e: e.t_ns)
        detected = next((e for e in window if e.kind in DETECTION_KINDS and e.node not in self.spec.nodes), None)
        lost = ", ".join(gateways_lost(self.plan, self.spec))
        return _flag_order([Phase("fault injected", 0.0, f"{self.spec.text}: every instance of {lost}"),
                            _event_phase("detected", detected, fault_ns),
                            _traffic_phase(directions)])
