"""The pytest plugin's own logic, without Docker: pytester runs small test projects in-process, with
the plugin's LabSession and engine replaced by the fakes below (or, for the missing engine, with
DOCKER_HOST pointing nowhere). What is under test: markers and options resolve, names and labels,
labs taken down whatever happens, failures that show the breakdown, the JUnit properties."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.failover.metrics import DirectionResult, Phase, checks
from lab.failover.runner import FailoverReport, RunResult
from lab.model.errors import LabError
from lab.model.events import EventStream
from lab.session import FailoverResult

pytest_plugins = ["pytester"]

FLAGS = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")
CALLS = "calls.jsonl"   # what the fakes were asked, in the pytester folder (the inner run's cwd)


# -- a small failover as a value ---------------------------------------------------------------------
def direction(name: str, rate_s: float | None, lost: int) -> DirectionResult:
    return DirectionResult(direction=name, sent=500, received=500 - lost, lost=lost, late=1, missed=0, duplicates=0,
                           reordered=0, loss_episodes=(), convergence_packet_loss=lost,
                           loss_derived_s=lost * 0.02, first_route_s=rate_s, rate_derived_s=rate_s,
                           max_delay_s=0.004, longest_gap_s=lost * 0.02)


def run(index: int, rates: tuple[float | None, float | None], target_s: float = 2.0,
        invalid: str | None = None) -> RunResult:
    directions = [direction("onprem-host → azure-vm", rates[0], 55),
                  direction("azure-vm → onprem-host", rates[1], 60)]
    phases = [Phase("fault injected", 0.0, "azure-gw-0"), Phase("detected", 0.12, "azure-gw-1: vrrp-master"),
              Phase("public IP moved", 0.31, "azure-gw-1: vrrp-master"),
              Phase("IKE re-established", 0.84, "onprem-0: child-up onprem-0"),
              Phase("BGP Established", None, "not observed"),
              Phase("traffic restored", max((r for r in rates if r is not None), default=None), "probes")]
    return RunResult(index=index, fault="kill", target="azure-gw-0", planned=False, target_s=target_s,
                     target_source="test target", interval_s=0.02, started_ns=0, fault_ns=2_000_000_000,
                     end_ns=12_000_000_000, fault_detail="SIGKILL", directions=directions, phases=phases,
                     checks=checks(directions, target_s), events=[], probes=[], invalid=invalid)


def report(runs: list[RunResult], lab: str = "t", target: str = "azure-gw-0") -> FailoverReport:
    r = FailoverReport(lab=lab, scenario="branch-office", profile="fast", fault="kill", fault_summary="SIGKILL",
                       target=target, planned=False, target_s=2.0, target_source="test target", interval_s=0.02,
                       sustained_s=5.0, started_at="2026-01-01T00:00:00+00:00", machine="test",
                       return_target_s=1.0, return_target_source="planned")
    r.runs, r.runs_asked = runs, sum(x.invalid is None for x in runs)
    return r


# -- the fakes the inner runs use ---------------------------------------------------------------------
def record(**call) -> None:
    with open(CALLS, "a") as f:
        f.write(json.dumps(call) + "\n")


class FakeRuntime:
    def containers(self, labels):
        return []

    def remove_lab(self, labels):
        return []


class FakeAdapters:
    runtime = FakeRuntime()


class FakeSession:
    """LabSession's surface the plugin uses; `FAKE_UP_FAILS` in the environment makes `up` fail."""

    def __init__(self, scenario, profile=None, lab=None, *, adapters=None, events=None):
        self.scenario, self.profile, self.name = scenario, profile, lab
        self.labels: dict[str, str] = {}
        self.events = events or EventStream()
        self.broken: list[str] = []
        record(call="new", lab=lab, scenario=scenario, profile=profile)

    def up(self, extra_labels=None):
        import os

        record(call="up", lab=self.name, labels=self.labels)
        if os.environ.get("FAKE_UP_FAILS"):
            raise LabError("node onprem-0 deploy: container exited")

    def down(self):
        record(call="down", lab=self.name)
        return []

    def faults(self):
        return list(self.broken)

    def break_(self, fault, target=None):
        self.broken.append(f"{fault} on {target}")
        return "done"

    def repair(self):
        record(call="repair", lab=self.name)
        self.broken.clear()
        return []

    def failover(self, fault, target=None, runs=1, interval_ms=20.0, target_s=None):
        return FailoverResult(report([run(1, (1.2, 0.9))], lab=self.name, target=target or "azure-gw-0"),
                              limit_s=target_s)


def fake_outputs(report, folder):
    record(call="failover", lab=report.lab, fault=report.fault, out=str(folder))
    return []


@pytest.fixture
def project(pytester):
    """A pytester folder whose conftest puts the fakes in the plugin's factory."""
    pytester.makeconftest(f"""
        import pytest
        from {__name__} import FakeAdapters, FakeSession, fake_outputs

        @pytest.fixture(scope="session")
        def lab_factory(lab_factory):
            lab_factory.connect = FakeAdapters
            lab_factory.session_type = FakeSession
            lab_factory.write_outputs = fake_outputs
            return lab_factory
    """)
    return pytester


def calls(pytester) -> list[dict]:
    path = pytester.path / CALLS
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def of(found: list[dict], kind: str) -> list[dict]:
    return [c for c in found if c["call"] == kind]


# -- FailoverResult ---------------------------------------------------------------------------------
def test_a_target_of_the_caller_s_own_judges_the_fault_against_it():
    r = report([run(1, (1.2, 0.9))])
    assert FailoverResult(r).verdict == "PASS" and FailoverResult(r).target_s == 2.0
    tight = FailoverResult(r, limit_s=1.0)
    assert (tight.passed, tight.verdict, tight.target_s, tight.profile_target_s) == (False, "FAIL", 1.0, 2.0)
    assert FailoverResult(r, limit_s=5.0).verdict == "PASS"
    assert tight.run_verdicts() == [(1, "FAIL", 1.2)]


def test_the_breakdown_reads_the_figures_and_every_phase():
    result = FailoverResult(report([run(1, (1.2, 0.9)), run(2, (0.5, 0.4), invalid="loss in the baseline"),
                                    run(3, (1.0, None))]), folder=Path("/r/x"), limit_s=1.5)
    text = result.breakdown()
    assert text.splitlines()[0] == "kill on azure-gw-0: FAIL, target 1.5 s (asked for; the profile's is 2 s)"
    assert "2 valid of 2 runs asked (1 invalid, repeated)" in text
    assert re.search(r"onprem-host → azure-vm\s+rate-derived\s+1.10 s\s+loss-derived\s+1.10 s\s+"
                     r"lost 110 \(late 2\) in 2 runs", text), text
    assert re.search(r"azure-vm → onprem-host\s+rate-derived\s+0.90 s", text), text
    assert "runs: 1: PASS 1.20 s; 2: INVALID 0.50 s; 3: FAIL not converged" in text
    assert re.search(r"public IP moved\s+0.31 s\s+azure-gw-1: vrrp-master", text), text
    assert re.search(r"BGP Established\s+not observed$", text, re.M), text
    assert "run 2 INVALID: loss in the baseline" in text and "report: /r/x/summary.md" in text
    # Short enough for pytest's "where ... = FailoverResult(...)" line.
    assert repr(result) == "FailoverResult(kill on azure-gw-0: FAIL, rate-derived 1.20 s, target 1.5 s)"


# -- markers, options, names -------------------------------------------------------------------------
def test_the_markers_and_options_are_registered(pytester):
    out = pytester.runpytest("--markers", *FLAGS).stdout.str()
    assert "@pytest.mark.lab_scenario(name_or_yaml)" in out and "@pytest.mark.lab_profile(name_or_yaml)" in out
    help_text = pytester.runpytest("--help", *FLAGS).stdout.str()
    for option in ("--lab-scenario", "--lab-profile", "--lab-keep", "--lab-results", "--lab-require-engine"):
        assert option in help_text


def test_markers_then_options_then_the_ini_choose_scenario_and_profile(project, monkeypatch):
    project.makeini("[pytest]\nlab_scenario = scenarios/from-ini.yaml\nlab_profile = fast\n")
    project.mkdir("tests")
    project.path.joinpath("tests", "test_marked.py").write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.lab_scenario('own.yaml')\n"
        "def test_module_marker(lab, request):\n"
        "    assert lab.scenario == str(request.path.parent / 'own.yaml')\n"
        "    assert lab.profile == 'fast'\n"
        "@pytest.mark.lab_profile('azure')\n"
        "def test_test_marker(lab):\n"
        "    assert lab.scenario.endswith('/tests/own.yaml') and lab.profile == 'azure'\n")
    project.path.joinpath("tests", "test_plain.py").write_text(
        "import os\n"
        "def test_defaults(lab, pytestconfig):\n"
        "    expected = os.environ.get('EXPECT_SCENARIO') or str(pytestconfig.rootpath / 'scenarios/from-ini.yaml')\n"
        "    assert (lab.scenario, lab.profile) == (expected, os.environ.get('EXPECT_PROFILE', 'fast'))\n")
    project.runpytest(*FLAGS, "--strict-markers").assert_outcomes(passed=3)
    # The module's lab is re-made for the test that asks for another profile: two labs there, one here.
    assert [c["profile"] for c in of(calls(project), "new")] == ["fast", "azure", "fast"]
    assert len(of(calls(project), "down")) == 3

    project.path.joinpath(CALLS).unlink()
    monkeypatch.setenv("EXPECT_SCENARIO", "active-active")
    monkeypatch.setenv("EXPECT_PROFILE", "azure")
    result = project.runpytest(*FLAGS, "tests/test_plain.py", "--lab-scenario", "active-active", "--lab-profile",
                               "azure")
    result.assert_outcomes(passed=1)


def test_a_lab_s_name_is_valid_and_its_own_per_worker_and_session(project, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    project.makepyfile(test_names="""
        import re
        from lab.model.names import LAB

        def test_name(lab, lab_factory):
            assert re.fullmatch(r"pt-gw3-[0-9a-f]{6}-1", lab.name), lab.name
            assert LAB.problem(lab.name) is None
            assert lab.labels == {"lab.session": "pytest-gw3-" + lab_factory.token}
    """)
    project.runpytest(*FLAGS).assert_outcomes(passed=1)
    project.runpytest(*FLAGS).assert_outcomes(passed=1)
    first, second = (c["lab"] for c in of(calls(project), "new"))
    assert first != second
    # Every `up` carried the session label, the one the end-of-session sweep looks for.
    assert all(c["labels"]["lab.session"].startswith("pytest-gw3-") for c in of(calls(project), "up"))


def test_a_prefix_that_makes_no_lab_name_fails_in_one_line(project):
    project.makeini("[pytest]\nlab_prefix = Bad_Prefix\n")
    project.makepyfile(test_bad="def test_it(lab):\n    pass\n")
    result = project.runpytest(*FLAGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*lab_prefix 'Bad_Prefix' makes no valid lab name: *"])


def test_a_marker_without_its_one_argument_is_refused(project):
    project.makepyfile(test_marker="""
        import pytest

        @pytest.mark.lab_scenario()
        def test_it(lab):
            pass
    """)
    result = project.runpytest(*FLAGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.lab_scenario takes one scenario or profile: a name or a YAML path*"])


# -- the engine ----------------------------------------------------------------------------------------
def test_no_engine_skips_the_lab_tests_with_the_reason_and_can_fail_them(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makepyfile(test_engine="""
        def test_with_a_lab(lab):
            pass

        def test_with_a_failover(lab_failover):
            pass

        def test_without(tmp_path):
            pass
    """)
    result = pytester.runpytest(*FLAGS, "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED * lab: no Docker engine answers at unix:///nonexistent/docker.sock "
                                 "(DockerException): start it *or set DOCKER_HOST"])
    strict = pytester.runpytest(*FLAGS, "--lab-require-engine")
    strict.assert_outcomes(passed=1, errors=2)
    strict.stdout.fnmatch_lines(["lab: no Docker engine answers at unix:///nonexistent/docker.sock*"])


# -- lifetimes -----------------------------------------------------------------------------------------
def test_a_module_shares_one_lab_and_per_test_labs_are_their_own(project):
    project.makepyfile(test_shared="""
        def test_one(lab):
            pass

        def test_two(lab):
            pass

        def test_fails(lab):
            assert False
    """, test_own="""
        def test_a(lab_per_test):
            pass

        def test_b(lab_per_test, lab_failover):
            assert lab_failover().report.lab == lab_per_test.name
    """)
    project.runpytest(*FLAGS).assert_outcomes(passed=4, failed=1)
    found = calls(project)
    shared = [c for c in found if c["lab"] == of(found, "new")[0]["lab"]]
    assert [c["call"] for c in shared] == ["new", "up", "down"]
    # Three labs: the module's, then one for each per-test test (no module lab for the failover).
    assert len(of(found, "up")) == 3 and len({c["lab"] for c in of(found, "down")}) == 3


def test_a_lab_that_does_not_come_up_is_removed_and_fails_its_module_in_one_line(project, monkeypatch):
    monkeypatch.setenv("FAKE_UP_FAILS", "1")
    project.makepyfile(test_up="""
        def test_first(lab):
            pass

        def test_second(lab):
            pass
    """)
    result = project.runpytest(*FLAGS)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_first*",
                                 "lab pt-*-1 did not come up: node onprem-0 deploy: container exited",
                                 "*ERROR at setup of test_second*",
                                 "the module's lab did not come up: lab pt-*-1 did not come up: *"])
    assert "During handling" not in result.stdout.str()
    # One attempt for the module, and what it left is removed.
    assert [c["call"] for c in calls(project)] == ["new", "up", "down"]


def test_a_fault_a_test_leaves_in_place_is_repaired_before_the_next(project):
    project.makepyfile(test_break="""
        def test_breaks(lab):
            lab.break_("kill", "azure-gw-0")
            assert lab.faults() == ["kill on azure-gw-0"]

        def test_clean(lab):
            pass
    """)
    project.runpytest(*FLAGS).assert_outcomes(passed=2)
    assert [c["call"] for c in calls(project)] == ["new", "up", "repair", "down"]


def test_keep_leaves_the_labs_up_and_names_them(project):
    project.makepyfile(test_keep="def test_it(lab):\n    pass\n")
    result = project.runpytest(*FLAGS, "--lab-keep")
    result.assert_outcomes(passed=1)
    assert not of(calls(project), "down")
    result.stdout.fnmatch_lines(["*labs kept (--lab-keep)*", "pt-*-1: `lab status --lab pt-*-1`; "
                                                             "`lab down --lab pt-*-1` removes it"])


# -- what a failure shows, what JUnit carries -----------------------------------------------------------
def test_a_failed_assertion_shows_each_failover_s_breakdown_and_junit_carries_the_figures(project):
    project.makepyfile(test_figures="""
        def test_fast_enough(lab_failover):
            assert lab_failover(fault="kill").rate_derived_s < 10

        def test_too_tight(lab_failover):
            assert lab_failover(fault="kill", target_s=0.5).passed
    """)
    result = project.runpytest(*FLAGS, "--junitxml=junit.xml", "-o", "junit_family=xunit1",
                               "--lab-results", "results")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*- lab failover 1: kill on azure-gw-0 -*",
        "kill on azure-gw-0: FAIL, target 0.5 s (asked for; the profile's is 2 s)",
        "*onprem-host → azure-vm  rate-derived        1.20 s  loss-derived 1.10 s  lost 55 (late 1) in 1 run",
        "*azure-vm → onprem-host  rate-derived        0.90 s*",
        "breakdown of run 1 (seconds after the fault):",
        "*public IP moved*0.31 s  azure-gw-1: vrrp-master",
        "*IKE re-established*0.84 s*",
    ])
    result.stdout.fnmatch_lines([
        "E  *where False = FailoverResult(kill on azure-gw-0: FAIL, rate-derived 1.20 s, target 0.5 s).passed",
        "E  *where FailoverResult(*) = lab_failover(fault='kill', target_s=0.5)"])

    assert out.count("lab failover 1:") == 1   # the passing test shows none

    cases = {c.get("name"): c for c in ET.parse(project.path / "junit.xml").getroot().iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_fast_enough"].iter("property")}
    folder = project.path / "results" / "test_figures.py_test_fast_enough" / "1-kill"
    assert props["lab.failover.1.verdict"] == "PASS" and props["lab.failover.1.fault"] == "kill on azure-gw-0"
    assert props["lab.failover.1.rate_derived_s"] == "1.2000" and props["lab.failover.1.target_s"] == "2"
    assert props["lab.failover.1.onprem-host → azure-vm.rate_derived_s"] == "1.2000"
    assert props["lab.failover.1.azure-vm → onprem-host.lost"] == "60"
    assert props["lab.failover.1.phase.BGP Established"] == "not observed"
    assert props["lab.failover.1.folder"] == str(folder)
    tight = {p.get("name"): p.get("value") for p in cases["test_too_tight"].iter("property")}
    assert (tight["lab.failover.1.verdict"], tight["lab.failover.1.target_s"]) == ("FAIL", "0.5")
    assert tight["lab.failover.1.profile_target_s"] == "2"


def test_without_results_dir_the_reports_go_to_the_test_s_tmp_path(project):
    project.makepyfile(test_tmp="""
        def test_it(lab_failover, tmp_path):
            assert lab_failover(fault="pause", target="azure-gw-1").folder == tmp_path / "failover-1-pause-azure-gw-1"
            assert lab_failover(fault="kill").folder == tmp_path / "failover-2-kill"
    """)
    project.runpytest(*FLAGS).assert_outcomes(passed=1)



def test_under_xdist_each_worker_has_labs_of_its_own(project, monkeypatch):
    """pytest-xdist for real, two workers: a lab per module, two side by side, never one name twice."""
    # The workers import the fakes from this file.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    for n in range(4):
        project.makepyfile(**{f"test_w{n}": "def test_it(lab):\n    assert lab.name\n"})
    result = project.runpytest_subprocess(*FLAGS, "-p", "xdist", "-n", "2", "--dist", "loadfile")
    result.assert_outcomes(passed=4)
    names = [c["lab"] for c in of(calls(project), "new")]
    assert len(names) == len(set(names)) == 4
    workers = {re.match(r"pt-(gw\d)-", name).group(1) for name in names}
    assert workers == {"gw0", "gw1"}, names
