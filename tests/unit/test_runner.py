"""The failover runner's steps against a fake lab: baseline, measure, restore, failback, clock drift,
repeats of invalid runs, and a live check that agrees with the final analysis.

The fake lab keeps virtual time: each poll advances it, and its probes are made for
the moments the runner reaches, with outages after the fault, the restore and the
failback as each test asks. No Docker, no daemons: the runner's logic only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lab.model.daemon_events import FAULT, RESTORE, ClockOffset, Event
from lab.model.events import (ControlEvent, EventStream, FailoverDone, Note, PhaseObserved, ProbeTick, Recorder, RunDone,
                              Stage, StageChanged)
from lab.failover.runner import FAILBACK, FailoverRunner, FailoverSettings, NotMeasured
from lab.failover.metrics import NS
from lab.model.probes import DirectionProbes
from lab.plan.load import load_plan

INTERVAL_NS = 20_000_000
LATENCY_NS = 3_000_000


@dataclass
class FakeClock:
    lab: "FakeLab"
    engine_minus_client_ns: int = 0
    uncertainty_ns: int = 0
    wall: ClockOffset = ClockOffset(0)
    summary: str = "fake clock"

    def now_ns(self) -> int:
        return self.lab.now


@dataclass
class Outage:
    after: str          # "fault", "restore" or "failback"
    start_s: float      # seconds after that event
    length_s: float
    sender_silent: bool = False   # the sender sends nothing (missed slots) rather than losing them


@dataclass
class FakeLab:
    """A lab on virtual time: probes both ways, outages relative to the runner's steps."""
    outages: list[Outage] = field(default_factory=list)
    sender_lag_ns: int = 0           # how far the sender's log runs behind
    clean_after_attempt: int = 1     # runs before this one start with loss in their baseline
    clock_offsets: list[int] = field(default_factory=list)   # per clock measurement; 0 when exhausted
    now: int = 100 * NS
    moments: dict[str, int] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    attempt: int = 0
    observed_from: int = 0
    stopped_at: int | None = None

    # --- RunSteps -----------------------------------------------------------------------
    def prepare(self) -> None:
        self.steps.append("prepare")

    def machine(self) -> str:
        return "fake"

    def measure_clock(self) -> FakeClock:
        offset = self.clock_offsets.pop(0) if self.clock_offsets else 0
        return FakeClock(self, engine_minus_client_ns=offset)

    def observe(self, clock, interval_s, port, bound_s) -> "FakeObservation":
        self.attempt += 1
        self.moments = {}
        return FakeObservation(self)

    def inject(self) -> tuple[str, int | None]:
        self.moments["fault"] = self.now
        self.steps.append("inject")
        return "paused", None

    def restore(self) -> str:
        self.moments["restore"] = self.now
        self.steps.append("restore")
        return "unpaused"

    def fail_back(self, handing_over) -> None:
        self.steps.append("fail back")
        self.now += NS // 2               # the wait for the initial state
        self.moments["failback"] = self.now
        handing_over("azure-gw-1")
        self.now += NS // 10

    def recreate(self) -> None:
        self.steps.append("recreate")

    def paths(self) -> list[dict]:
        return [{"node": "onprem-0", "prefix": "10.1.0.0/16", "carrier": "vpn", "at": len(self.steps)}]

    def poll(self, done, within_s: float, every_s: float) -> bool:
        deadline = self.now + int(within_s * NS)
        while self.now <= deadline:
            if done():
                return True
            self.now += int(every_s * NS)
        return False

    # --- the probes -----------------------------------------------------------------
    def lost(self, t: int) -> tuple[bool, bool]:
        """(lost, not even sent) for a probe sent at t."""
        if self.attempt < self.clean_after_attempt:
            return True, False
        for o in self.outages:
            at = self.moments.get(o.after)
            if at is not None and at + o.start_s * NS <= t < at + (o.start_s + o.length_s) * NS:
                return True, o.sender_silent
        return False, False


class FakeObservation:
    def __init__(self, lab: FakeLab):
        self.lab = lab
        self.started_ns = 0
        self.live_events: list[Event] = []
        self.stopped = False
        self._made: dict[int, tuple[bool, bool]] = {}   # slot -> (lost, unsent), decided once

    def start(self) -> None:
        self.started_ns = self.first = self.lab.now

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.lab.stopped_at = self.lab.now

    def recorded_events(self, until_ns: int) -> list[Event]:
        self.lab.now += NS          # reading the nodes' logs takes a while; the probes go on
        return []

    def _fate(self, slot: int, t: int) -> tuple[bool, bool]:
        if slot not in self._made:
            self._made[slot] = self.lab.lost(t)
        return self._made[slot]

    def directions(self) -> list[DirectionProbes]:
        now = self.lab.stopped_at if self.stopped else self.lab.now
        sender_through = now - self.lab.sender_lag_ns
        found = []
        for name in ("onprem-host → azure-vm", "azure-vm → onprem-host"):
            probes = DirectionProbes(name, first_slot_ns=self.first, sender_through_ns=sender_through,
                                     receiver_through_ns=now)
            slot = 0
            while self.first + slot * INTERVAL_NS <= now:
                t = self.first + slot * INTERVAL_NS
                lost, unsent = self._fate(slot, t)
                if not unsent and t <= sender_through:
                    probes.sent.append((slot, t))
                if not lost and t + LATENCY_NS <= now:
                    probes.received.append((slot, t, t + LATENCY_NS))
                slot += 1
            found.append(probes)
        return found


def runner(lab: FakeLab, runs: int = 1, fault: str = "pause", stages: list | None = None) -> FailoverRunner:
    plan = load_plan("active-standby", "fast")
    settings = FailoverSettings(fault=fault, target="azure-gw-0", runs=runs)
    events = EventStream()
    if stages is not None:
        events.subscribe(lambda e: stages.append(e.stage) if isinstance(e, StageChanged) else None)
    return FailoverRunner(plan, None, settings, lambda: None, events, steps=lab)


def figures(results) -> list[float | None]:
    return [d.full_convergence_s for d in results]


def test_a_run_measures_the_fault_the_restore_and_the_failback_each_in_its_own_window():
    stages: list[str] = []
    lab = FakeLab(outages=[Outage("fault", 0, 1.0), Outage("restore", 0.5, 0.4), Outage("failback", 0, 0.3)])
    report = runner(lab, stages=stages).run_all()
    (run,) = report.runs
    assert lab.steps == ["prepare", "inject", "restore", "fail back"]
    assert figures(run.directions) == [1.0, 1.0]
    assert figures(run.restore) == [pytest.approx(0.9), pytest.approx(0.9)]     # 0.5 s in, 0.4 s long
    assert figures(run.reversion) == [0.3, 0.3]
    assert run.invalid is None and run.verdict == "PASS" and report.verdict == "PASS"
    # The restore waited out before the failback, so the two outages are told apart.
    assert run.end_ns < run.restore_ns < run.failback_ns
    for stage in (Stage.BASELINE, Stage.MEASURING_FAILOVER, Stage.MEASURING_RESTORE, Stage.MEASURING_REVERSION):
        assert stage in stages
    # Every check: the fault against the unplanned target, the restore against the planned; the
    # failback is measured, not judged.
    assert [(c.name.split("rate-derived")[0].strip(), c.limit) for c in run.checks] == [
        ("", 2), ("", 2), ("restore", 1), ("restore", 1)]


def test_an_outage_at_the_restore_fails_the_run_though_the_failover_met_its_target():
    # The thawed instance coming back once cost 2.3 s that no figure reported.
    lab = FakeLab(outages=[Outage("fault", 0, 1.0), Outage("restore", 0.1, 2.2)])
    (run,) = runner(lab).run_all().runs
    assert figures(run.directions) == [1.0, 1.0]
    assert figures(run.restore) == [pytest.approx(2.3), pytest.approx(2.3)]
    assert run.verdict == "FAIL"
    assert {c.name for c in run.checks if not c.passed} == {
        "restore rate-derived convergence onprem-host → azure-vm", "restore rate-derived convergence azure-vm → onprem-host"}


def test_loss_between_the_failover_s_window_and_the_restore_is_not_lost_from_sight():
    # The failover's window ends 5.5 s after the fault (5 s validated after a 0.5 s outage); reading the
    # logs takes 1 s before the restore. Loss from 5.8 s to 6.1 s falls between: the restore's window has it.
    lab = FakeLab(outages=[Outage("fault", 0, 0.5), Outage("fault", 5.8, 0.3)])
    (run,) = runner(lab).run_all().runs
    assert figures(run.directions) == [0.5, 0.5]
    assert (run.end_ns - run.fault_ns) / NS == pytest.approx(5.6, abs=0.11)
    for d in run.restore:
        assert d.loss_episodes[0].start_s < 0 and d.convergence_packet_loss == 15


def test_the_live_check_ends_the_window_only_on_what_both_streams_reported():
    # The sender's log runs 300 ms behind. A loss 5.9 s after the fault, just as the validation time
    # (5 s after a 1 s outage) runs out, was once missed by the live check and seen by the final one.
    lab = FakeLab(outages=[Outage("fault", 0, 1.0), Outage("fault", 5.9, 0.1)], sender_lag_ns=300_000_000)
    (run,) = runner(lab).run_all().runs
    assert figures(run.directions) == [6.0, 6.0] and run.verdict == "FAIL"
    assert all(d.invalid is None for d in run.directions)
    assert run.end_ns - run.fault_ns >= 11 * NS        # it waited for the validation time after that loss


def test_a_sender_that_goes_silent_makes_the_run_invalid_and_it_is_repeated():
    lab = FakeLab(outages=[Outage("fault", 0, 1.0, sender_silent=True)])
    report = runner(lab, runs=2).run_all()
    assert [r.verdict for r in report.runs] == ["INVALID"] * 4       # 2 asked: tried 2 + max(2, 2)
    assert "the sender missed 49 send slots (at most 5)" in report.runs[0].invalid   # 50 from the stamp on
    assert report.verdict == "INVALID" and not report.passed and not report.measured


def test_invalid_runs_are_repeated_until_the_valid_ones_asked_for_are_in():
    lab = FakeLab(outages=[Outage("fault", 0, 0.5)], clean_after_attempt=2)
    report = runner(lab, runs=2).run_all()
    # Attempt 1's baseline never got clean: not measured, then two valid runs.
    assert report.unmeasured and "not clean within 30 s" in report.unmeasured[0]
    assert [r.verdict for r in report.runs] == ["PASS", "PASS"] and report.passed


def test_a_baseline_that_never_gets_clean_is_not_measured():
    lab = FakeLab(clean_after_attempt=99)
    with pytest.raises(NotMeasured, match="probe traffic was not clean within 30 s before the fault"):
        runner(lab).run_once(1)


def test_a_client_clock_that_moves_against_the_engine_s_makes_the_run_invalid():
    # Offsets at the report's start, the run's start and its end: 5 ms apart over one run.
    lab = FakeLab(outages=[Outage("fault", 0, 0.5)], clock_offsets=[0, 0, 5_000_000, 5_000_000, 5_000_000])
    report = runner(lab, runs=1).run_all()
    assert report.runs[0].invalid == "the client's clock moved 5.0 ms against the engine's during the run"
    assert report.runs[0].clock_drift_ns == 5_000_000
    assert len(report.runs) == 2 and report.runs[1].invalid is None      # repeated, and then measured


def test_loss_while_the_lab_waits_to_fail_back_is_reported_apart_and_not_judged():
    # The failback's waits read status in every node; on 2 cores that once delayed probes past the
    # threshold. That stretch is measured (its own window) and reported, not judged as the restore.
    lab = FakeLab(outages=[Outage("fault", 0, 0.5)])
    original = lab.fail_back

    def slow_fail_back(handing_over):
        lab.moments["waiting"] = lab.now
        lab.now += 3 * NS                       # the waits, during which a probe is lost
        original(handing_over)

    lab.fail_back = slow_fail_back
    lab.outages.append(Outage("waiting", 1.0, 0.04))
    (run,) = runner(lab).run_all().runs
    assert figures(run.restore) == [0.0, 0.0] and run.verdict == "PASS"
    assert [d.convergence_packet_loss for d in run.waiting] == [2, 2]
    assert run.restore_end_ns < run.failback_ns


def test_the_run_is_published_on_the_event_stream_as_it_goes():
    """Stages in order, probe ticks that show the outage live, the runner's own events (fault,
    restore, failback) as they happen, then each phase, the run and the failover."""
    lab = FakeLab(outages=[Outage("fault", 0, 1.0)])
    events = EventStream()
    seen = Recorder()
    events.subscribe(seen)
    plan = load_plan("active-standby", "fast")
    report = FailoverRunner(plan, None, FailoverSettings(fault="pause", target="azure-gw-0"), lambda: None, events,
                            steps=lab).run_all()
    stages = [e.stage for e in seen.of(StageChanged)]
    order = [Stage.STARTING_PROBES, Stage.BASELINE, Stage.MEASURING_FAILOVER, Stage.RESTORING,
             Stage.MEASURING_RESTORE, Stage.FAILING_BACK, Stage.MEASURING_REVERSION]
    assert [s for s in stages if s in order] == order
    # While the failover was measured, some tick saw an interrupted direction, and later ones saw it flow.
    during = [t for t in seen.of(ProbeTick) if t.since_event_s is not None]
    assert any(t.flowing_for_s is None for t in during) and any(t.flowing_for_s is not None for t in during)
    assert {t.direction for t in seen.of(ProbeTick)} == {d.direction for d in report.runs[0].directions}
    kinds = [e.event.kind for e in seen.of(ControlEvent)]
    assert kinds.index(FAULT) < kinds.index(RESTORE) < kinds.index(FAILBACK)
    assert len(kinds) == len(set((e.event for e in seen.of(ControlEvent)))), "an event published twice"
    (done,) = seen.of(RunDone)
    assert done.result is report.runs[0]
    assert [p.phase for p in seen.of(PhaseObserved)] == [p.name for p in report.runs[0].phases]
    assert isinstance(seen.events[-1], FailoverDone) and seen.events[-1].report is report


def test_a_broken_subscriber_does_not_stop_the_run():
    lab = FakeLab(outages=[Outage("fault", 0, 0.5)])
    events = EventStream()

    def broken(event):
        raise RuntimeError("a view that fails")

    events.subscribe(broken)
    seen = Recorder()
    unsubscribe = events.subscribe(seen)
    plan = load_plan("active-standby", "fast")
    report = FailoverRunner(plan, None, FailoverSettings(fault="pause", target="azure-gw-0"), lambda: None, events,
                            steps=lab).run_all()
    assert report.verdict == "PASS" and seen.of(FailoverDone)
    unsubscribe()
    events.note("x", "after")
    assert not any(isinstance(e, Note) and e.text == "after" for e in seen.events)
