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
from lab.failover.runner import FailoverReport, FailoverRunner, FailoverSettings
from lab.model.errors import LabError
from lab.model.events import EventStream, Stage
from lab.model.names import check_lab_name
from lab.model.schema import LabPlan
from lab.plan.load import load_plan
from lab.run import lifecycle
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


@dataclass
class FailoverResult:
    """A failover as a value: the verdict, the figures, the phases and where the files went."""
    report: FailoverReport
    folder: Path | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.report.passed

    @property
    def verdict(self) -> str:
        return self.report.verdict

    @property
    def target_s(self) -> float:
        return self.report.target_s

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

    @property
    def _valid(self) -> list:
        return [r for r in self.report.runs if r.invalid is None]

    def _direction(self, name: str) -> DirectionFigures:
        found = [d for run in self._valid for d in run.directions if d.direction == name]
        full = [d.full_convergence_s for d in found if d.full_convergence_s is not None]
        return DirectionFigures(name, median(full) if full else None,
                                median(d.loss_derived_s for d in found) if found else None,
                                sum(d.lost for d in found), sum(d.late for d in found))


class LabSession:
    """One lab: up, down, status, failover, break and repair, with its events on one stream.

    `lab` names the lab (default: the scenario's name); `profile` None means the running lab's,
    else the scenario's. Adapters are built on first use unless given (tests pass fakes)."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, profile: str | None = None, lab: str | None = None,
                 *, adapters: Adapters | None = None, events: EventStream | None = None):
        if lab is not None:
            check_lab_name(lab, "lab")
        self.scenario, self.profile, self.events = scenario, profile, events or EventStream()
        self._adapters = adapters
        self.plan: LabPlan = load_plan(scenario, profile, lab)

    @classmethod
    def attach(cls, lab: str | None = None, *, adapters: Adapters | None = None,
               events: EventStream | None = None) -> "LabSession":
        """The session of a running lab (by name, or the only one running), with the plan it was built with."""
        adapters = adapters or _real_adapters()
        adapters.runtime.ping()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        plan = lifecycle.running_plan(name, adapters, DEFAULT_SCENARIO)
        session = cls.__new__(cls)
        session.scenario, session.profile, session.events = plan.scenario.name, plan.profile.name, events or EventStream()
        session._adapters, session.plan = adapters, plan
        return session

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
        return lifecycle.up(self.plan, self.adapters, self.events, extra_labels=extra_labels)

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
    def default_target(self) -> str:
        """The first gateway's instance that is active now (a running lab), else its first instance."""
        if self.is_running():
            active = lifecycle.read_status(self.name, self.adapters).active_instances
            if active:
                return active[0]
        return self.first_instance()

    def first_instance(self) -> str:
        return next(iter(self.plan.gateway_instances()), "")

    def failover(self, fault: str, target: str | None = None, runs: int = 1, interval_ms: float = 20.0,
                 out: Path | None = None) -> FailoverResult:
        """Timed runs of `fault` on `target` (default: the active instance), on the running lab or one
        brought up for them; with `out`, the report files are written there."""
        get_fault(fault)
        if not 1.0 <= interval_ms <= 1000.0:
            raise LabError(f"--interval-ms {interval_ms:g}: must be between 1 and 1000")
        # Held from the first look: no `down` or other failover may cut in between choosing and running.
        with hold_lab(self.name, "failover"):
            self.ensure_up()
            settings = FailoverSettings(fault=fault, target=target or self.default_target(), runs=runs,
                                        interval_s=interval_ms / 1000)

            def recreate() -> None:
                self.events.stage(self.name, Stage.RECREATING)
                lifecycle.down(self.name, self.adapters, self.events)
                lifecycle.up(self.plan, self.adapters, self.events)

            report = FailoverRunner(self.plan, self.adapters, settings, recreate, self.events).run_all()
        result = FailoverResult(report)
        if out is not None:
            from lab.ui.failover_view import write_outputs   # matplotlib: only when files are asked for

            result.folder, result.files = out, write_outputs(report, out)
        return result

    def default_out(self, fault: str, target: str) -> Path:
        where = target.replace(":", "-").replace("/", "-")
        return Path("results") / f"{self.name}-{self.plan.profile.name}-{fault}-{where}"

    def break_(self, fault: str, target: str | None = None) -> str:
        """Injects a fault and leaves it in place (recorded, so `repair` undoes it); returns what was done."""
        chosen = target or self.first_instance()
        self.events.stage(self.name, Stage.BREAKING, f"{fault} on {chosen}")
        return break_lab(self.plan, self.adapters, fault, chosen, self.state_dir)

    def repair(self) -> list[str]:
        """Undoes every fault `break_` left in place and fails back to the initial instances."""
        self.events.stage(self.name, Stage.REPAIRING)
        return repair_lab(self.plan, self.adapters, self.state_dir)


def _real_adapters() -> Adapters:
    from lab.adapters.wiring import real_adapters   # docker, requests: loaded only when a lab is reached

    return real_adapters()
