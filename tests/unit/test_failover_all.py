"""`make failover-all` (scripts/failover_all.py): its table from report dicts, and the suites it reads."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from lab.failover.faults import get_fault
from lab.plan.load import builtin_profiles, builtin_scenarios, load_scenario

_spec = importlib.util.spec_from_file_location("failover_all",
                                               Path(__file__).parents[2] / "scripts" / "failover_all.py")
fa = importlib.util.module_from_spec(_spec)
sys.modules["failover_all"] = fa   # its dataclasses look their module up while being built
_spec.loader.exec_module(fa)

SOURCE = "Azure: planned maintenance, 10-15 s"
META = {"command": "make failover-all", "runs": 3, "started_at": "2026-12-01T00:00:00+00:00", "elapsed_s": 600.0,
        "machine": "engine: 2 CPU"}


def _run(index, figures, invalid=None, target_s=15.0):
    """A run as report.json holds it: each direction's Full Convergence Time (None: never converged)."""
    directions = [{"direction": name, "full_convergence_s": f} for name, f in zip(("a → b", "b → a"), figures)]
    checks = [{"name": f"rate-derived convergence {d['direction']}", "measured": d["full_convergence_s"],
               "limit": target_s, "unit": "s",
               "passed": d["full_convergence_s"] is not None and d["full_convergence_s"] <= target_s}
              for d in directions]
    passed = invalid is None and all(c["passed"] for c in checks)
    return {"index": index, "directions": directions, "checks": checks, "invalid": invalid,
            "verdict": "INVALID" if invalid else "PASS" if passed else "FAIL"}


def _report(*runs, target="azure-gw-0", runs_asked=None):
    verdicts = [r["verdict"] for r in runs]
    valid = [v for v in verdicts if v != "INVALID"]
    verdict = "FAIL" if "FAIL" in verdicts else "PASS" if len(valid) >= (runs_asked or len(valid)) else "INVALID"
    return {"scenario": "active-standby", "fault": "maintenance", "target": target, "profile": "azure",
            "planned": True, "target_s": 15.0, "target_source": SOURCE, "runs": list(runs),
            "runs_asked": runs_asked or len(valid), "machine": "engine: 2 CPU", "verdict": verdict}


def _row(report, exit_code=None, target=None, error=None):
    job = fa.Job("active-standby", "active-standby", "maintenance", target, "azure")
    code = fa.EXIT_OF[report["verdict"]] if exit_code is None and report else exit_code
    return fa.summary_row(fa.Outcome(job, code, report, error, 70.0))


def _table_line(row):
    return fa.render_markdown([row], META).splitlines()[6]


def test_a_passing_run_is_a_pass_row_with_the_slower_direction_and_the_target_with_its_source():
    row = _row(_report(_run(1, [3.1, 4.2])))
    assert (row["verdict"], row["n"], row["min_s"], row["median_s"], row["max_s"]) == ("PASS", 1, 4.2, 4.2, 4.2)
    assert row["target"] == "azure-gw-0" and row["default_target"]
    line = _table_line(row)
    assert line.startswith("| active-standby | maintenance | azure-gw-0 (default) | azure | 1 | 4.20 s | 4.20 s | "
                           "4.20 s | 15 s (Azure: planned maintenance, 10-15 s) | **PASS** (1/1 valid runs")


def test_several_runs_give_min_median_max_over_the_valid_runs_only():
    row = _row(_report(_run(1, [5.0, 6.0]), _run(2, [2.0, 1.0]), _run(3, [1.0, 1.0], invalid="baseline lost probes"),
                       _run(4, [9.0, 3.0]), target="azure-gw-1"), target="azure-gw-1")
    assert (row["n"], row["invalid"], row["min_s"], row["median_s"], row["max_s"]) == (3, 1, 2.0, 6.0, 9.0)
    assert not row["default_target"]
    cells = [c.strip() for c in _table_line(row).split("|")[1:-1]]
    assert cells[2:8] == ["azure-gw-1", "azure", "3 (1 invalid)", "2.00 s", "6.00 s", "9.00 s"]
    assert cells[9].startswith("**PASS** (3/3 valid runs within target")


def test_a_missed_target_is_a_fail_row_and_a_direction_that_never_converged_is_never():
    row = _row(_report(_run(1, [3.0, 4.0]), _run(2, [20.0, 4.0]), _run(3, [None, 4.0])))
    assert (row["verdict"], row["min_s"], row["median_s"], row["max_s"], row["never"]) == ("FAIL", 4.0, 20.0, None, 1)
    cells = [c.strip() for c in _table_line(row).split("|")[1:-1]]
    assert cells[5:8] == ["4.00 s", "20.00 s", "never"]
    assert cells[9] == "**FAIL** (1/3 valid runs within target; failover missed)"
    assert fa.all_passed([row], META) is False


def test_a_crashed_run_is_an_error_row_with_its_exit_code_and_first_error_line():
    error = fa.error_line("[12:00:00] bringing lab up\nerror: node azure-gw-0 deploy: no image\nmore\n", 2)
    row = _row(None, exit_code=2, error=error)
    assert (row["verdict"], row["n"], row["target"]) == ("ERROR", None, None)
    assert row["detail"] == "exit 2: error: node azure-gw-0 deploy: no image"
    cells = [c.strip() for c in _table_line(row).split("|")[1:-1]]
    assert cells[2] == "default" and cells[4:9] == ["-"] * 5
    assert cells[9] == "**ERROR** (exit 2: error: node azure-gw-0 deploy: no image)"


def test_a_traceback_gives_its_last_line_and_a_timeout_its_bound():
    assert fa.error_line("Traceback (most recent call last):\n  File x\nKeyError: 'runs'\n", 1) == "exit 1: KeyError: 'runs'"
    row = _row(None, exit_code=None, error="timed out after 900 s (stopped)")
    assert row["verdict"] == "ERROR" and "timed out after 900 s" in _table_line(row)


def test_a_report_whose_exit_code_disagrees_is_an_error_row_that_keeps_its_figures():
    row = _row(_report(_run(1, [3.0, 4.0])), exit_code=-9)
    assert row["verdict"] == "ERROR" and row["median_s"] == 4.0
    assert row["detail"].startswith("exit -9 with a PASS report")


def test_runs_that_could_not_all_be_measured_are_invalid_not_pass():
    row = _row(_report(_run(1, [3.0, 4.0]), _run(2, [1.0, 1.0], invalid="clock drift"), runs_asked=2))
    assert (row["verdict"], row["n"], row["invalid"]) == ("INVALID", 1, 1)
    assert "1 of 2 runs measured" in row["detail"]


def test_the_json_holds_every_row_and_how_it_was_run():
    rows = [_row(_report(_run(1, [3.0, 4.0]))), _row(None, exit_code=2, error="exit 2: error: x")]
    data = json.loads(fa.summary_json(rows, META))
    assert [r["verdict"] for r in data["rows"]] == ["PASS", "ERROR"] and data["runs"] == 3
    assert data["rows"][0]["target_source"] == SOURCE and data["rows"][0]["out"] == "active-standby-azure-maintenance"
    assert not fa.all_passed(rows, META)
    assert fa.all_passed(rows[:1], META) and not fa.all_passed(rows[:1], {**META, "down_errors": ["x: exit 1"]})


def test_a_job_runs_the_cli_and_names_its_folder_by_scenario_profile_fault_and_target():
    job = fa.Job("dual-redundancy", "dual-redundancy", "link-down", "link:onprem-0/internet", "fast")
    assert job.folder == "dual-redundancy-fast-link-down-link-onprem-0-internet"
    assert job.command(2, Path("out"), "lab") == [
        "lab", "failover", "--scenario", "dual-redundancy", "--profile", "fast", "--fault", "link-down",
        "--target", "link:onprem-0/internet", "--runs", "2", "--out", "out/" + job.folder]
    default = fa.Job("active-standby", "active-standby", "kill", None, "azure")
    assert "--target" not in default.command(1, Path("out")) and default.folder == "active-standby-azure-kill"


def test_the_jobs_are_every_entry_and_profile_of_the_scenarios_asked_for():
    scenarios = [(name, load_scenario(name)[1]) for name in builtin_scenarios()]
    jobs = fa.plan_jobs(scenarios)
    assert {j.scenario for j in jobs} == set(builtin_scenarios())
    assert len(jobs) == sum(len(e.profiles) for _, s in scenarios for e in s.suite)
    fast = fa.plan_jobs(scenarios, ["fast"])
    assert fast and {j.profile for j in fast} == {"fast"}
    # One scenario's rows stay together, so its lab comes down once, after its last row.
    labs = [j.lab for j in jobs]
    assert labs == sorted(labs, key=labs.index)


@pytest.mark.parametrize("name", builtin_scenarios())
def test_every_builtin_scenario_has_a_suite_of_known_faults_and_profiles(name):
    _, scenario = load_scenario(name)
    assert scenario.suite, f"{name}: no suite: entries, so make failover-all times nothing on it"
    for entry in scenario.suite:
        assert get_fault(entry.fault).name == entry.fault
        assert entry.profiles and set(entry.profiles) <= set(builtin_profiles()), entry.profiles


def test_a_run_that_fails_on_its_restore_says_so():
    run = _run(1, [3.0, 4.0])
    run["checks"].append({"name": "restore rate-derived convergence a → b", "measured": 40.0, "limit": 15.0,
                          "unit": "s", "passed": False})
    run["verdict"] = "FAIL"
    row = _row(_report(run))
    assert (row["verdict"], row["median_s"]) == ("FAIL", 4.0)
    assert row["detail"] == "0/1 valid runs within target; restore missed"
