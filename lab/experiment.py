"""A failover run: baseline -> inject -> measure -> restore -> back to the initial state.

Each run returns a `RunResult` value (probes, events, figures, checks); the
report renders it. Every wait is bounded: a lab that never recovers ends the
measurement at target + grace and is reported as not restored.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from .errors import LabError
from .events import FAULT, RESTORE, Event
from .faults import FaultTarget, check_target, get_fault
from .lifecycle import poll_until, read_status, wait_for, wait_healthy
from .model import LabPlan
from .observe import Observation
from .timeline import (
    INTERRUPTION_INTERVALS,
    NS,
    Check,
    DirectionProbes,
    DirectionResult,
    Phase,
    analyse_direction,
    breakdown,
    checks,
    steady_since,
)
from .wiring import Adapters

# How often the live view and the end-of-run check look at the probes.
LOOK_EVERY_S = 0.1
BASELINE_WITHIN_S = 30.0
HEALTHY_AGAIN_WITHIN_S = 90.0
INITIAL_STATE_WITHIN_S = 150.0
HANDOVER_WITHIN_S = 30.0


@dataclass(frozen=True)
class FailoverSettings:
    fault: str
    target: str
    runs: int = 1
    interval_s: float = 0.02
    baseline_s: float = 2.0
    # Traffic must flow this long after the last interruption before a run ends.
    settle_s: float = 3.0
    # How long past the target a run keeps waiting for traffic to come back.
    grace_s: float = 30.0
    port: int = 47000


@dataclass
class RunResult:
    index: int
    fault: str
    target: str
    planned: bool
    target_s: float
    target_source: str
    interval_s: float
    started_ns: int
    fault_ns: int
    end_ns: int
    fault_detail: str
    directions: list[DirectionResult]
    phases: list[Phase]
    checks: list[Check]
    events: list[Event]
    probes: list[DirectionProbes]
    returned_by: str = ""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass
class FailoverReport:
    lab: str
    scenario: str
    profile: str
    fault: str
    fault_summary: str
    target: str
    planned: bool
    target_s: float
    target_source: str
    interval_s: float
    started_at: str
    machine: str
    runs: list[RunResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.passed for r in self.runs)


@dataclass
class Live:
    """What a live view shows while a run goes on."""
    run: int
    runs: int
    stage: str
    since_fault_s: float | None = None
    directions: list[tuple[str, int, int, float | None]] = field(default_factory=list)  # name, received, lost, steady for
    events: list[Event] = field(default_factory=list)


LiveView = Callable[[Live], None]


def machine_summary() -> str:
    return f"{os.cpu_count()} CPU, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _snapshot(observation: Observation, now_ns: int, interval_ns: int):
    """Per direction, for the live view: received, lost so far, and since when traffic flows."""
    rows = []
    steady = []
    for d in observation.directions():
        arrivals = sorted(r[2] for r in d.received)
        since = steady_since(arrivals, now_ns, INTERRUPTION_INTERVALS * interval_ns)
        steady.append(since)
        received = len({r[0] for r in d.received})
        # A couple of probes are always in flight: not counted as lost yet.
        rows.append((d.name, received, max(0, len(d.sent) - received - 2),
                     None if since is None else (now_ns - since) / NS))
    return rows, steady


def gateway_actives(plan: LabPlan, adapters: Adapters) -> dict[str, list[str]]:
    """Which instances of each gateway hold its public IP now."""
    return {g.gateway: sorted(g.active) for g in read_status(plan.lab, adapters).gateways}


def fault_target(plan: LabPlan, adapters: Adapters, node: str) -> FaultTarget:
    return FaultTarget(plan, node, adapters.runtime, adapters.ike_for, adapters.links_for, adapters.routes_for)


def fail_back(plan: LabPlan, adapters: Adapters, initial: dict[str, list[str]]) -> None:
    """Gives each gateway's IP back to the instances in `initial` by graceful hand-over,
    then waits until the lab has converged; raises LabError when it can't."""

    def not_initial() -> list[str]:
        status = read_status(plan.lab, adapters)
        reasons = status.unconverged_reasons()
        for g in status.gateways:
            if sorted(g.active) != initial.get(g.gateway, sorted(g.active)):
                reasons.append(f"{g.gateway} active on {', '.join(g.active) or 'none'}")
        return reasons

    wait_healthy(plan.lab, adapters.runtime, HEALTHY_AGAIN_WITHIN_S)
    actives = gateway_actives(plan, adapters)
    for gateway, wanted in initial.items():
        for instance in [i for i in actives.get(gateway, []) if i not in wanted]:
            handover = fault_target(plan, adapters, instance)
            handover.vrrp("stop")

            def not_back() -> list[str]:
                now = gateway_actives(plan, adapters).get(gateway)
                return [] if now == wanted else [f"active: {', '.join(now or []) or 'none'}"]

            wait_for(f"{gateway} back on {', '.join(wanted)}", not_back, HANDOVER_WITHIN_S)
            handover.vrrp("start")
    wait_for("the initial state", not_initial, INITIAL_STATE_WITHIN_S)


class FailoverRunner:
    """Runs one fault against one instance, `runs` times, on a converged lab."""

    def __init__(self, plan: LabPlan, adapters: Adapters, settings: FailoverSettings,
                 live: LiveView, recreate: Callable[[], None]):
        self.plan = plan
        self.adapters = adapters
        self.settings = settings
        self.live = live
        self.recreate = recreate
        self.fault = get_fault(settings.fault)
        check_target(plan, settings.target)
        if settings.runs < 1:
            raise LabError(f"--runs must be at least 1, not {settings.runs}")
        target = plan.profile.targets.planned_s if self.fault.planned else plan.profile.targets.unplanned_s
        self.target_s, self.target_source = target.value, target.source
        self.initial: dict[str, list[str]] = {}

    def run_all(self) -> FailoverReport:
        status = read_status(self.plan.lab, self.adapters)
        if not status.converged:
            raise LabError(f"lab {self.plan.lab} is not converged ({'; '.join(status.unconverged_reasons()[:3])}): "
                           "check `lab status`; `lab repair` undoes faults left by `lab break`")
        self.initial = {g.gateway: sorted(g.active) for g in status.gateways}
        report = FailoverReport(
            lab=self.plan.lab, scenario=self.plan.scenario.name, profile=self.plan.profile.name,
            fault=self.fault.name, fault_summary=self.fault.summary, target=self.settings.target,
            planned=self.fault.planned, target_s=self.target_s, target_source=self.target_source,
            interval_s=self.settings.interval_s, started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            machine=machine_summary(),
        )
        for index in range(1, self.settings.runs + 1):
            report.runs.append(self.run_once(index))
        return report

    def _show(self, index: int, stage: str, observation: Observation | None = None,
              fault_ns: int | None = None, events: list[Event] | None = None) -> list[int | None]:
        now = time.monotonic_ns()
        live = Live(index, self.settings.runs, stage)
        steady: list[int | None] = []
        if observation is not None:
            live.directions, steady = _snapshot(observation, now, int(self.settings.interval_s * NS))
            live.events = sorted((events or []) + observation.live_events, key=lambda e: e.t_ns)
        if fault_ns is not None:
            live.since_fault_s = (now - fault_ns) / NS
        self.live(live)
        return steady

    def run_once(self, index: int) -> RunResult:
        s = self.settings
        target = self._target(s.target)
        window_s = self.target_s + s.grace_s
        bound_s = BASELINE_WITHIN_S + s.baseline_s + window_s + s.settle_s + 30
        observation = Observation(self.plan, self.adapters, s.interval_s, s.port, bound_s)
        fault_events: list[Event] = []
        interval_ns = int(s.interval_s * NS)
        self._show(index, "starting probes")
        observation.start()
        try:
            self._baseline(index, observation)
            fault_ns = time.monotonic_ns()
            try:
                detail = self.fault.inject(target)
                fault_events.append(Event(fault_ns, "fault", s.target, FAULT, f"{self.fault.name}: {detail}"))
                min_end = fault_ns + int(max(s.settle_s, 2 * INTERRUPTION_INTERVALS * s.interval_s) * NS)

                def settled() -> bool:
                    now = time.monotonic_ns()
                    steady = self._show(index, "measuring", observation, fault_ns, fault_events)
                    return now >= min_end and all(t is not None and now - max(t, fault_ns) >= s.settle_s * NS
                                                  for t in steady)

                # Not settled by the deadline: the run ends there, not restored.
                poll_until(settled, window_s, LOOK_EVERY_S)
                end_ns = time.monotonic_ns()
            except BaseException:
                # Half a fault, or an interrupted run, is still a fault: undo it first.
                observation.stop()
                self.fault.restore(target)
                self._return_to_initial(index)
                raise
        finally:
            observation.stop()
        self._show(index, "collecting events")
        events = sorted(fault_events + observation.live_events + observation.recorded_events(end_ns),
                        key=lambda e: e.t_ns)
        probes = observation.directions()
        directions = [analyse_direction(p, fault_ns, end_ns, interval_ns) for p in probes]
        phases = breakdown(events, fault_ns, s.target, directions)
        result = RunResult(
            index=index, fault=self.fault.name, target=s.target, planned=self.fault.planned,
            target_s=self.target_s, target_source=self.target_source, interval_s=s.interval_s,
            started_ns=observation.started_ns, fault_ns=fault_ns, end_ns=end_ns, fault_detail=detail,
            directions=directions, phases=phases, checks=checks(directions, phases, self.target_s, s.interval_s),
            events=events, probes=probes,
        )
        self._show(index, "restoring")
        restored = self.fault.restore(target)
        result.events.append(Event(time.monotonic_ns(), "fault", s.target, RESTORE, restored))
        result.returned_by = self._return_to_initial(index)
        return result

    def _baseline(self, index: int, observation: Observation) -> None:
        """Waits until traffic has flowed both ways, uninterrupted, for the baseline."""
        def steady_long_enough() -> bool:
            now = time.monotonic_ns()
            steady = self._show(index, "baseline", observation)
            return bool(steady) and all(t is not None and now - t >= self.settings.baseline_s * NS for t in steady)

        if not poll_until(steady_long_enough, BASELINE_WITHIN_S, LOOK_EVERY_S):
            raise LabError(f"probe traffic did not flow steadily both ways within {BASELINE_WITHIN_S:.0f} s "
                           "before the fault: check `lab status`")

    def _return_to_initial(self, index: int) -> str:
        """Failback to the instances that were active at the start; re-creates the lab if that fails."""
        self._show(index, "failing back")
        try:
            fail_back(self.plan, self.adapters, self.initial)
            return "failback"
        except LabError as exc:
            self._show(index, f"re-creating the lab ({exc})")
            self.recreate()
            return f"re-created ({exc})"

    def _target(self, node: str) -> FaultTarget:
        return fault_target(self.plan, self.adapters, node)
