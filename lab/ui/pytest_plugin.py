"""The lab as pytest fixtures: a user's own failover tests, with faults, timing and verdicts as values.

    pytestmark = pytest.mark.lab_scenario("scenarios/branch-office.yaml")

    def test_kill_converges(lab_failover):
        assert lab_failover(fault="kill").rate_derived_s < 10

Installed as a pytest11 entry point, so it is active wherever the lab is installed; nothing
happens until a test asks for one of its fixtures:
- `lab`: the LabSession the test module shares (brought up on first use, taken down after the
  module; a test that asks for another scenario or profile gets the module's lab re-made for it);
- `lab_per_test`: a lab of the test's own, taken down after it;
- `lab_failover`: runs a timed failover on the test's lab and returns its FailoverResult; the
  report files go to a folder per test, the figures to the JUnit XML as properties, and a test
  that fails shows each failover's breakdown in its report;
- `lab_factory`: the machinery itself (names, session label, up/down, sweep), for fixtures of one's own.

Every lab gets a name of its own (prefix, xdist worker, a random token, a count) and the test
session's label, so whatever is left at the end (a crash, Ctrl-C) is swept by label. No Docker
engine: the lab tests are skipped, with the reason (or fail with --lab-require-engine).

Nothing but lab.model.errors is imported at start-up: pytest loads this plugin in every run of
the venv, and the lab's modules (pydantic, the Docker SDK) cost a third of a second.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from lab.model.errors import EngineError, LabError

if TYPE_CHECKING:
    from lab.session import FailoverResult, LabSession

SESSION_LABEL = "lab.session"
DEFAULT_PREFIX = "pt"
DEFAULT_SCENARIO = "active-standby"   # lab.session's, not imported at start-up
FAILOVERS = pytest.StashKey[list]()
log = logging.getLogger("lab.pytest")


@dataclass(frozen=True)
class LabChoice:
    """The scenario and profile a test asked for: built-in names or absolute YAML paths."""
    scenario: str
    profile: str | None


# -- options and markers ---------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab", "Azure VPN HA lab (lab.ui.pytest_plugin)")
    group.addoption("--lab-scenario", dest="lab_scenario", metavar="NAME_OR_YAML",
                    help="scenario of tests without a lab_scenario marker (default: ini lab_scenario, "
                         f"else {DEFAULT_SCENARIO})")
    group.addoption("--lab-profile", dest="lab_profile", metavar="NAME_OR_YAML",
                    help="profile of tests without a lab_profile marker (default: ini lab_profile, else the "
                         "scenario's)")
    group.addoption("--lab-keep", dest="lab_keep", action="store_true", default=None,
                    help="leave every lab up for debugging (`lab down --lab NAME` removes one)")
    group.addoption("--lab-results", dest="lab_results", metavar="DIR",
                    help="write each test's failover reports under DIR (default: the test's tmp_path)")
    group.addoption("--lab-require-engine", dest="lab_require_engine", action="store_true", default=None,
                    help="fail lab tests when no Docker engine answers, instead of skipping them")
    parser.addini("lab_scenario", "scenario of tests without a lab_scenario marker (a YAML path is relative "
                                  "to the ini file)")
    parser.addini("lab_profile", "profile of tests without a lab_profile marker")
    parser.addini("lab_keep", "leave every lab up for debugging", type="bool", default=False)
    parser.addini("lab_results", "folder for each test's failover reports (relative to the ini file)")
    parser.addini("lab_require_engine", "fail lab tests when no Docker engine answers", type="bool",
                  default=False)
    parser.addini("lab_prefix", f"first part of every lab's name (default {DEFAULT_PREFIX})",
                  default=DEFAULT_PREFIX)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab_scenario(name_or_yaml): the scenario of the lab this module or test "
                                       "uses (a YAML path is relative to the test's file)")
    config.addinivalue_line("markers", "lab_profile(name_or_yaml): the timer profile of the lab this module or "
                                       "test uses")
    factory_of(config)


def _setting(config: pytest.Config, name: str) -> tuple[Any, Path]:
    """A command-line option, else the ini value: with the folder a relative path in it starts from."""
    value = getattr(config.option, name, None)
    if value is not None:
        return value, config.invocation_params.dir
    return config.getini(name), (config.inipath.parent if config.inipath else config.rootpath)


def _path_or_name(value: str, base: Path) -> str:
    """A YAML file's absolute path (relative ones from `base`), or a built-in name as it is."""
    if Path(value).suffix in (".yaml", ".yml"):
        return str((base / value).resolve())
    return value


def _marker_value(node: pytest.Item, name: str) -> str | None:
    marker = node.get_closest_marker(name)
    if marker is None:
        return None
    if len(marker.args) != 1 or marker.kwargs or not isinstance(marker.args[0], str) or not marker.args[0]:
        pytest.fail(f"{node.nodeid}: @pytest.mark.{name} takes one scenario or profile: a name or a YAML path",
                    pytrace=False)
    return _path_or_name(marker.args[0], node.path.parent)


def choice_for(item: pytest.Item) -> LabChoice:
    """The test's marker, else its class's or module's, else --lab-*, else the ini, else the defaults."""
    found = []
    for name in ("lab_scenario", "lab_profile"):
        value = _marker_value(item, name)
        if value is None:
            given, base = _setting(item.config, name)
            value = _path_or_name(given, base) if given else None
        found.append(value)
    return LabChoice(found[0] or DEFAULT_SCENARIO, found[1])


# -- the machinery -----------------------------------------------------------------------------------
def _connect_real():
    """The real adapters, the engine answering; EngineError names it and how to start one."""
    from lab.adapters.wiring import real_adapters

    adapters = real_adapters()
    adapters.runtime.ping()
    return adapters


def _session_type():
    from lab.session import LabSession

    return LabSession


def _write_outputs(report, folder: Path) -> list[Path]:
    from lab.ui.failover_view import write_outputs   # matplotlib: only once a failover has run

    return write_outputs(report, folder)


def _worker() -> str:
    """pytest-xdist's worker id (gw0, gw1, ...) as a name part; empty when not under xdist."""
    return re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "").lower())[:8]


class LabFactory:
    """Makes, names, labels and removes the labs of one pytest process (one xdist worker).

    `connect`, `session_type` and `write_outputs` are where the real engine, LabSession and the
    report files come in; a test of the plugin replaces them (the plugin's own logic under test,
    not the daemons)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, keep: bool = False, require_engine: bool = False,
                 results: Path | None = None):
        # secrets, not random: pytest-randomly seeds `random` alike in every xdist worker.
        self.token = secrets.token_hex(3)
        self.worker = _worker()
        self.prefix, self.keep, self.require_engine, self.results = prefix, keep, require_engine, results
        self.session_id = "-".join(p for p in ("pytest", self.worker, self.token) if p)
        self.labels = {SESSION_LABEL: self.session_id}
        self.connect: Callable[[], Any] = _connect_real
        self.session_type: Callable[..., "LabSession"] | None = None
        self.write_outputs: Callable[[Any, Path], list[Path]] = _write_outputs
        self.kept: list[str] = []
        self._count = 0
        self._adapters = None
        self._no_engine: str | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> "LabFactory":
        results, base = _setting(config, "lab_results")
        return cls(prefix=config.getini("lab_prefix") or DEFAULT_PREFIX,
                   keep=bool(_setting(config, "lab_keep")[0]),
                   require_engine=bool(_setting(config, "lab_require_engine")[0]),
                   results=(base / results).resolve() if results else None)

    def use_session(self, session_id: str) -> None:
        """Labels this process's labs with `session_id` instead (a suite with labels of its own)."""
        self.session_id, self.labels = session_id, {SESSION_LABEL: session_id}

    def new_name(self) -> str:
        """prefix-worker-token-n: unique per pytest process and per lab, and a valid lab name."""
        from lab.model.names import LAB

        self._count += 1
        name = "-".join(p for p in (self.prefix, self.worker, self.token, str(self._count)) if p)
        problem = LAB.problem(name)
        if problem:
            pytest.fail(f"lab_prefix {self.prefix!r} makes no valid lab name: {problem}", pytrace=False)
        return name

    def adapters(self):
        """The engine's adapters, connected once; no engine: the test is skipped (or fails) with why."""
        if self._adapters is None and self._no_engine is None:
            try:
                self._adapters = self.connect()
            except EngineError as exc:
                self._no_engine = str(exc)
        if self._no_engine is not None:
            reason = f"lab: {self._no_engine}"
            if self.require_engine:
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        return self._adapters

    def session(self, choice: LabChoice) -> "LabSession":
        """A LabSession of `choice` under a new name and the session label; not brought up."""
        adapters = self.adapters()
        make = self.session_type or _session_type()
        try:
            session = make(choice.scenario, choice.profile, self.new_name(), adapters=adapters)
        except LabError as exc:
            problem = str(exc)
        else:
            return self.adopt(session)
        # Out of the `except`: a failure in one line, without the chained traceback.
        pytest.fail(f"lab: {problem}", pytrace=False)

    def adopt(self, session: "LabSession") -> "LabSession":
        """Puts the session label (and the event log) on a session made elsewhere, e.g. from a plan."""
        session.labels.update(self.labels)
        from lab.ui.progress import log_event   # stages and notes to pytest's captured log

        session.events.subscribe(log_event)
        return session

    def up(self, session: "LabSession"):
        """Brings the session's lab up; if that fails, nothing of it is left (unless kept) and a LabError
        fails the test in one line."""
        try:
            return session.up()
        except BaseException as exc:
            if not self.keep:
                # `up` removes what it made when it fails; this also takes the lab's folder and guard.
                self._remove_quietly(session)
            if not isinstance(exc, LabError):
                raise
            problem = str(exc)
        pytest.fail(f"lab {session.name} did not come up: {problem}", pytrace=False)

    def start(self, choice: LabChoice) -> "LabSession":
        session = self.session(choice)
        self.up(session)
        return session

    def stop(self, session: "LabSession") -> None:
        """Takes the lab down, or, with --lab-keep, leaves it up and says so at the end."""
        if self.keep:
            if session.name not in self.kept:
                self.kept.append(session.name)
            return
        session.down()

    @contextmanager
    def running(self, choice: LabChoice) -> Iterator["LabSession"]:
        """A lab up for the block and taken down after it, whatever happens in it."""
        session = self.start(choice)
        try:
            yield session
        finally:
            self.stop(session)

    def sweep(self) -> list[str]:
        """Removes whatever still carries this process's session label (a lab a crash or Ctrl-C left)."""
        if self._adapters is None or self.keep:
            return []
        from lab.run import lifecycle

        runtime = self._adapters.runtime
        labs = sorted({c.labels.get("lab.name") for c in runtime.containers(self.labels)} - {None})
        for name in labs:
            lifecycle.teardown(name, self._adapters)
        runtime.remove_lab(self.labels)
        return labs

    def results_dir(self, item: pytest.Item, tmp_path: Path, n: int, fault: str, target: str | None) -> Path:
        """Where a test's n-th failover writes its report: --lab-results/<test>/, else the test's tmp_path."""
        leaf = "-".join(p for p in (str(n), fault, target) if p)
        leaf = re.sub(r"[^A-Za-z0-9._-]+", "-", leaf)
        if self.results is None:
            return tmp_path / f"failover-{leaf}"
        return self.results / re.sub(r"[^A-Za-z0-9._-]+", "_", item.nodeid).strip("_") / leaf

    @staticmethod
    def _remove_quietly(session: "LabSession") -> None:
        try:
            session.down()
        except (LabError, OSError) as exc:
            # The session's sweep tries again at the end, by label.
            log.warning("%s: removing it after a failed start: %s", session.name, exc)


_FACTORY = pytest.StashKey[LabFactory]()


def factory_of(config: pytest.Config) -> LabFactory:
    """The plugin's LabFactory of this pytest run (for a conftest that sets it up its own way); made on
    first use, as a conftest's pytest_configure may run before the plugin's."""
    if _FACTORY not in config.stash:
        config.stash[_FACTORY] = LabFactory.from_config(config)
    return config.stash[_FACTORY]


class ModuleLab:
    """The lab one test module shares: one at a time, re-made when a test asks for another choice."""

    def __init__(self, factory: LabFactory):
        self.factory = factory
        self.choice: LabChoice | None = None
        self.session: "LabSession | None" = None
        self.failed: dict[LabChoice, str] = {}

    def get(self, choice: LabChoice) -> "LabSession":
        if self.session is not None and self.choice == choice:
            return self.session
        if choice in self.failed:
            # One start-up per module and choice: the next tests fail at once instead of waiting again.
            pytest.fail(f"the module's lab did not come up: {self.failed[choice]}", pytrace=False)
        self.close()
        try:
            self.session = self.factory.start(choice)
        except pytest.fail.Exception as exc:
            self.failed[choice] = str(exc)
            raise
        self.choice = choice
        return self.session

    def after_test(self) -> None:
        """A fault a test left in place is undone, so the next test starts from the initial state."""
        if self.session is None:
            return
        try:
            left = self.session.faults()
            if left:
                log.warning("%s: a test left %s in place: repairing", self.session.name, ", ".join(left))
                self.session.repair()
        except LabError as exc:
            log.warning("%s: could not repair (%s): taking it down; the next test gets a new lab",
                        self.session.name, exc)
            self.close()

    def close(self) -> None:
        session, self.session, self.choice = self.session, None, None
        if session is not None:
            self.factory.stop(session)


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lab_factory(request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """This process's lab machinery; at the end it sweeps whatever carries the session label."""
    factory = request.config.stash[_FACTORY]
    try:
        yield factory
    finally:
        swept = factory.sweep()
        if swept:
            log.warning("swept labs left behind: %s", ", ".join(swept))


@pytest.fixture(scope="module")
def _lab_module(lab_factory: LabFactory) -> Iterator[ModuleLab]:
    shared = ModuleLab(lab_factory)
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def lab(request: pytest.FixtureRequest, _lab_module: ModuleLab) -> Iterator["LabSession"]:
    """The module's LabSession for the scenario and profile this test asks for, up and converged."""
    session = _lab_module.get(choice_for(request.node))
    yield session
    _lab_module.after_test()


@pytest.fixture
def lab_per_test(request: pytest.FixtureRequest, lab_factory: LabFactory) -> Iterator["LabSession"]:
    """A LabSession of this test's own, up and converged, taken down after it."""
    with lab_factory.running(choice_for(request.node)) as session:
        yield session


class LabFailover:
    """`lab_failover(fault="kill", target=None, runs=1, target_s=None, interval_ms=20.0)`: a timed
    failover on the test's lab, as a FailoverResult; its files to the test's folder, its figures to
    the JUnit properties, and to the test's report when the test fails."""

    def __init__(self, session: "LabSession", factory: LabFactory, item: pytest.Item, tmp_path: Path,
                 record_property: Callable[[str, object], None]):
        self.session, self.factory, self.item, self.tmp_path = session, factory, item, tmp_path
        self.record_property = record_property
        self.done: list = item.stash.setdefault(FAILOVERS, [])

    def __call__(self, fault: str = "kill", target: str | None = None, runs: int = 1,
                 target_s: float | None = None, interval_ms: float = 20.0) -> "FailoverResult":
        n = len(self.done) + 1
        out = self.factory.results_dir(self.item, self.tmp_path, n, fault, target)
        try:
            result = self.session.failover(fault, target, runs=runs, interval_ms=interval_ms, target_s=target_s)
            result.folder, result.files = out, self.factory.write_outputs(result.report, out)
        except LabError as exc:
            problem = str(exc)
        else:
            self.done.append(result)
            for name, value in junit_properties(result, n):
                self.record_property(name, value)
            return result
        pytest.fail(f"lab failover {fault} on {self.session.name}: {problem}", pytrace=False)

    def __repr__(self) -> str:
        # pytest shows it in a failed assertion: `where ... = lab_failover(fault='kill')`.
        return "lab_failover"


@pytest.fixture
def lab_failover(request: pytest.FixtureRequest, lab_factory: LabFactory, record_property,
                 tmp_path: Path) -> LabFailover:
    """Timed failovers on the test's lab (`lab_per_test` when the test asks for it, else `lab`)."""
    session = request.getfixturevalue("lab_per_test" if "lab_per_test" in request.fixturenames else "lab")
    return LabFailover(session, lab_factory, request.node, tmp_path, record_property)


def _figure(value: float | None) -> str:
    return "not converged" if value is None else f"{value:.4f}"


def junit_properties(result: "FailoverResult", n: int) -> list[tuple[str, str]]:
    """A failover's figures as JUnit properties, `lab.failover.N.*` (seconds; "not converged" for none)."""
    key = f"lab.failover.{n}"
    props = [(f"{key}.fault", f"{result.fault} on {result.target}"), (f"{key}.verdict", result.verdict),
             (f"{key}.target_s", f"{result.target_s:g}"), (f"{key}.profile_target_s", f"{result.profile_target_s:g}"),
             (f"{key}.rate_derived_s", _figure(result.rate_derived_s)),
             (f"{key}.loss_derived_s", _figure(result.loss_derived_s)),
             (f"{key}.runs", "; ".join(f"{i}: {v} {_figure(s)}" for i, v, s in result.run_verdicts()))]
    for d in result.directions:
        props += [(f"{key}.{d.name}.rate_derived_s", _figure(d.rate_derived_s)),
                  (f"{key}.{d.name}.loss_derived_s", _figure(d.loss_derived_s)),
                  (f"{key}.{d.name}.lost", str(d.lost))]
    props += [(f"{key}.phase.{name}", _figure(at_s) if at_s is not None else "not observed")
              for name, at_s in result.phases]
    if result.folder is not None:
        props.append((f"{key}.folder", str(result.folder)))
    return props


# -- reporting ---------------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test's report carries each failover it ran: the phases and the per-direction figures."""
    report = yield
    if report.when == "call" and report.failed:
        for n, result in enumerate(item.stash.get(FAILOVERS, []), 1):
            report.sections.append((f"lab failover {n}: {result.fault} on {result.target}", result.breakdown()))
    return report


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    factory = config.stash.get(_FACTORY, None)
    if factory is not None and factory.kept:
        terminalreporter.section("labs kept (--lab-keep)")
        for name in factory.kept:
            terminalreporter.line(f"{name}: `lab status --lab {name}`; `lab down --lab {name}` removes it")
