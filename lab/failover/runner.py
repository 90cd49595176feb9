"""A failover run: baseline -> inject -> measure -> restore -> fail back -> measure the reversion.

Each run returns a `RunResult` value (probes, events, figures, checks); the
report renders it. Probes run from the baseline through the failback, so the
reversion (the failback's own convergence) is measured like the failover.
Every wait is bounded: a lab that never converges ends the measurement at
target + grace + the Sustained Convergence Validation Time, and is reported
as not converged.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Protocol

from lab.model.azure import azure_rules
from lab.model.errors import LabError
from lab.model.daemon_events import FAULT, RESTORE, Event
from lab.model.events import ControlEvent, EventStream, FailoverDone, PhaseObserved, ProbeTick, RunDone, Stage
from lab.failover.faults import FaultTarget, TargetSpec, check_target, get_fault
from lab.run.lifecycle import detach_stale_ports, ensure_guard, poll_until, read_status, wait_for, wait_healthy
from lab.run.locks import hold_lab
from lab.model.schema import LabPlan, VrrpGroupPlan
from lab.run.status import LabStatus, RouteRow, running_node
from lab.run.clock import LabClock
from lab.run.observe import Observation, measure_clock
from lab.failover.stories import story_for
from lab.run.paths import choosing_routers, route_paths
from lab.failover.metrics import (
    INTERRUPTION_INTERVALS,
    NS,
    Check,
    DirectionProbes,
    DirectionResult,
    Method,
    Phase,
    analyse_direction,
    checks,
    invalid_reason,
    run_windows,
    steady_since,
)
from lab.run.ports import Adapters

# How often the live view and the end-of-run check look at the probes.
LOOK_EVERY_S = 0.1
BASELINE_WITHIN_S = 30.0
HEALTHY_AGAIN_WITHIN_S = 90.0
INITIAL_STATE_WITHIN_S = 150.0
HANDOVER_WITHIN_S = 30.0
# Every wait of a failback, end to end: the bound of the probes through it.
FAILBACK_WITHIN_S = HEALTHY_AGAIN_WITHIN_S + HANDOVER_WITHIN_S + INITIAL_STATE_WITHIN_S
# The event that starts the reversion: the graceful hand-over back to the initial instance.
FAILBACK = "failback"
# Two machines' monotonic clocks drift apart by parts per million: over a run of a
# few minutes, more than this means the offset the run used no longer held.
CLOCK_DRIFT_ALLOWED_NS = 1_000_000


@dataclass(frozen=True)
class FailoverSettings:
    fault: str
    target: str
    runs: int = 1
    interval_s: float = 0.02
    # Traffic must flow this long before the fault, without loss or delay (else the run is invalid).
    baseline_s: float = 2.0
    # A measurement lasts at least this long after its event.
    settle_s: float = 3.0
    # How long past the target a run keeps waiting for traffic to converge.
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
    end_ns: int                  # end of the failover's measurement window
    fault_detail: str
    directions: list[DirectionResult]
    phases: list[Phase]
    checks: list[Check]
    events: list[Event]
    probes: list[DirectionProbes]
    returned_by: str = ""
    invalid: str | None = None   # why the baseline disqualifies the run; None: valid
    restore_ns: int | None = None
    failback_ns: int | None = None   # the reversion's event: the hand-over back; None: none happened
    stopped_ns: int | None = None    # when the probes stopped (end of the reversion's window)
    reversion: list[DirectionResult] = field(default_factory=list)
    # The restore's own window: from the failover's end until traffic converged after the restore.
    restore: list[DirectionResult] = field(default_factory=list)
    restore_end_ns: int | None = None
    # From there to the failback's hand-over (or the last probe): the lab waiting for its sessions and
    # reading status. Measured and reported, not judged: on 2 cores those reads can delay a probe.
    waiting: list[DirectionResult] = field(default_factory=list)
    # The lab's clock (lab/run/clock.py): the engine's monotonic minus this machine's, how well it is known,
    # and how far it moved between the start and the end of the run. All 0 when the two are one clock.
    clock_offset_ns: int = 0
    clock_uncertainty_ns: int = 0
    clock_drift_ns: int = 0
    # What carried each prefix (lab/run/paths.py), read "before" the fault, "during" it (after the
    # failover window) and "after" the failback: the resiliency report's columns.
    paths: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Within target; an invalid run is neither passed nor failed, and so not passed."""
        return self.invalid is None and all(c.passed for c in self.checks)

    @property
    def verdict(self) -> str:
        if self.invalid is not None:
            return "INVALID"
        return "PASS" if self.passed else "FAIL"


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
    sustained_s: float
    started_at: str
    machine: str
    clock: str = ""
    probe_flows: int = 1
    # Other figures documented for the same event (value, source): shown, not judged.
    also_documented: list[tuple[float, str]] = field(default_factory=list)
    # Where the profile departs from what Azure documents, one line each.
    departures: list[str] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)
    runs_asked: int = 1
    threshold_s: float = 0.1                 # the Forwarding Delay Threshold the runs were judged with
    baseline_s: float = 2.0                  # how long traffic had to be clean before each fault
    # The restore is judged against the planned target (the failback is measured, not judged).
    return_target_s: float = 0.0
    return_target_source: str = ""
    unmeasured: list[str] = field(default_factory=list)   # attempts that gave no run, and why

    @property
    def valid_count(self) -> int:
        return sum(r.invalid is None for r in self.runs)

    @property
    def measured(self) -> bool:
        """As many valid runs as asked for: else the verdict is "could not measure"."""
        return self.valid_count >= self.runs_asked

    def within(self, limit_s: float) -> int:
        """How many valid runs the verdict's own checks pass against `limit_s` instead of the target."""
        return sum(r.invalid is None and all(c.passed for c in checks(r.directions, limit_s)) for r in self.runs)

    @property
    def passed(self) -> bool:
        """Every valid run passed, and there were as many as asked for."""
        return self.measured and all(r.passed for r in self.runs if r.invalid is None)

    @property
    def verdict(self) -> str:
        """FAIL if a valid run missed a target; else PASS with the runs asked for, or INVALID (could not measure)."""
        if any(r.verdict == "FAIL" for r in self.runs):
            return "FAIL"
        return "PASS" if self.passed else "INVALID"


def machine_summary(engine: str) -> str:
    """The engine's machine (where the lab runs) and this one (where `lab` runs)."""
    return (f"engine: {engine}; lab: {os.cpu_count()} CPU, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


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


def holders(plan: LabPlan, adapters: Adapters) -> dict[str, list[str]]:
    """Who is active now: each gateway's active instances and each VRRP group's holders, by name."""
    return holders_in(read_status(plan.lab, adapters))


def holders_in(status: LabStatus) -> dict[str, list[str]]:
    found = {g.gateway: sorted(g.active) for g in status.gateways}
    found.update({vrrp_key(g.group): sorted(g.holders) for g in status.vrrp})
    return found


def vrrp_key(group: str) -> str:
    """A VRRP group's entry in the initial state, apart from the gateways' (a group may share a gateway's name)."""
    return f"vrrp {group}"


def fault_target(plan: LabPlan, adapters: Adapters, spec: TargetSpec) -> FaultTarget:
    return FaultTarget(plan, spec, adapters.runtime, adapters.ike_for, adapters.links_for, adapters.routes_for,
                       after_start=lambda: detach_stale_ports(plan, adapters))


def _node(node: str) -> TargetSpec:
    return TargetSpec(node, (node,))


def fail_back(plan: LabPlan, adapters: Adapters, initial: dict[str, list[str]],
              handing_over: Callable[[str], None] | None = None,
              story_says: Callable[[LabStatus], list[str]] | None = None) -> None:
    """Gives each VRRP group's addresses back to the routers in `initial` by graceful hand-over,
    then waits until the lab has converged with every gateway as in `initial` and the story's own
    state is back (`story_says`: a path story's path carrying again); raises LabError when it
    can't. `handing_over(router)` is called as each hand-over starts."""

    def not_initial() -> list[str]:
        status = read_status(plan.lab, adapters)
        reasons = status.unconverged_reasons() + (story_says(status) if story_says else [])
        now = holders_in(status)
        for name, wanted in initial.items():
            if now.get(name, wanted) != wanted:
                reasons.append(f"{name} active on {', '.join(now[name]) or 'none'}")
        return reasons

    wait_healthy(plan.lab, adapters.runtime, HEALTHY_AGAIN_WITHIN_S)
    current = holders(plan, adapters)
    for group in plan.vrrp_groups:
        # A gateway's group holds what its active instances hold: an initial state that names
        # only the gateway (recorded by an older `lab break`, say) still says who gets it back.
        wanted = initial.get(vrrp_key(group.name), initial.get(group.name) if group.moves_tunnels else None)
        if wanted is None:
            continue
        leaving = [r for r in current.get(vrrp_key(group.name), []) if r not in wanted]
        if leaving:
            # Addresses go back only to a router ready to carry them, as a pre-emption delay
            # does: handed to one whose sessions are still coming up, they would black-hole.
            wait_for(f"{', '.join(wanted)} ready to take {group.name} back",
                     lambda: sessions_not_up(plan, adapters, group, wanted), INITIAL_STATE_WITHIN_S)
        for router in leaving:
            handover = fault_target(plan, adapters, _node(router))
            if handing_over is not None:
                handing_over(router)
            if group.moves_tunnels:
                # Drained first, as maintenance does: left running, its BFD session (from the shared
                # address it gives up) expired later and took the new holder's BGP session with it.
                handover.shut_down_tunnel_sessions(router)
            handover.vrrp(router, "stop")

            def not_back(name: str = vrrp_key(group.name)) -> list[str]:
                now = holders(plan, adapters).get(name)
                return [] if now == wanted else [f"held by: {', '.join(now or []) or 'none'}"]

            wait_for(f"{group.name} back on {', '.join(wanted)}", not_back, HANDOVER_WITHIN_S)
            handover.vrrp(router, "start")
            if group.moves_tunnels:
                handover.bring_up_tunnel_sessions(router)
    wait_for("the initial state", not_initial, INITIAL_STATE_WITHIN_S)


def sessions_not_up(plan: LabPlan, adapters: Adapters, group: VrrpGroupPlan, routers: list[str]) -> list[str]:
    """The BGP sessions `routers` need before taking `group`'s addresses: all of theirs, but those
    over tunnels that only come with the addresses (a gateway's shared IP)."""
    up = {(b.node, b.peer) for b in read_status(plan.lab, adapters).bgp if b.state == "Established"}
    return [f"{b.node} BGP {b.peer_address} not Established" for r in routers for b in plan.sessions_of(r)
            if not (b.tunnel and group.moves_tunnels) and (r, str(b.peer_address)) not in up]


class NotMeasured(LabError):
    """A run that could not be measured (its baseline never got clean): repeated, not judged."""


class RunSteps(Protocol):
    """What a run does to the lab, in the order the runner calls it: the side effects, faked in unit tests."""

    def prepare(self) -> None:
        """Checks the lab is converged and the target active, and records who is active (for the failback)."""

    def machine(self) -> str: ...

    def measure_clock(self) -> LabClock: ...

    def observe(self, clock: LabClock, interval_s: float, port: int, bound_s: float) -> Observation: ...

    def inject(self) -> tuple[str, int | None]:
        """Injects the fault: what was done, and the node's own stamp of the first change if it gave one."""

    def restore(self) -> str: ...

    def fail_back(self, handing_over: Callable[[str], None]) -> None:
        """Back to the initial state; raises LabError when it can't."""

    def recreate(self) -> None: ...

    def paths(self) -> list[dict]:
        """What carries each prefix now (PathRow dicts); a light read, taken outside the judged windows."""

    def poll(self, done: Callable[[], bool], within_s: float, every_s: float) -> bool: ...


class LabSteps:
    """The steps of a run on a real lab, through the adapters."""

    def __init__(self, plan: LabPlan, adapters: Adapters, fault_name: str, spec: TargetSpec,
                 recreate: Callable[[], None], events: EventStream):
        self.plan, self.adapters, self.spec, self.events = plan, adapters, spec, events
        self.fault = get_fault(fault_name)
        self._recreate = recreate
        self.initial: dict[str, list[str]] = {}
        self._target: FaultTarget | None = None
        # What the failover's story needs back besides the holders (a path carrying again).
        self.story_says = story_for(plan, self.fault, spec).back_to_initial

    def prepare(self) -> None:
        repaired = ensure_guard(self.plan.lab, self.adapters)
        if repaired:
            self.events.note(self.plan.lab, repaired)
        status = read_status(self.plan.lab, self.adapters)
        if not status.converged:
            raise LabError(f"lab {self.plan.lab} is not converged ({'; '.join(status.unconverged_reasons()[:3])}): "
                           "check `lab status`; `lab repair` undoes faults left by `lab break`")
        self.initial = holders(self.plan, self.adapters)
        standbys = [n for g in status.gateways if g.strategy.has_standbys
                    for n in g.instances if n not in g.active]
        idle = [n for n in self.spec.nodes if n in standbys]
        if idle and len(idle) == len(self.spec.nodes):
            # Hitting a standby measures nothing: say so rather than report a 0 s "failover".
            raise LabError(f"--target {self.spec.text}: {', '.join(idle)} is not active now "
                           f"(active: {', '.join(status.active_instances) or 'none'}): target the active instance")

    def machine(self) -> str:
        return machine_summary(self.adapters.runtime.engine_summary())

    def measure_clock(self) -> LabClock:
        return measure_clock(self.adapters, self.plan.nodes[self.plan.scenario.probes[0][0]].container)

    def observe(self, clock: LabClock, interval_s: float, port: int, bound_s: float) -> Observation:
        return Observation(self.plan, self.adapters, clock, interval_s, port, bound_s)

    def inject(self) -> tuple[str, int | None]:
        self._target = fault_target(self.plan, self.adapters, self.spec)
        detail = self.fault.inject(self._target)
        return detail, self._target.applied_ns

    def restore(self) -> str:
        target = self._target or fault_target(self.plan, self.adapters, self.spec)
        return self.fault.restore(target)

    def fail_back(self, handing_over: Callable[[str], None]) -> None:
        fail_back(self.plan, self.adapters, self.initial, handing_over, self.story_says)

    def recreate(self) -> None:
        self._recreate()

    def paths(self) -> list[dict]:
        # Only the routers that choose between paths, and only their routes: two short reads.
        onprem, azure = choosing_routers(self.plan)
        rows = []
        for node in onprem + azure:
            try:
                hops = self.adapters.routes_for(running_node(self.adapters.runtime, self.plan.lab, node)).bgp_next_hops()
            except LabError:
                hops = {}
            rows += [RouteRow(node, prefix, next_hops) for prefix, next_hops in hops.items()]
        return [p.to_dict() for p in route_paths(self.plan, rows)]

    def poll(self, done: Callable[[], bool], within_s: float, every_s: float) -> bool:
        return poll_until(done, within_s, every_s)


class FailoverRunner:
    """Runs one fault against one target until `runs` valid runs are in, on a converged lab.

    A run's windows cover every moment from its baseline to its last probe:
    the fault's, from the fault until traffic converged; the restore's (the
    restore is a Convergence Event of its own), from there until traffic
    converged again; the wait, from there until the failback's hand-over
    (the lab waiting for its sessions: reported, not judged); the
    failback's (the reversion), until traffic converged again. The fault is
    judged against its target, the restore against the planned one. The
    failback is the lab's own way back to its initial state, the hand-over
    `maintenance` times: measured and reported, not judged again in every
    run of every fault.
    """

    def __init__(self, plan: LabPlan, adapters: Adapters | None, settings: FailoverSettings,
                 recreate: Callable[[], None], events: EventStream | None = None, steps: RunSteps | None = None):
        """On the lab the adapters reach, or through `steps` (a fake lab, in unit tests). Stages, probe
        ticks, control events as they arrive, each run's phases and result go to `events`."""
        self.plan = plan
        self.events = events or EventStream()
        self.settings = settings
        self._shown: tuple[int, Stage] | None = None
        self._published: set[Event] = set()    # the current run's control events already on the stream
        self.fault = get_fault(settings.fault)
        self.spec = check_target(plan, self.fault, settings.target)
        if steps is None:
            if adapters is None:
                raise ValueError("a runner needs the adapters or its steps")
            steps = LabSteps(plan, adapters, settings.fault, self.spec, recreate, self.events)
        self.steps = steps
        if settings.runs < 1:
            raise LabError(f"--runs must be at least 1, not {settings.runs}")
        target = plan.target_for(self.fault.name, self.fault.planned)
        self.target_s, self.target_source = target.value, target.source
        planned = plan.profile.targets.planned_s
        self.return_target_s, self.return_target_source = planned.value, planned.source
        self.also_documented = [(f.value, f.source) for f in target.also]
        self.sustained_s = plan.profile.convergence.sustained_s
        self.method = Method(interval_ns=int(settings.interval_s * NS), sustained_ns=int(self.sustained_s * NS),
                             baseline_ns=int(settings.baseline_s * NS), flows=plan.scenario.probe_flows,
                             threshold_intervals=plan.profile.convergence.threshold_intervals)
        # How this failover unfolds (lab/failover/stories/): another instance takes over, the peers
        # withdraw the target's paths, traffic switches path, or nothing is left to carry it.
        self.story = story_for(plan, self.fault, self.spec)
        self.clock: LabClock | None = None

    @property
    def attempts_allowed(self) -> int:
        """Runs tried in all before giving up on `runs` valid ones: each may be repeated, and at least two."""
        return self.settings.runs + max(2, self.settings.runs)

    def run_all(self) -> FailoverReport:
        """Every run, holding the lab: no `down` or second failover can cut in."""
        with hold_lab(self.plan.lab, "failover"):
            report = self._run_all()
        self.events.publish(FailoverDone(self.plan.lab, report=report))
        return report

    def _run_all(self) -> FailoverReport:
        self.steps.prepare()
        report = FailoverReport(
            lab=self.plan.lab, scenario=self.plan.scenario.name, profile=self.plan.profile.name,
            fault=self.fault.name, fault_summary=self.fault.summary, target=self.settings.target,
            planned=self.fault.planned, target_s=self.target_s, target_source=self.target_source,
            interval_s=self.settings.interval_s, sustained_s=self.sustained_s,
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            machine=self.steps.machine(), clock=self._measure_clock().summary,
            probe_flows=self.plan.scenario.probe_flows, also_documented=self.also_documented,
            departures=list(azure_rules().departures(self.plan.profile).values()),
            runs_asked=self.settings.runs, threshold_s=self.method.threshold_ns / NS,
            baseline_s=self.settings.baseline_s,
            return_target_s=self.return_target_s, return_target_source=self.return_target_source,
        )
        attempt = 0
        while report.valid_count < self.settings.runs and attempt < self.attempts_allowed:
            attempt += 1
            try:
                run = self.run_once(attempt)
            except NotMeasured as exc:
                report.unmeasured.append(f"run {attempt}: {exc}")
                self.events.note(self.plan.lab, f"run {attempt} could not be measured: {exc}")
                continue
            report.runs.append(run)
            for phase in run.phases:
                self.events.publish(PhaseObserved(self.plan.lab, run=attempt, phase=phase.name, at_s=phase.at_s))
            self.events.publish(RunDone(self.plan.lab, run=attempt, result=run))
        return report

    def _show(self, index: int, stage: Stage, observation: Observation | None = None,
              event_ns: int | None = None, events: list[Event] | None = None, detail: str = "") -> list[int | None]:
        """Publishes where the run is: the stage when it changes, control events not yet published,
        and a probe tick per direction; returns since when each direction has flowed steadily."""
        lab = self.plan.lab
        if self._shown != (index, stage):
            self._shown = (index, stage)
            self.events.stage(lab, stage, detail, run=index, runs=self.settings.runs)
        steady: list[int | None] = []
        if observation is None:
            return steady
        now = self.clock.now_ns()
        for event in sorted(set(events or []).union(observation.live_events) - self._published, key=lambda e: e.t_ns):
            self._published.add(event)
            self.events.publish(ControlEvent(lab, event=event))
        rows, steady = _snapshot(observation, now, int(self.settings.interval_s * NS))
        since_event_s = None if event_ns is None else (now - event_ns) / NS
        for name, delivered, lost, flowing_for_s in rows:
            self.events.publish(ProbeTick(lab, run=index, direction=name, delivered=delivered, lost=lost,
                                          flowing_for_s=flowing_for_s, since_event_s=since_event_s))
        return steady

    def run_once(self, index: int) -> RunResult:
        s = self.settings
        threshold_s = self.method.threshold_ns / NS
        # A story may know the fault goes unnoticed longer than the target (a hold timer without
        # BFD): the window waits that out, so the run measures the outage rather than its cut-off.
        measure_s = max(self.target_s, self.story.noticed_within_s()) + s.grace_s + self.sustained_s + threshold_s
        returning_s = self.return_target_s + s.grace_s + self.sustained_s + threshold_s
        bound_s = (BASELINE_WITHIN_S + s.baseline_s + measure_s + returning_s + FAILBACK_WITHIN_S
                   + returning_s + 30)
        # Re-measured each run: two machines' monotonic clocks drift apart slowly.
        self._measure_clock()
        paths = {"before": self.steps.paths()}
        observation = self.steps.observe(self.clock, s.interval_s, s.port, bound_s)
        events: list[Event] = []      # what the runner did: fault, restore, failback
        handovers: list[int] = []

        def handing_over(instance: str) -> None:
            now = self.clock.now_ns()
            handovers.append(now)
            events.append(Event(now, "fault", instance, FAILBACK, f"graceful hand-over from {instance}"))

        self._published = set()
        self._show(index, Stage.STARTING_PROBES)
        observation.start()
        try:
            self._baseline(index, observation)
            fault_ns = self.clock.now_ns()
            try:
                detail, applied_ns = self.steps.inject()
                # The node's own stamp of the first change, where it gives one: not the exec's start-up.
                fault_ns = applied_ns or fault_ns
                events.append(Event(fault_ns, "fault", s.target, FAULT, f"{self.fault.name}: {detail}"))
                end_ns = self._measure(index, Stage.MEASURING_FAILOVER, observation, fault_ns, measure_s, events)
            except BaseException:
                # Half a fault, or an interrupted run, is still a fault: undo it first.
                observation.stop()
                self.steps.restore()
                self._return_to_initial(index)
                raise
            self._show(index, Stage.COLLECTING_EVENTS)
            # Read now: a lab re-created by a failed failback no longer has these nodes' logs.
            recorded = observation.recorded_events(end_ns)
            paths["during"] = self.steps.paths()
            self._show(index, Stage.RESTORING)
            restore_ns = self.clock.now_ns()
            restored = self.steps.restore()
            events.append(Event(restore_ns, "fault", s.target, RESTORE, restored))
            # The restore's own outage (a thawed or restarted instance coming back) is waited out and
            # measured before the failback starts, so the two are told apart.
            restore_end = self._measure(index, Stage.MEASURING_RESTORE, observation, restore_ns, returning_s,
                                        events, since_ns=end_ns)
            returned_by = self._return_to_initial(index, handing_over, observation)
            failback_ns = handovers[0] if handovers and returned_by == FAILBACK else None
            if failback_ns is None:
                stopped_ns = self._reported_until(observation, self.clock.now_ns())
            else:
                stopped_ns = self._measure(index, Stage.MEASURING_REVERSION, observation, failback_ns,
                                           returning_s, events, since_ns=failback_ns)
            recorded += [e for e in observation.recorded_events(stopped_ns) if e.t_ns > end_ns]
        finally:
            observation.stop()
        paths["after"] = self.steps.paths()
        started_clock = self.clock
        ended_clock = self._measure_clock()
        drift_ns = ended_clock.engine_minus_client_ns - started_clock.engine_minus_client_ns
        drift_allowed_ns = started_clock.uncertainty_ns + ended_clock.uncertainty_ns + CLOCK_DRIFT_ALLOWED_NS
        events = sorted(events + observation.live_events + recorded, key=lambda e: e.t_ns)
        probes = observation.directions()
        windows = run_windows(probes, self.method, fault_ns, end_ns, restore_ns, restore_end, failback_ns, stopped_ns)
        directions, restore, waiting, reversion = windows.failover, windows.restore, windows.waiting, windows.reversion
        drifted = (f"the client's clock moved {drift_ns / 1e6:.1f} ms against the engine's during the run"
                   if abs(drift_ns) > drift_allowed_ns else None)
        invalid = "; ".join(r for r in (
            invalid_reason(directions), _prefixed("restore", invalid_reason(restore)),
            _prefixed("failback", invalid_reason(reversion)), drifted) if r) or None
        return RunResult(
            index=index, fault=self.fault.name, target=s.target, planned=self.fault.planned,
            target_s=self.target_s, target_source=self.target_source, interval_s=s.interval_s,
            started_ns=observation.started_ns, fault_ns=fault_ns, end_ns=end_ns, fault_detail=detail,
            directions=directions, phases=self._phases(events, fault_ns, end_ns, directions),
            checks=checks(directions, self.target_s) + checks(restore, self.return_target_s, "restore"),
            events=events, probes=probes, returned_by=returned_by, invalid=invalid,
            clock_offset_ns=started_clock.engine_minus_client_ns, clock_uncertainty_ns=started_clock.uncertainty_ns,
            clock_drift_ns=drift_ns,
            restore_ns=restore_ns, failback_ns=failback_ns,
            stopped_ns=stopped_ns, reversion=reversion, restore=restore, restore_end_ns=restore_end,
            waiting=waiting, paths=paths,
        )

    def _phases(self, events: list[Event], fault_ns: int, end_ns: int,
                directions: list[DirectionResult]) -> list[Phase]:
        return self.story.phases(events, fault_ns, end_ns, directions)

    @staticmethod
    def _reported_until(observation: Observation, now_ns: int) -> int:
        """How far every probe stream has reported: a window can't end later, or its figures
        would be read on data still on its way (the live check and the final one must agree)."""
        marks = [now_ns]
        for d in observation.directions():
            marks += [m for m in (d.sender_through_ns, d.receiver_through_ns) if m is not None]
        return min(marks)

    def _measure(self, index: int, stage: Stage, observation: Observation, event_ns: int, within_s: float,
                 events: list[Event], since_ns: int | None = None) -> int:
        """Waits until every direction has converged after the event, or the time is up; returns the window's end."""
        min_end = event_ns + int(self.settings.settle_s * NS)
        end = event_ns

        def converged() -> bool:
            nonlocal end
            end = self._reported_until(observation, self.clock.now_ns())
            self._show(index, stage, observation, event_ns, events)
            return end >= min_end and all(
                d.converged for d in (analyse_direction(p, event_ns, end, self.method, since_ns=since_ns)
                                      for p in observation.directions()))

        # Not converged by the deadline: the window ends there, and the figures say so.
        if not self.steps.poll(converged, within_s, LOOK_EVERY_S):
            end = self._reported_until(observation, self.clock.now_ns())
        return end

    def _baseline(self, index: int, observation: Observation) -> None:
        """Waits until traffic has flowed both ways for the baseline, without loss or delay."""
        problem = ""

        def clean_long_enough() -> bool:
            nonlocal problem
            now = self._reported_until(observation, self.clock.now_ns())
            steady = self._show(index, Stage.BASELINE, observation)
            if not steady or not all(t is not None and now - t >= self.settings.baseline_s * NS for t in steady):
                problem = "not flowing steadily both ways"
                return False
            problem = invalid_reason([analyse_direction(p, now, now, self.method)
                                      for p in observation.directions()]) or ""
            return not problem

        if not self.steps.poll(clean_long_enough, BASELINE_WITHIN_S, LOOK_EVERY_S):
            raise NotMeasured(f"probe traffic was not clean within {BASELINE_WITHIN_S:.0f} s before the fault "
                              f"({problem})")

    def _return_to_initial(self, index: int, handing_over: Callable[[str], None] | None = None,
                           observation: Observation | None = None) -> str:
        """Failback to the instances that were active at the start; re-creates the lab if that fails."""
        self._show(index, Stage.FAILING_BACK, observation)
        try:
            self.steps.fail_back(handing_over or (lambda instance: None))
            return FAILBACK
        except LabError as exc:
            if observation is not None:
                observation.stop()      # its probes die with the nodes
            self._show(index, Stage.RECREATING, detail=str(exc))
            self.steps.recreate()
            return f"re-created ({exc})"

    def _measure_clock(self) -> LabClock:
        self.clock = self.steps.measure_clock()
        return self.clock


def _prefixed(label: str, reason: str | None) -> str | None:
    return None if reason is None else f"{label}: {reason}"
