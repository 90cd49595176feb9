"""Bringing labs up and down: nothing half-made, nothing left behind."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from lab.run import lifecycle
from lab.failover.breakfix import RECORD, faults_in_place
from lab.render.deploy_plan import IMAGE
from lab.model.errors import WaitTimeout
from lab.plan.load import load_plan

from .conftest import SESSION

# The installed command, as a user runs it (pyproject's entry point), from this venv.
LAB = str(Path(sys.executable).with_name("lab"))


def lab_objects(adapters, lab):
    client = adapters.runtime.client
    containers = client.containers.list(all=True, filters={"label": f"lab.name={lab}"})
    networks = client.networks.list(filters={"label": f"lab.name={lab}"})
    return containers, networks


def test_down_leaves_nothing_behind(adapters, state_dir):
    plan = load_plan("active-standby", lab=f"down-{uuid.uuid4().hex[:6]}")
    lifecycle.up(plan, adapters, extra_labels={"lab.session": SESSION})
    containers, networks = lab_objects(adapters, plan.lab)
    assert len(containers) == len(plan.nodes) and len(networks) == len(plan.scenario.networks)
    assert (state_dir / plan.lab / "psk.json").stat().st_mode & 0o077 == 0
    assert f"azlab-{plan.lab}" in adapters.host.guards()
    lifecycle.down(plan.lab, adapters)
    assert lab_objects(adapters, plan.lab) == ([], [])
    assert not (state_dir / plan.lab).exists()
    assert f"azlab-{plan.lab}" not in adapters.host.guards()
    bridges = json.loads(adapters.runtime.client.containers.run(
        IMAGE, ["ip", "-j", "link", "show", "type", "bridge"], entrypoint=[], network_mode="host", remove=True))
    assert not [b["ifname"] for b in bridges if b["ifname"].startswith(plan.bridge_prefix)]


def test_psk_never_appears_in_status_or_logs(adapters, state_dir):
    """Not in `lab up`'s output (every event it logs, with --verbose, and the status it prints), status
    (value or `lab status --json`), other `lab` output, `lab`'s own log file, container logs or any
    file under /var/log."""
    name = f"psk-{uuid.uuid4().hex[:6]}"
    lab = ["--lab", name]
    try:
        # The first `up`, which draws the keys, through the installed command: all it prints is read.
        up = subprocess.run([LAB, "--verbose", "up", *lab], capture_output=True, text=True, timeout=300,
                            env=os.environ.copy())
        assert up.returncode == 0 and "waiting for IKE and BGP to converge" in up.stderr, up.stderr[-2000:]
        assert f"lab {name}: converged in" in up.stderr
        plan = lifecycle.running_plan(name, adapters, "active-standby")
        keys = json.loads((state_dir / name / "psk.json").read_text()).values()
        assert (state_dir / name / "psk.json").stat().st_mode & 0o077 == 0
        assert (state_dir / name).stat().st_mode & 0o077 == 0
        text = up.stdout + up.stderr + json.dumps(lifecycle.read_status(name, adapters).to_dict())
        for args in (["up", *lab, "--json"], ["status", "--json", *lab], ["status", *lab], ["logs", "onprem-0", *lab],
                     ["exec", "onprem-0", *lab, "--", "swanctl", "--list-sas"]):
            done = subprocess.run([LAB, *args], capture_output=True, text=True, timeout=300, env=os.environ.copy())
            assert done.returncode == 0, (args, done.stderr[-2000:])
            text += done.stdout + done.stderr
        for node in plan.nodes.values():
            text += adapters.runtime.logs(node.container)
            code, logs = adapters.runtime.exec(node.container, ["sh", "-c", "cat /var/log/*.log /var/log/*/* 2>/dev/null"])
            text += logs
        log_file = state_dir / "logs" / "lab.log"
        text += log_file.read_text()
        assert f"lab {name}: converged in" in log_file.read_text()
        assert keys and all(len(k) >= 16 for k in keys)
        assert not any(k in text for k in keys)
    finally:
        lifecycle.teardown(name, adapters)


def test_down_with_faults_in_place_leaves_nothing(adapters, state_dir):
    """A paused instance and blocked IKE ports (left by `lab break`) don't stop `lab down`."""
    from lab.failover.breakfix import break_lab

    plan = load_plan("active-standby", lab=f"brk-{uuid.uuid4().hex[:6]}")
    lifecycle.up(plan, adapters, extra_labels={"lab.session": SESSION})
    try:
        break_lab(plan, adapters, "blackhole", "azure-gw-1", state_dir / plan.lab)
        break_lab(plan, adapters, "pause", "azure-gw-0", state_dir / plan.lab)
        assert adapters.runtime.containers({"lab.name": plan.lab, "lab.node": "azure-gw-0"})[0].status == "paused"
    finally:
        lifecycle.down(plan.lab, adapters)
    assert_gone(adapters, state_dir, plan.lab)


def test_a_failed_start_removes_what_it_made(adapters, state_dir, monkeypatch):
    plan = load_plan("active-standby", lab=f"fail-{uuid.uuid4().hex[:6]}")
    # No node is ready in a tenth of a second (a VRRP node listens for 4 adverts first): the wait for
    # readiness runs out, and says what it was waiting for. (Convergence follows readiness within a
    # tenth of a second now, so a short convergence wait no longer fails a start.)
    monkeypatch.setattr(lifecycle, "HEALTHY_WITHIN_S", 0.1)
    with pytest.raises(WaitTimeout, match=r"^healthy nodes not reached within 0 s: \S"):
        lifecycle.up(plan, adapters, extra_labels={"lab.session": SESSION})
    assert lab_objects(adapters, plan.lab) == ([], [])
    assert not (state_dir / plan.lab).exists()


def assert_gone(adapters, state_dir, lab):
    assert lab_objects(adapters, lab) == ([], [])
    assert adapters.runtime.lab_objects({"lab.name": lab}) == []   # volumes too
    assert f"azlab-{lab}" not in adapters.host.guards()
    assert not (state_dir / lab).exists()


LOG_TIME = re.compile(r"^\[\d\d:\d\d:\d\d\]")
# Stage boundaries of `up` (its stage events, as `lab --verbose` logs them), from the first to the last.
STAGES = ["checking the Docker engine", "placing the lab's networks", "installing the host's forwarding guard",
          "creating networks (lab-", "creating nodes (azure-gw-0: creating)", "creating nodes (azure-gw-1: starting)",
          "creating nodes (onprem-host: starting)", "waiting for healthy daemons", "waiting for IKE and BGP to converge"]


class LabCommand:
    """The installed `lab` in a session of its own, as a terminal runs it (Ctrl-C goes to its process
    group); its output read line by line as it comes."""

    def __init__(self, *args: str):
        # Wide: one line per logged event, never wrapped; --verbose: the log on stderr.
        env = {**os.environ, "COLUMNS": "400"}
        # SIGINT's default restored in the child, as a terminal's shell does: a test session started in
        # the background (a job of a non-interactive shell) passes SIGINT on ignored.
        self.proc = subprocess.Popen([LAB, "--verbose", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, start_new_session=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.out: list[str] = []
        self.err: list[str] = []
        self._seen = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(pipe, lines), daemon=True)
                         for pipe, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe, lines: list[str]) -> None:
        for line in pipe:
            with self._seen:
                lines.append(line)
                self._seen.notify_all()

    def messages(self) -> list[str]:
        """stderr's lines without rich's log column (time, or its blank continuation)."""
        return [LOG_TIME.sub("", line).strip() for line in self.err]

    def wait_for_message(self, prefix: str, within_s: float = 120) -> None:
        """Waits (bounded) until a logged event with `prefix` in it is out; the command is still working."""
        with self._seen:
            seen = self._seen.wait_for(lambda: any(prefix in m for m in self.messages())
                                       or self.proc.poll() is not None, timeout=within_s)
        assert seen and any(prefix in m for m in self.messages()), \
            f"no {prefix!r} within {within_s} s (exit {self.proc.poll()}): {''.join(self.err)[-2000:]}"

    def ctrl_c(self) -> None:
        assert self.proc.poll() is None, f"`lab` had already exited ({self.proc.returncode}): the signal came late"
        os.killpg(self.proc.pid, signal.SIGINT)

    def finish(self, within_s: float = 180) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=within_s)
        for reader in self._readers:
            reader.join(timeout=10)
        return code, "".join(self.out), "".join(self.err)


def assert_interrupted_and_gone(adapters, state_dir, lab, code, out, err, said=True):
    """Exit 130, never converged, and nothing of the lab left (clean-up's own line, unless Ctrl-C cut it)."""
    assert code == 130, f"exit {code}: {err[-2000:]}"
    assert "converged" not in out + err, (out + err)[-2000:]
    assert "Traceback" not in err, err[-3000:]
    if said:
        assert err.rstrip().endswith("interrupted: the lab was removed"), err[-2000:]
    assert_gone(adapters, state_dir, lab)


# `make test` interrupts `up` before it has made anything, half-way through its nodes and once everything
# is made; every other boundary in `make test-all` (marker sweep).
QUICK_STAGES = ("placing the lab's networks", "creating nodes (azure-gw-1: starting)", "waiting for IKE and BGP to converge")


@pytest.mark.parametrize("stage", [s if s in QUICK_STAGES else pytest.param(s, marks=pytest.mark.sweep) for s in STAGES])
def test_ctrl_c_at_a_stage_boundary_leaves_nothing(adapters, state_dir, stage):
    lab = f"int-{uuid.uuid4().hex[:6]}"
    up = LabCommand("up", "--lab", lab)
    try:
        up.wait_for_message(stage)
        up.ctrl_c()
        assert_interrupted_and_gone(adapters, state_dir, lab, *up.finish())
    finally:
        up.proc.kill()
        lifecycle.teardown(lab, adapters)


@pytest.mark.parametrize("seed", [0, *(pytest.param(seed, marks=pytest.mark.sweep) for seed in (1, 2))])
def test_ctrl_c_at_a_random_moment_of_lab_up_leaves_nothing(adapters, state_dir, seed):
    """A moment inside `up`'s work: after a random stage's message, a random part of a second later
    (every stage, the last one's wait for IKE and BGP included, runs for longer than that)."""
    rnd = random.Random(seed)
    stage, delay_s = rnd.choice(STAGES), rnd.uniform(0.0, 1.0)
    lab = f"rnd-{uuid.uuid4().hex[:6]}"
    up = LabCommand("up", "--lab", lab)
    try:
        up.wait_for_message(stage)
        time.sleep(delay_s)
        up.ctrl_c()
        assert_interrupted_and_gone(adapters, state_dir, lab, *up.finish())
    finally:
        up.proc.kill()
        lifecycle.teardown(lab, adapters)


def test_ctrl_c_pressed_again_and_again_still_exits_130_and_leaves_nothing(adapters, state_dir):
    """A user who keeps pressing Ctrl-C: clean-up is not cut short, and `lab` still exits 130 (not
    killed by the signal while it exits)."""
    lab = f"rep-{uuid.uuid4().hex[:6]}"
    up = LabCommand("up", "--lab", lab)
    try:
        up.wait_for_message("creating nodes (azure-gw-0: creating)")
        presses = 0
        deadline = time.monotonic() + 120
        while up.proc.poll() is None and time.monotonic() < deadline:
            try:
                os.killpg(up.proc.pid, signal.SIGINT)
                presses += 1
            except ProcessLookupError:
                break
            time.sleep(0.01)
        code, out, err = up.finish()
        assert presses > 10, presses
        # The last press may land in the line that says so: the exit code and the engine are what count.
        assert_interrupted_and_gone(adapters, state_dir, lab, code, out, err, said=False)
    finally:
        up.proc.kill()
        lifecycle.teardown(lab, adapters)


def test_ctrl_c_during_lab_break_exits_130_and_lab_repair_undoes_it(adapters, state_dir):
    """`lab break` interrupted once the fault is recorded (it is being injected): exit 130, and
    `lab repair` finds it and puts the lab right."""
    plan = load_plan("active-standby", lab=f"ibr-{uuid.uuid4().hex[:6]}")
    lifecycle.up(plan, adapters, extra_labels={"lab.session": SESSION})
    try:
        broken = LabCommand("break", "maintenance", "--target", "azure-gw-0", "--lab", plan.lab)
        record = state_dir / plan.lab / RECORD
        assert lifecycle.poll_until(lambda: record.exists() or broken.proc.poll() is not None, 60, 0.005)
        broken.ctrl_c()
        code, out, err = broken.finish()
        assert code == 130 and "Watch it with" not in out, (code, out, err[-2000:])
        assert faults_in_place(state_dir / plan.lab) == ["maintenance on azure-gw-0"]
        repaired = subprocess.run([LAB, "repair", "--lab", plan.lab], capture_output=True, text=True, timeout=300)
        assert repaired.returncode == 0, repaired.stderr[-2000:]
        assert repaired.stdout.startswith("maintenance on azure-gw-0: instance restarted"), repaired.stdout
        assert faults_in_place(state_dir / plan.lab) == []
        lifecycle.wait_for("convergence", lambda: lifecycle.read_status(plan.lab, adapters).unconverged_reasons(), 120)
    finally:
        lifecycle.down(plan.lab, adapters)
    assert_gone(adapters, state_dir, plan.lab)


def test_two_labs_of_one_scenario_run_side_by_side_and_go_alone(adapters, state_dir):
    first = load_plan("active-standby", lab=f"one-{uuid.uuid4().hex[:6]}")
    second = load_plan("active-standby", lab=f"two-{uuid.uuid4().hex[:6]}")
    try:
        for plan in (first, second):
            lifecycle.up(plan, adapters, extra_labels={"lab.session": SESSION})
        for plan in (first, second):
            status = lifecycle.read_status(plan.lab, adapters)
            assert status.converged, (plan.lab, status.unconverged_reasons())
        lifecycle.down(first.lab, adapters)
        assert_gone(adapters, state_dir, first.lab)
        status = lifecycle.read_status(second.lab, adapters)
        assert status.converged, status.unconverged_reasons()
        assert len(lab_objects(adapters, second.lab)[0]) == len(second.nodes)
    finally:
        for plan in (first, second):
            lifecycle.down(plan.lab, adapters)
    assert_gone(adapters, state_dir, second.lab)
