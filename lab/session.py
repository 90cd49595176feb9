"""One lab as one object: the API the CLI, the pytest plugin and the browser console all use.

    session = LabSession("active-standby", profile="fast", lab="mine")
    session.events.subscribe(print)
    session.up()
    result = session.failover("kill")
    assert result.passed
    session.down()

It holds the application logic the consumers share: which lab a name means, which plan a running
lab has, re-creating a lab that runs another profile, the default fault target, the re-create
callback of a failover. Everything it does is published on `events`; it prints nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from lab.failover.breakfix import break_lab, faults_in_place, repair_lab
from lab.failover.faults import get_fault
from lab.failover.metrics import checks
from lab.failover.runner import FailoverReport, FailoverRunner, FailoverSettings
from lab.model.errors import LabError
from lab.model.events import EventStream, Stage
from lab.model.names import check_lab_name
from lab.model.schema import LabPlan
from lab.plan.load import load_plan
from lab.run import lifecycle
from lab.run.capture import SECONDS_DEFAULT, capture as capture_packets, capture_request
from lab.run.ports import Adapters
from lab.run.locks import hold_lab
from lab.run.state import lab_dir
from lab.run.status import LabStatus

DEFAULT_SCENARIO = "active-standby"


@dataclass
class DirectionFigures:
    """One probe direction's figures over the runs that were measured (medians, seconds)."""
    name: str
    rate_derived_s: float | None       # RFC 6412 Rate-Derived Convergence Time (median; None: none converged)
    loss_derived_s: float | None       # Loss-Derived Convergence Time (median)
    lost: int                          # probes lost (late included), over every run
    late: int


@dataclass(repr=False)
class FailoverResult:
    """A failover as a value: the verdict, the figures, the phases and where the files went.

    `limit_s` judges the fault against a target of the caller's own instead of the profile's (the
    restore keeps the planned target; the report files keep the profile's, which `profile_target_s`
    gives)."""
    report: FailoverReport
    folder: Path | None = None
    files: list[Path] = field(default_factory=list)
    limit_s: float | None = None

    @property
    def passed(self) -> bool:
        if self.limit_s is None:
            return self.report.passed
        return self.report.measured and all(all(c.passed for c in self._judged(r)) for r in self._valid)

    @property
    def verdict(self) -> str:
        if self.limit_s is None:
            return self.report.verdict
        if any(not all(c.passed for c in self._judged(r)) for r in self._valid):
            return "FAIL"
        return "PASS" if self.passed else "INVALID"

    @property
    def target_s(self) -> float:
        return self.report.target_s if self.limit_s is None else self.limit_s

    @property
    def profile_target_s(self) -> float:
        return self.report.target_s

    @property
    def fault(self) -> str:
        return self.report.fault

    @property
    def target(self) -> str:
        return self.report.target

    @property
    def directions(self) -> list[DirectionFigures]:
        names = [d.direction for run in self._valid for d in run.directions]
        return [self._direction(name) for name in dict.fromkeys(names)]

    @property
    def rate_derived_s(self) -> float | None:
        """The worst direction's median full convergence (the later of the aggregate's and the
        worst flow's, as the verdict reads it); None when no valid run converged."""
        per_run = [max(d.full_convergence_s for d in run.directions) for run in self._valid
                   if run.directions and all(d.full_convergence_s is not None for d in run.directions)]
        return median(per_run) if per_run else None

    @property
    def loss_derived_s(self) -> float | None:
        per_run = [max(d.loss_derived_s for d in run.directions) for run in self._valid if run.directions]
        return median(per_run) if per_run else None

    @property
    def phases(self) -> list[tuple[str, float | None]]:
        """The first valid run's phase breakdown: (phase, seconds after the fault or None)."""
        return [(p.name, p.at_s) for p in self._valid[0].phases] if self._valid else []

    def run_verdicts(self) -> list[tuple[int, str, float | None]]:
        """Each run as judged here: (run, verdict, its slowest direction's full convergence or None)."""
        rows = []
        for r in self.report.runs:
            worst = [d.full_convergence_s for d in r.directions]
            slowest = max(worst) if worst and None not in worst else None
            verdict = ("INVALID" if r.invalid is not None
                       else "PASS" if all(c.passed for c in self._judged(r)) else "FAIL")
            rows.append((r.index, verdict, slowest))
        return rows

    def breakdown(self) -> str:
        """The result as a person reads it: verdict, per-direction figures, each run's phases."""
        r = self.report
        target = f"{self.target_s:g} s"
        if self.limit_s is not None:
            target += f" (asked for; the profile's is {r.target_s:g} s)"
        else:
            target += f" ({r.target_source})"
        lines = [f"{r.fault} on {r.target}: {self.verdict}, target {target}",
                 f"lab {r.lab}, scenario {r.scenario}, profile {r.profile}; "
                 f"{r.valid_count} valid of {r.runs_asked} runs asked"
                 + (f" ({len(r.runs) - r.valid_count} invalid, repeated)" if len(r.runs) > r.valid_count else ""),
                 f"rate-derived {_seconds(self.rate_derived_s)}, loss-derived {_seconds(self.loss_derived_s)} "
                 "(slowest direction, median over the valid runs)",
                 "per direction (median over the valid runs):"]
        width = max((len(d.name) for d in self.directions), default=0)
        runs = f"{r.valid_count} run{'s' if r.valid_count != 1 else ''}"
        lines += [f"  {d.name:<{width}}  rate-derived {_seconds(d.rate_derived_s):>13}  loss-derived "
                  f"{_seconds(d.loss_derived_s):>6}  lost {d.lost} (late {d.late}) in {runs}" for d in self.directions]
        lines.append("runs: " + "; ".join(f"{i}: {v} {_seconds(s)}" for i, v, s in self.run_verdicts()))
        for run in self.report.runs:
            if run.invalid is not None:
                lines.append(f"run {run.index} INVALID: {run.invalid}")
                continue
            lines.append(f"breakdown of run {run.index} (seconds after the fault):")
            width = max((len(p.name) for p in run.phases), default=0)
            lines += [(f"  {p.name:<{width}}  {_seconds(p.at_s, 'not observed'):>12}  "
                       + (p.evidence if p.at_s is not None else "")
                       + (" (out of order)" if p.out_of_order else "")).rstrip() for p in run.phases]
        lines += [f"not measured: {why}" for why in r.unmeasured]
        if self.folder is not None:
            lines.append(f"report: {self.folder / 'summary.md'}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        # Short: pytest prints it under a failed assertion (`where 1.2 = FailoverResult(...).rate_derived_s`).
        return (f"FailoverResult({self.fault} on {self.target}: {self.verdict}, rate-derived "
                f"{_seconds(self.rate_derived_s)}, target {self.target_s:g} s)")

    @property
    def _valid(self) -> list:
        return [r for r in self.report.runs if r.invalid is None]

    def _judged(self, run) -> list:
        """A run's checks: the report's own, or the fault against `limit_s` and the restore as planned."""
        if self.limit_s is None:
            return run.checks
        return checks(run.directions, self.limit_s) + checks(run.restore, self.report.return_target_s, "restore")

    def _direction(self, name: str) -> DirectionFigures:
        found = [d for run in self._valid for d in run.directions if d.direction == name]
        full = [d.full_convergence_s for d in found if d.full_convergence_s is not None]
        return DirectionFigures(name, median(full) if full else None,
                                median(d.loss_derived_s for d in found) if found else None,
                                sum(d.lost for d in found), sum(d.late for d in found))


def _seconds(value: float | None, missing: str = "not converged") -> str:
    return missing if value is None else f"{value:.2f} s"


class LabSession:
    """One lab: up, down, status, failover, break and repair, with its events on one stream.

    `lab` names the lab (default: the scenario's name); `profile` None means the running lab's,
    else the scenario's. Adapters are built on first use unless given (tests pass fakes). `labels`
    go on everything the session creates, a re-created lab's too (the pytest plugin's session label)."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, profile: str | None = None, lab: str | None = None,
                 *, adapters: Adapters | None = None, events: EventStream | None = None):
        if lab is not None:
            check_lab_name(lab, "lab")
        self.scenario, self.profile, self.events = scenario, profile, events or EventStream()
        self._adapters = adapters
        self.labels: dict[str, str] = {}
        self.plan: LabPlan = load_plan(scenario, profile, lab)

    @classmethod
    def from_plan(cls, plan: LabPlan, *, adapters: Adapters | None = None,
                  events: EventStream | None = None) -> "LabSession":
        """The session of a plan already resolved (a test's own, or one brought up before)."""
        session = cls.__new__(cls)
        session.scenario, session.profile, session.events = plan.scenario.name, plan.profile.name, events or EventStream()
        session._adapters, session.plan, session.labels = adapters, plan, {}
        return session

    @classmethod
    def attach(cls, lab: str | None = None, *, adapters: Adapters | None = None,
               events: EventStream | None = None) -> "LabSession":
        """The session of a running lab (by name, or the only one running), with the plan it was built with."""
        adapters = adapters or _real_adapters()
        adapters.runtime.ping()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        plan = lifecycle.running_plan(name, adapters, DEFAULT_SCENARIO)
        return cls.from_plan(plan, adapters=adapters, events=events)

    @property
    def name(self) -> str:
        return self.plan.lab

    @property
    def adapters(self) -> Adapters:
        if self._adapters is None:
            self._adapters = _real_adapters()
        return self._adapters

    @property
    def state_dir(self) -> Path:
        return lab_dir(self.name)

    # -- lifecycle -------------------------------------------------------------------------------
    def up(self, extra_labels: dict[str, str] | None = None) -> LabStatus:
        """Builds the lab (or completes it) and waits until it has converged."""
        return lifecycle.up(self.plan, self.adapters, self.events, extra_labels={**self.labels, **(extra_labels or {})})

    def down(self) -> list[str]:
        """Removes every container, network, guard and file of the lab; returns what was removed."""
        return lifecycle.down(self.name, self.adapters, self.events)

    def is_running(self) -> bool:
        return bool(self.adapters.runtime.containers({"lab.name": self.name}))

    def status(self, rate_window_s: float = 0.0) -> LabStatus:
        result = lifecycle.read_status(self.name, self.adapters, rate_window_s=rate_window_s)
        result.faults_in_place = faults_in_place(self.state_dir)
        return result

    def ensure_up(self) -> None:
        """The lab running with this session's profile: kept when it does, re-created when it runs
        another one, brought up when it isn't running. A session asked for no profile takes the
        running lab's."""
        self.adapters.runtime.ping()
        running = self.adapters.runtime.containers({"lab.name": self.name})
        running_profile = (lifecycle.label_name(self.name, running[0].labels, "lab.profile") if running else None)
        if running_profile and self.profile is None:
            self.plan = load_plan(self.scenario, running_profile, self.name)
        elif running_profile and running_profile != self.plan.profile.name:
            self.events.note(self.name, f"lab {self.name} runs profile {running_profile}: "
                                        f"re-creating it with {self.plan.profile.name}")
            self.down()
            running = []
        if not running:
            self.up()

    # -- faults ----------------------------------------------------------------------------------
    def default_target(self, fault: str | None = None) -> str:
        """What `fault` hits when no target is named: the fault's own choice on the plan (a circuit,
        an MSEE), else the first gateway's instance that is active now (a running lab), else its first."""
        chosen = get_fault(fault).default_target(self.plan) if fault else None
        if chosen:
            return chosen
        if self.is_running():
            active = lifecycle.read_status(self.name, self.adapters).active_instances
            if active:
                return active[0]
        return self.first_instance()

    def break_target(self, fault: str) -> str:
        """What `break_` hits when no target is named: the fault's own choice, else the first instance."""
        return get_fault(fault).default_target(self.plan) or self.first_instance()

    def first_instance(self) -> str:
        return next(iter(self.plan.gateway_instances()), "")

    def failover(self, fault: str, target: str | None = None, runs: int = 1, interval_ms: float = 20.0,
                 target_s: float | None = None) -> FailoverResult:
        """Timed runs of `fault` on `target` (default: the active instance), on the running lab or one
        brought up for them; with `target_s`, the result is judged against it instead of the
        profile's target. The report files are the caller's to write (`lab.ui.failover_view`)."""
        get_fault(fault)
        if target_s is not None and not target_s > 0:
            raise LabError(f"target_s {target_s:g}: must be above 0")
        if not 1.0 <= interval_ms <= 1000.0:
            raise LabError(f"--interval-ms {interval_ms:g}: must be between 1 and 1000")
        # Held from the first look: no `down` or other failover may cut in between choosing and running.
        with hold_lab(self.name, "failover"):
            self.ensure_up()
            settings = FailoverSettings(fault=fault, target=target or self.default_target(fault), runs=runs,
                                        interval_s=interval_ms / 1000)

            def recreate() -> None:
                self.events.stage(self.name, Stage.RECREATING)
                lifecycle.down(self.name, self.adapters, self.events)
                lifecycle.up(self.plan, self.adapters, self.events, extra_labels=self.labels)

            report = FailoverRunner(self.plan, self.adapters, settings, recreate, self.events).run_all()
        return FailoverResult(report, limit_s=target_s)

    def default_out(self, fault: str, target: str) -> Path:
        where = target.replace(":", "-").replace("/", "-")
        return Path("results") / f"{self.name}-{self.plan.profile.name}-{fault}-{where}"

    def break_(self, fault: str, target: str | None = None) -> str:
        """Injects a fault and leaves it in place (recorded, so `repair` undoes it); returns what was done."""
        chosen = target or self.break_target(fault)
        self.events.stage(self.name, Stage.BREAKING, f"{fault} on {chosen}")
        return break_lab(self.plan, self.adapters, fault, chosen, self.state_dir)

    def faults(self) -> list[str]:
        """The faults `break_` left in place (recorded in the lab's folder; no engine call)."""
        return faults_in_place(self.state_dir)

    def repair(self) -> list[str]:
        """Undoes every fault `break_` left in place and fails back to the initial instances."""
        self.events.stage(self.name, Stage.REPAIRING)
        return repair_lab(self.plan, self.adapters, self.state_dir)

    # -- observing -------------------------------------------------------------------------------
    def capture(self, node: str, link: str | None = None, bpf: str | None = None,
                seconds: float = SECONDS_DEFAULT) -> bytes:
        """A pcap taken by tcpdump in `node`'s namespace on `link` (default: every interface) for
        `seconds` (1 to 120), with a tcpdump filter `bpf`; checked before the engine is asked.
        What it can show, and why no key is in it: docs/capture.md."""
        return capture_packets(self.plan, self.adapters, capture_request(self.plan, node, link, bpf, seconds))


def _real_adapters() -> Adapters:
    from lab.adapters.wiring import real_adapters   # docker, requests: loaded only when a lab is reached

    return real_adapters()
