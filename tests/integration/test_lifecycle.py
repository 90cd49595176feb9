"""Bringing labs up and down: nothing half-made, nothing left behind."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest

from lab import lifecycle
from lab.deploy import IMAGE
from lab.topology import load_plan

from .conftest import SESSION


def lab_objects(adapters, lab):
    client = adapters.runtime.client
    containers = client.containers.list(all=True, filters={"label": f"lab.name={lab}"})
    networks = client.networks.list(filters={"label": f"lab.name={lab}"})
    return containers, networks


def test_down_leaves_nothing_behind(adapters, state_dir):
    plan = load_plan("active-standby", lab=f"down-{uuid.uuid4().hex[:6]}")
    lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels={"lab.session": SESSION})
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
    """Not in status (value or `lab status --json`), `lab` output, container logs or any file under /var/log."""
    plan = load_plan("active-standby", lab=f"psk-{uuid.uuid4().hex[:6]}")
    status = lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels={"lab.session": SESSION})
    try:
        keys = json.loads((state_dir / plan.lab / "psk.json").read_text()).values()
        assert (state_dir / plan.lab / "psk.json").stat().st_mode & 0o077 == 0
        assert (state_dir / plan.lab).stat().st_mode & 0o077 == 0
        text = json.dumps(status.to_dict())
        lab = ["--lab", plan.lab]
        for args in (["status", "--json", *lab], ["status", *lab], ["logs", "onprem-0", *lab],
                     ["exec", "onprem-0", *lab, "--", "swanctl", "--list-sas"]):
            done = subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True,
                                  text=True, timeout=60, env=os.environ.copy())
            text += done.stdout + done.stderr
        for node in plan.nodes.values():
            text += adapters.runtime.logs(node.container)
            code, logs = adapters.runtime.exec(node.container, ["sh", "-c", "cat /var/log/*.log /var/log/*/* 2>/dev/null"])
            text += logs
        assert keys and not any(k in text for k in keys)
    finally:
        lifecycle.down(plan.lab, adapters)


def test_down_with_faults_in_place_leaves_nothing(adapters, state_dir):
    """A paused instance and blocked IKE ports (left by `lab break`) don't stop `lab down`."""
    from lab.breakfix import break_lab

    plan = load_plan("active-standby", lab=f"brk-{uuid.uuid4().hex[:6]}")
    lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels={"lab.session": SESSION})
    try:
        break_lab(plan, adapters, "blackhole", "azure-gw-1", state_dir / plan.lab)
        break_lab(plan, adapters, "pause", "azure-gw-0", state_dir / plan.lab)
        assert adapters.runtime.containers({"lab.name": plan.lab, "lab.node": "azure-gw-0"})[0].status == "paused"
    finally:
        lifecycle.down(plan.lab, adapters)
    assert_gone(adapters, state_dir, plan.lab)


def test_a_failed_start_removes_what_it_made(adapters, state_dir):
    plan = load_plan("active-standby", lab=f"fail-{uuid.uuid4().hex[:6]}")
    with pytest.raises(Exception):
        # Nothing converges in a tenth of a second: the wait runs out.
        lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels={"lab.session": SESSION},
                     converge_within_s=0.1)
    assert lab_objects(adapters, plan.lab) == ([], [])
    assert not (state_dir / plan.lab).exists()


def assert_gone(adapters, state_dir, lab):
    assert lab_objects(adapters, lab) == ([], [])
    assert f"azlab-{lab}" not in adapters.host.guards()
    assert not (state_dir / lab).exists()


# Stage boundaries of `up` (its progress messages), from the first to the last.
STAGES = ["checking the Docker engine", "placing the lab's networks", "installing the host's forwarding guard",
          "network lab-", "node azure-gw-0: creating", "node azure-gw-1: starting", "node onprem-host: starting",
          "waiting for daemons to be healthy", "waiting for IKE and BGP to converge"]


@pytest.mark.parametrize("stage", STAGES)
def test_ctrl_c_at_a_stage_boundary_leaves_nothing(adapters, state_dir, stage):
    plan = load_plan("active-standby", lab=f"int-{uuid.uuid4().hex[:6]}")

    def interrupt_at(message):
        if message.startswith(stage):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lifecycle.up(plan, adapters, progress=interrupt_at, extra_labels={"lab.session": SESSION})
    assert_gone(adapters, state_dir, plan.lab)


@pytest.mark.parametrize("seed", range(3))
def test_ctrl_c_at_a_random_moment_of_lab_up_leaves_nothing(adapters, state_dir, seed):
    lab = f"rnd-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli", "up", "--lab", lab], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(random.Random(seed).uniform(2.5, 8.0))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err[-2000:]
    converged = proc.returncode == 0 or f"interrupted: lab {lab} is running" in err
    if converged:  # it converged before the interrupt took effect: a user then downs it
        assert lifecycle.read_status(lab, adapters).converged
        lifecycle.down(lab, adapters)
    else:
        assert "interrupted: the lab was removed" in err, err[-2000:]
    assert_gone(adapters, state_dir, lab)


def test_two_labs_of_one_scenario_run_side_by_side_and_go_alone(adapters, state_dir):
    first = load_plan("active-standby", lab=f"one-{uuid.uuid4().hex[:6]}")
    second = load_plan("active-standby", lab=f"two-{uuid.uuid4().hex[:6]}")
    try:
        for plan in (first, second):
            lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels={"lab.session": SESSION})
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
