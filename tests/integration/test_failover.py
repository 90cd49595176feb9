"""Real failovers on real containers: every fault with the fast profile, and
Azure's own targets (planned 15 s, unplanned 90 s) with the azure profile."""
import json
import os
import subprocess
import sys

import pytest

from lab import lifecycle
from lab.experiment import FailoverRunner, FailoverSettings
from lab.failover_report import write_outputs

from .conftest import start_lab


@pytest.fixture(scope="module")
def fast_lab(adapters, state_dir):
    plan, _, _ = start_lab(adapters, "fast")
    yield plan
    lifecycle.down(plan.lab, adapters)


def run_fault(plan, adapters, fault, **overrides):
    def recreate():
        lifecycle.down(plan.lab, adapters)
        start_lab(adapters, plan=plan)

    settings = FailoverSettings(fault=fault, target="azure-gw-0", **overrides)
    stages = []
    report = FailoverRunner(plan, adapters, settings, lambda live: stages.append(live.stage), recreate).run_all()
    return report, stages


def phase_times(run):
    return {p.name: p.at_s for p in run.phases}


def kinds(run, node=None):
    return [e.kind for e in run.events if node is None or e.node == node]


def assert_back_to_initial(plan, adapters, run):
    assert run.returned_by == "failback"
    status = lifecycle.read_status(plan.lab, adapters)
    assert status.converged, status.unconverged_reasons()
    assert status.gateways[0].active == ["azure-gw-0"]


def assert_restored_in_order(run):
    for d in run.directions:
        assert d.interrupted and d.restored, d
        assert d.lost > 0 and d.outage_s > 0
    times = [p.at_s for p in run.phases]
    assert None not in times, run.phases
    assert times == sorted(times), run.phases


def test_kill_fast(fast_lab, adapters):
    report, stages = run_fault(fast_lab, adapters, "kill")
    run = report.runs[0]
    assert {"baseline", "measuring", "restoring", "failing back"} <= set(stages)
    assert_restored_in_order(run)
    assert "container-kill" in kinds(run, "azure-gw-0") and "container-die" in kinds(run, "azure-gw-0")
    assert "vrrp-master" in kinds(run, "azure-gw-1")
    assert "child-up" in kinds(run, "azure-gw-1") and "bgp-up" in kinds(run, "onprem-0")
    # Tuned timers restore traffic in a few seconds, not in minutes.
    assert max(d.restored_s for d in run.directions) < 6
    assert_back_to_initial(fast_lab, adapters, run)


def test_maintenance_fast_sends_delete_before_the_ip_moves(fast_lab, adapters):
    report, _ = run_fault(fast_lab, adapters, "maintenance")
    run = report.runs[0]
    assert_restored_in_order(run)
    at = {}
    for e in run.events:
        at.setdefault((e.node, e.kind), e.t_ns)
    # The peer heard the DELETE (its SA went down) before the standby took the IP.
    assert at[("onprem-0", "ike-down")] < at[("azure-gw-1", "vrrp-master")]
    assert at[("azure-gw-0", "bgp-down")] < at[("onprem-0", "ike-down")]
    assert "vrrp-stop" in kinds(run, "azure-gw-0")
    assert_back_to_initial(fast_lab, adapters, run)


@pytest.mark.parametrize("fault", ["pause", "link-down"])
def test_unplanned_faults_fast(fast_lab, adapters, fault):
    report, _ = run_fault(fast_lab, adapters, fault)
    run = report.runs[0]
    assert_restored_in_order(run)
    assert "vrrp-master" in kinds(run, "azure-gw-1")
    assert max(d.restored_s for d in run.directions) < 6
    assert_back_to_initial(fast_lab, adapters, run)


def test_blackhole_is_not_repaired_by_active_standby_and_fails(fast_lab, adapters):
    # VRRP still sees the instance alive, so nothing takes over: the run ends
    # at target + grace, not restored, and says FAIL instead of hanging.
    report, _ = run_fault(fast_lab, adapters, "blackhole", grace_s=4.0)
    run = report.runs[0]
    assert not report.passed
    for d in run.directions:
        assert d.restored_s is None and not d.restored
        assert d.outage_s >= report.target_s + 4.0 - 0.5
    assert "vrrp-master" not in kinds(run, "azure-gw-1")
    assert phase_times(run)["traffic restored"] is None
    assert_back_to_initial(fast_lab, adapters, run)


def test_cli_writes_results_and_exit_code_follows_the_verdict(fast_lab, adapters, tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "lab.cli", "failover", "--fault", "pause", "--lab", fast_lab.lab,
         "--target", "azure-gw-0", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=os.environ.copy())
    data = json.loads((out / "report.json").read_text())
    assert done.returncode == (0 if data["passed"] else 1), done.stderr[-2000:]
    assert data["profile"] == "fast" and len(data["runs"]) == 1
    assert "Breakdown" in done.stdout and ("PASS" in done.stdout or "FAIL" in done.stdout)
    junit = (out / "junit.xml").read_text()
    assert "<testsuite" in junit and "run 1: outage" in junit
    assert (out / "run-1.png").read_bytes()[:4] == b"\x89PNG"
    assert "# Failover: pause on azure-gw-0" in (out / "summary.md").read_text()


def test_bad_target_is_one_clear_line(fast_lab, adapters):
    done = subprocess.run(
        [sys.executable, "-m", "lab.cli", "failover", "--fault", "kill", "--lab", fast_lab.lab, "--target", "onprem-0"],
        capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 2
    assert "--target 'onprem-0' is not a gateway instance" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_azure_unplanned_kill_meets_90_s(running_lab, adapters, tmp_path):
    plan, _, _ = running_lab
    report, _ = run_fault(plan, adapters, "kill")
    write_outputs(report, tmp_path)
    run = report.runs[0]
    assert report.target_s == 90
    assert_restored_in_order(run)
    assert report.passed, [(c.name, c.measured) for c in run.checks]
    assert_back_to_initial(plan, adapters, run)


def test_azure_planned_maintenance_meets_15_s(running_lab, adapters):
    plan, _, _ = running_lab
    report, _ = run_fault(plan, adapters, "maintenance")
    run = report.runs[0]
    assert report.target_s == 15
    assert_restored_in_order(run)
    assert report.passed, [(c.name, c.measured) for c in run.checks]
    assert_back_to_initial(plan, adapters, run)
