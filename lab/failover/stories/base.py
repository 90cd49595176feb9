"""What every failover story answers: whether it tells this fault on this target, and its phases.

A story is how a failover unfolds, read from the plan: another instance takes
over (hand-over), the target's peers drop its paths (withdrawal), traffic
moves to another path (path switch), or nothing is left to carry it (outage).
Each reads its phases from the control-plane events on one clock; the
runner asks the first story that applies. Pure.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from lab.model.daemon_events import Event
from lab.model.schema import LabPlan
from lab.failover.faults import Fault, TargetSpec
from lab.failover.metrics import DirectionResult, Phase


class Story(ABC):
    name: str
    summary: str

    def __init__(self, plan: LabPlan, spec: TargetSpec, fault: Fault | None = None):
        self.plan, self.spec, self.fault = plan, spec, fault

    @classmethod
    @abstractmethod
    def applies(cls, plan: LabPlan, fault: Fault, spec: TargetSpec) -> bool:
        """Whether this story tells `fault` on `spec` (asked in the registry's order)."""

    @abstractmethod
    def phases(self, events: list[Event], fault_ns: int, until_ns: int,
               directions: list[DirectionResult]) -> list[Phase]:
        """The failover's phases, each read from the events that show it."""

    def noticed_within_s(self) -> float:
        """How long the fault may go unnoticed by design (a BGP hold timer without BFD); 0: no bound
        of its own (the target's window is long enough)."""
        return 0.0

    def back_to_initial(self, status) -> list[str]:
        """What still differs from the initial state beyond who holds the addresses (the runner's own
        check): a path story waits for its path to carry again. Empty once back."""
        return []
