"""Nothing a user does can harm the host or another lab, on a real engine (issue 16).

- the host's whole nftables ruleset flushed under a running lab: the next
  `lab status` puts the guard back and says so, and a capture beyond the
  guard sees no lab packet throughout;
- two `lab up` of one lab at once, and a `lab down` racing a `lab up`: one
  waits or is refused in one line, and the lab ends converged and guarded,
  or gone, never half of each.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid


from lab.run import lifecycle
from lab.model.kinds import KINDS
from lab.run.locks import holder_of
from lab.render.configs import GUARD_RULES, guard_table
from lab.plan.load import load_plan

from .conftest import start_lab
from .outside import OutsideCapture, run_on_host


def lab_cli(*args, wait_s: float = 30, timeout: float = 400) -> subprocess.Popen:
    env = {**os.environ, "LAB_LOCK_WAIT_S": str(wait_s)}
    return subprocess.Popen([sys.executable, "-m", "lab.ui.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen, timeout: float = 400) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def guard_is_whole(adapters, lab: str) -> bool:
    try:
        return set(GUARD_RULES) <= set(adapters.host.counters(guard_table(lab)))
    except Exception:
        return False


def assert_gone(adapters, state_dir, lab: str) -> None:
    assert adapters.runtime.lab_objects({"lab.name": lab}) == []
    assert guard_table(lab) not in adapters.host.guards()
    assert not (state_dir / lab).exists()


def assert_converged_and_guarded(adapters, lab: str) -> None:
    status = lifecycle.read_status(lab, adapters)
    assert status.converged, status.unconverged_reasons()
    assert guard_is_whole(adapters, lab)


def assert_hardened(adapters, lab: str) -> None:
    """Each node runs with its kind's capabilities only, no way to gain more, limits and no resolver."""
    for c in adapters.runtime.containers({"lab.name": lab}):
        kind = KINDS[c.kind]
        host = adapters.runtime.client.containers.get(c.name).attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and sorted(host["CapAdd"]) == sorted(kind.capabilities), c.node
        assert host["SecurityOpt"] == ["no-new-privileges"] and not host["Privileged"], c.node
        assert host["Memory"] == kind.memory_mib * 2**20 and host["PidsLimit"] == kind.pids, c.node
        assert host["Dns"] == ["127.0.0.1"], c.node
        code, status = adapters.runtime.exec(c.name, ["grep", "-E", "^(CapBnd|NoNewPrivs)", "/proc/self/status"])
        assert code == 0 and "NoNewPrivs:\t1" in status, (c.node, status)


def test_a_flushed_host_ruleset_is_put_back_by_status_and_nothing_leaves(adapters, state_dir):
    plan = load_plan("active-standby", lab=f"it-{uuid.uuid4().hex[:6]}")
    capture = OutsideCapture(adapters, plan).start()
    client = adapters.runtime.client
    saved = None
    try:
        start_lab(adapters, plan=plan)
        saved = run_on_host(client, ["nft", "list", "ruleset"])
        # What `nft flush ruleset`, or a restart of Debian's nftables service, does to the host.
        run_on_host(client, ["nft", "flush", "ruleset"])
        assert not guard_is_whole(adapters, plan.lab)
        code, out, err = finish(lab_cli("status", "--lab", plan.lab, "--window", "0"))
        assert code == 0, err
        said = [line for line in err.splitlines() if "re-applied" in line]
        assert len(said) == 1 and f"guard of lab {plan.lab} was missing" in said[0], err
        assert guard_is_whole(adapters, plan.lab)
        # An incomplete guard (one rule deleted by hand) is no guard either.
        handle = next(line.split("# handle ")[1] for line in run_on_host(
            client, ["nft", "-a", "list", "chain", "inet", guard_table(plan.lab), "forward"]).splitlines()
            if '"out of the lab"' in line)
        run_on_host(client, ["nft", "delete", "rule", "inet", guard_table(plan.lab), "forward", "handle", handle])
        code, out, err = finish(lab_cli("status", "--lab", plan.lab, "--window", "0"))
        assert "was incomplete: re-applied" in err and guard_is_whole(adapters, plan.lab), err
        # Traffic keeps flowing on the lab's own segments; nothing was seen beyond them.
        assert_converged_and_guarded(adapters, plan.lab)
        assert capture.seen() == []
    finally:
        if saved is not None:
            # Docker's own rules (iptables-nft) came back with the host's saved ruleset.
            run_on_host(client, ["nft", "-f", "-"], stdin_text="flush ruleset\n" + saved)
        capture.stop()
        lifecycle.down(plan.lab, adapters)
    assert_gone(adapters, state_dir, plan.lab)


def test_two_ups_of_one_lab_at_once_one_is_refused_in_one_line_and_the_lab_converges(adapters, state_dir):
    lab = f"it-{uuid.uuid4().hex[:6]}"
    try:
        first = lab_cli("up", "--lab", lab, wait_s=3)
        second = lab_cli("up", "--lab", lab, wait_s=3)
        results = [finish(first), finish(second)]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 75], results
        refused = next(err for code, _, err in results if code == 75)
        assert len(error_lines(refused)) == 1 and f"lab {lab} is busy: `lab up` (pid" in refused, refused
        assert_converged_and_guarded(adapters, lab)
        assert_hardened(adapters, lab)
    finally:
        lifecycle.down(lab, adapters)
    assert_gone(adapters, state_dir, lab)


def held_by_up(proc: subprocess.Popen, lab: str) -> None:
    """Waits (bounded) until the `up` in `proc` holds the lab: the race starts from there."""
    deadline = time.monotonic() + 60
    while holder_of(lab) != f"`lab up` (pid {proc.pid})":
        assert proc.poll() is None and time.monotonic() < deadline, "`lab up` never held the lab"
        time.sleep(0.1)


def test_a_down_racing_an_up_waits_for_it_and_the_lab_ends_gone(adapters, state_dir):
    lab = f"it-{uuid.uuid4().hex[:6]}"
    try:
        up = lab_cli("up", "--lab", lab)
        held_by_up(up, lab)
        time.sleep(2.0)   # inside `up`: its guard, networks and nodes are being made
        down = lab_cli("down", "--lab", lab, wait_s=300)
        up_code, _, up_err = finish(up)
        down_code, down_out, down_err = finish(down)
        assert up_code == 0, up_err           # `down` did not cut in: `up` converged
        assert down_code == 0 and f"lab {lab}: removed" in down_out, down_err
        assert_gone(adapters, state_dir, lab)   # then `down` removed all of it
    finally:
        lifecycle.teardown(lab, adapters)


def test_a_down_that_can_not_wait_is_refused_and_leaves_the_lab_whole(adapters, state_dir):
    lab = f"it-{uuid.uuid4().hex[:6]}"
    try:
        up = lab_cli("up", "--lab", lab)
        held_by_up(up, lab)
        down_code, _, down_err = finish(lab_cli("down", "--lab", lab, wait_s=1))
        up_code, _, up_err = finish(up)
        assert down_code == 75 and len(error_lines(down_err)) == 1 and "busy" in down_err, down_err
        assert up_code == 0, up_err
        assert_converged_and_guarded(adapters, lab)
    finally:
        lifecycle.down(lab, adapters)
    assert_gone(adapters, state_dir, lab)
