"""Real failovers on real containers, every fault, with the fast profile."""
import json
import os
import subprocess
import sys
import uuid

import pytest

from lab.run import lifecycle
from lab.model.events import ControlEvent, EventStream, Recorder, Stage
from lab.render.deploy_plan import plan_deploy

from lab.plan.load import load_plan

from .conftest import forwarded_out, start_lab
from .outside import OutsideCapture
from .failover_checks import (
    assert_back_to_initial,
    assert_restored_in_order,
    assert_within_published,
    first_valid,
    kinds,
    phase_times,
    run_fault,
)


def run_cli(*args, timeout=300):
    """`lab ARGS...` as a user runs it: its own process, the test session's state folder."""
    return subprocess.run([sys.executable, "-m", "lab.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


@pytest.fixture(scope="module")
def outside(adapters):
    """A capture beyond the guard, started before the lab exists: it sees every state of the lab."""
    capture = OutsideCapture(adapters, load_plan("active-standby", "fast", lab=f"it-{uuid.uuid4().hex[:6]}")).start()
    yield capture
    capture.stop()


@pytest.fixture(scope="module")
def fast_lab(adapters, state_dir, outside):
    """The fast-profile lab, brought up twice (as users do): every failover below runs after a repeated `up`.

    After every test, nothing may have been seen beyond the lab (the capture), and the host's
    forwarded-packet counter, a second check behind the guard's drop, must read 0.
    """
    plan, _, _ = start_lab(adapters, plan=outside.plan)
    start_lab(adapters, plan=plan)
    yield plan
    lifecycle.down(plan.lab, adapters)


@pytest.fixture(autouse=True)
def nothing_leaves(request, adapters):
    yield
    if "fast_lab" in request.fixturenames:
        plan = request.getfixturevalue("fast_lab")
        assert request.getfixturevalue("outside").seen() == []
        assert forwarded_out(adapters, plan) == 0


def test_repeated_up_leaves_every_nodes_files_as_rendered(fast_lab, adapters):
    placed = lifecycle.place_segments(fast_lab, adapters)
    for name in fast_lab.nodes:
        spec = next(n for n in plan_deploy(placed, psks={}).nodes if n.hostname == name)
        for f in spec.files:
            assert adapters.runtime.read_file(spec.name, f"/lab/{f.path}") == f.text, (name, f.path)
        if spec.needs_tun:
            code, modes = adapters.runtime.exec(spec.name, ["stat", "-c", "%a %n", "/lab/secrets",
                                                            "/lab/secrets/psk.conf"])
            assert code == 0 and modes.split() == ["700", "/lab/secrets", "600", "/lab/secrets/psk.conf"], modes


def test_kill_fast(fast_lab, adapters):
    events, heard = EventStream(), Recorder()
    events.subscribe(heard)
    report, stages = run_fault(fast_lab, adapters, "kill", events, runs=1)
    # FRR's and keepalived's changes were published as the runs went on, not only read after them.
    assert {"frr", "vrrp"} <= {c.event.source for c in heard.of(ControlEvent)}
    assert {Stage.BASELINE, Stage.MEASURING_FAILOVER, Stage.RESTORING, Stage.FAILING_BACK} <= set(stages)
    for run in report.runs:
        assert_restored_in_order(run)
        assert "container-kill" in kinds(run, "azure-gw-0") and "container-die" in kinds(run, "azure-gw-0")
        assert "vrrp-master" in kinds(run, "azure-gw-1")
        assert "child-up" in kinds(run, "azure-gw-1") and "bgp-up" in kinds(run, "onprem-0")
        assert_back_to_initial(fast_lab, adapters, run)
    assert report.passed, report.verdict
    # The README's figure (docs/figures/as-fast-kill, N=5) is held to its margin by make test-figures
    # (tests/integration/test_figures.py): three runs of it here cost make test a minute and a half.


# Each fault timed on its own is a sweep (`make test-all`): `make test` times kill and pause (the README's
# rows here, link-down in test_engines) and injects the other three through `lab break` (the break-and-repair
# test below, test_lifecycle).
@pytest.mark.sweep
def test_maintenance_fast_sends_delete_before_the_ip_moves(fast_lab, adapters):
    report, _ = run_fault(fast_lab, adapters, "maintenance")
    run = first_valid(report)
    assert_restored_in_order(run)
    at = {}
    for e in run.events:
        at.setdefault((e.node, e.kind), e.t_ns)
    # The peer heard the DELETE (its SA went down) before the standby took the IP.
    assert at[("onprem-0", "ike-down")] < at[("azure-gw-1", "vrrp-master")]
    assert at[("azure-gw-0", "bgp-down")] < at[("onprem-0", "ike-down")]
    assert "vrrp-stop" in kinds(run, "azure-gw-0")
    assert_back_to_initial(fast_lab, adapters, run)


# Three runs against the published as-fast-pause row: `make test-all` (marker sweep); `make test` times a
# pause through the CLI (test_cli_writes_results_and_exit_code_follows_the_verdict) and leaves one by `lab break`.
@pytest.mark.sweep
def test_pause_fast_counts_the_probes_a_frozen_instance_held_as_lost(fast_lab, adapters):
    # charon is also the userspace ESP: probes that reached the frozen instance wait in it and are
    # delivered seconds later, at the restore. Past the Forwarding Delay Threshold they are lost, so the
    # outage starts at the fault, not after the held probes.
    report, _ = run_fault(fast_lab, adapters, "pause", runs=3)
    held = 0
    for run in report.runs:
        if run.invalid is not None:
            continue
        assert_restored_in_order(run)
        assert "vrrp-master" in kinds(run, "azure-gw-1")
        for d, probes in zip(run.directions, run.probes):
            sent = dict(probes.sent)
            late = sorted(sent[q] - run.fault_ns for q, s, r in probes.received
                          if q in sent and run.fault_ns <= sent[q] < run.end_ns - 0.1 * 1e9 and r - s > 0.1 * 1e9)
            held += bool(late)
            if late:
                # Figures are rounded to 0.1 ms: the episode starts at the first held probe, to that rounding.
                assert d.late > 0 and d.loss_episodes[0].start_s <= late[0] / 1e9 + 1e-4, (d, late[:3])
                assert d.loss_episodes[0].start_s < 0.1, d.loss_episodes[:2]
        # Thawed, the instance is fenced until it left VRRP: its restore costs no takeover back.
        assert all(r.full_convergence_s is not None for r in run.restore), run.restore
        assert_back_to_initial(fast_lab, adapters, run)
    assert held, "no run had probes held by the frozen instance: the late-delivery case was not exercised"
    assert_within_published(report, "as-fast-pause")


@pytest.mark.sweep
def test_link_down_fast(fast_lab, adapters):
    report, _ = run_fault(fast_lab, adapters, "link-down")
    run = first_valid(report)
    assert_restored_in_order(run)
    assert "vrrp-master" in kinds(run, "azure-gw-1")
    assert report.verdict in ("PASS", "FAIL") and report.measured
    # One run: within the target (the median of 3 against the published figure is in `make test-figures`).
    assert all(d.full_convergence_s <= report.target_s for d in run.directions), run.directions
    assert_back_to_initial(fast_lab, adapters, run)


@pytest.mark.sweep
def test_blackhole_is_not_repaired_by_active_standby_and_fails(fast_lab, adapters):
    # VRRP still sees the instance alive, so nothing takes over: the run ends
    # at target + grace, not restored, and says FAIL instead of hanging.
    report, _ = run_fault(fast_lab, adapters, "blackhole", grace_s=4.0)
    run = first_valid(report)
    assert not report.passed
    for d in run.directions:
        assert d.rate_derived_s is None and not d.converged
        assert d.longest_gap_s >= report.target_s + 4.0 - 0.5
    assert "vrrp-master" not in kinds(run, "azure-gw-1")
    assert phase_times(run)["traffic restored"] is None
    assert_back_to_initial(fast_lab, adapters, run)


def test_cli_writes_results_and_exit_code_follows_the_verdict(fast_lab, adapters, tmp_path, state_dir):
    out = tmp_path / "results"
    done = run_cli("failover", "--fault", "pause", "--lab", fast_lab.lab, "--target", "azure-gw-0", "--out", str(out))
    data = json.loads((out / "report.json").read_text())
    # 0 PASS, 1 FAIL, 3 could not measure (invalid runs repeated up to the bound): the test fails on
    # "could not measure", with its reasons.
    assert done.returncode != 3, [run["invalid"] for run in data["runs"]] + data["unmeasured"]
    assert done.returncode == {"PASS": 0, "FAIL": 1}[data["verdict"]], done.stderr[-2000:]
    assert data["profile"] == "fast" and len(data["runs"]) == 1
    assert "Breakdown" in done.stdout and ("PASS" in done.stdout or "FAIL" in done.stdout)
    junit = (out / "junit.xml").read_text()
    assert "<testsuite" in junit and "run 1: rate-derived convergence" in junit
    assert (out / "run-1.png").read_bytes()[:4] == b"\x89PNG"
    keys = json.loads((state_dir / fast_lab.lab / "psk.json").read_text()).values()
    written = "".join(p.read_text() for p in out.iterdir() if p.suffix in (".json", ".xml", ".md"))
    assert keys and not any(k in written + done.stdout + done.stderr for k in keys)
    assert "# Failover: pause on azure-gw-0" in (out / "summary.md").read_text()


def test_bad_target_is_one_clear_line(fast_lab, adapters):
    done = run_cli("failover", "--fault", "kill", "--lab", fast_lab.lab, "--target", "vnet-router", timeout=60)
    assert done.returncode == 2
    assert "--target 'vnet-router' is not a node of scenario active-standby that faults can hit" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_break_and_repair_by_hand(fast_lab, adapters, state_dir):
    def lab(*args):
        return run_cli(*args, "--lab", fast_lab.lab, timeout=240)

    broken = lab("break", "link-down", "--target", "azure-gw-0")
    assert broken.returncode == 0, broken.stderr
    assert lifecycle.wait_for("standby takes over",
                              lambda: [] if lifecycle.read_status(fast_lab.lab, adapters).gateways[0].active == ["azure-gw-1"]
                              else ["azure-gw-1 not active yet"], 30) >= 0
    shown = lab("status", "--json")
    assert json.loads(shown.stdout)["faults_in_place"] == ["link-down on azure-gw-0"]
    again = lab("break", "link-down", "--target", "azure-gw-0")
    assert again.returncode == 2 and "already in place on azure-gw-0" in again.stderr
    repaired = lab("repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "link internet up" in repaired.stdout and "failed back to azure-gw-0" in repaired.stdout
    status = lifecycle.read_status(fast_lab.lab, adapters)
    assert status.converged and status.gateways[0].active == ["azure-gw-0"]
    assert "nothing to repair" in lab("repair").stdout
