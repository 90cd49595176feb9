"""Nothing a user types can harm the host or another lab (issue 16, findings 1, 2, 3 and 7).

Each test here was seen failing on the code before the fix: `lab down --lab ..`
deleted the state root's parent, a gateway named with a newline put a shell
command into keepalived's config, two commands could hold one lab at once.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from importlib import resources
from typer.testing import CliRunner

from lab.model import names
from lab.ui.cli import BUSY_EXIT, app
from lab.render.compose import render_psk_init
from lab.render.deploy_plan import plan_deploy
from lab.run.deploy import load_or_create_psks
from lab.model.errors import LabError, TopologyError
from lab.run.locks import LabBusy, hold_lab, try_hold_lab
from lab.run.lifecycle import ensure_guard
from lab.render.configs import GUARD_RULES, UnsafeValue, _shell_word, _template, render_guard
from lab.run.state import lab_dir, lab_files, make_lab_dir, remove_lab_files, write_private
from lab.plan.load import load_plan, load_scenario

runner = CliRunner()
LAB_COMMANDS = [["down"], ["status"], ["repair"], ["connection"], ["break", "kill"], ["up"],
                ["failover", "--fault", "kill"], ["exec", "onprem-host", "--", "true"], ["logs", "onprem-host"]]
BAD_LABS = ["..", ".", "/etc", "/", "a/../../b", "x;nft flush ruleset", "ok\n", "-x", "UPPER", "a" * 41, ""]


@pytest.fixture
def state_root(tmp_path, monkeypatch):
    """A state root with a file of the user's beside it: nothing may ever remove that file."""
    root = tmp_path / "state"
    root.mkdir()
    (tmp_path / "precious.txt").write_text("mine")
    monkeypatch.setenv("LAB_STATE_DIR", str(root))
    # No engine must be needed to refuse a name: point the SDK at nothing.
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    return root


def _one_line_error(result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.mark.parametrize("command", LAB_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("bad", BAD_LABS, ids=repr)
def test_every_command_refuses_a_bad_lab_name_in_one_line_before_touching_anything(state_root, command, bad):
    before = sorted(p.name for p in state_root.parent.iterdir())
    result = runner.invoke(app, [*command[:1], "--lab", bad, *command[1:]])
    assert result.exit_code == 2
    assert "--lab" in _one_line_error(result)
    assert sorted(p.name for p in state_root.parent.iterdir()) == before
    assert (state_root.parent / "precious.txt").read_text() == "mine"
    assert list(state_root.iterdir()) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=50), command=st.sampled_from(LAB_COMMANDS))
def test_random_lab_names_never_raise_a_traceback_or_leave_the_state_root(state_root, name, command):
    assume(names.LAB.problem(name) is not None and "\x00" not in name)
    result = runner.invoke(app, [*command[:1], "--lab", name, *command[1:]])
    assert result.exit_code == 2
    _one_line_error(result)
    assert (state_root.parent / "precious.txt").read_text() == "mine"
    assert list(state_root.iterdir()) == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(node=st.text(max_size=50), command=st.sampled_from([["exec", "--lab", "mine"], ["logs", "--lab", "mine"]]))
def test_random_node_names_never_raise_a_traceback(state_root, node, command):
    assume(names.NODE.problem(node) is not None and "\x00" not in node and not node.startswith("-"))
    result = runner.invoke(app, [command[0], node, *command[1:], *(["--", "true"] if command[0] == "exec" else [])])
    assert result.exit_code == 2
    assert "NODE" in _one_line_error(result)


@pytest.mark.parametrize("bad", BAD_LABS, ids=repr)
def test_a_bad_name_never_becomes_a_path(state_root, bad):
    with pytest.raises(LabError):
        lab_dir(bad)
    with pytest.raises(LabError):
        lab_files(bad)
    assert (state_root.parent / "precious.txt").exists()


def test_the_state_root_from_the_environment_is_checked(monkeypatch):
    for value in ["relative/path", "/", "/tmp/x\n", ""]:
        monkeypatch.setenv("LAB_STATE_DIR", value)
        with pytest.raises(LabError, match="LAB_STATE_DIR"):
            lab_dir("mine")


def test_down_removes_only_the_files_the_lab_made(state_root):
    folder = make_lab_dir("mine")
    write_private(folder / "psk.json", "{}")
    (folder / "notes.txt").write_text("the user's")
    (folder / "config.key").mkdir()     # a folder where the lab writes a file: not the lab's
    removed, kept = remove_lab_files(lab_files("mine"))
    assert "didn't make" in kept and "notes.txt" in kept and "config.key" in kept
    assert not (folder / "psk.json").exists() and (folder / "notes.txt").read_text() == "the user's"
    assert (folder / "config.key").is_dir()


def test_a_folder_without_the_labs_marker_keeps_its_files(state_root):
    """With LAB_STATE_DIR=$HOME, `lab down --lab projects` must not empty ~/projects."""
    folder = state_root / "projects"
    folder.mkdir()
    (folder / "psk.json").write_text("the user's own")
    (folder / "report.txt").write_text("the user's")
    removed, kept = remove_lab_files(lab_files("projects"))
    assert removed == [] and kept and (folder / "psk.json").read_text() == "the user's own"


def test_the_labs_own_folder_goes_whole(state_root):
    folder = make_lab_dir("mine")
    write_private(folder / "psk.json", "{}")
    removed, kept = remove_lab_files(lab_files("mine"))
    assert kept is None and not folder.exists() and str(folder) in removed


def test_a_state_root_others_may_write_is_refused(state_root):
    state_root.chmod(0o777)
    try:
        with pytest.raises(LabError, match="writable by you alone"):
            make_lab_dir("mine")
    finally:
        state_root.chmod(0o700)


def test_a_fifo_in_the_state_folder_does_not_hang_a_command(state_root):
    folder = make_lab_dir("mine")
    os.mkfifo(folder / "psk.json")
    with pytest.raises(LabError, match="not a regular file"):
        load_or_create_psks(folder, ["onprem-0"])


def test_a_symlinked_lab_folder_is_refused_and_nothing_behind_it_is_removed(state_root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "psk.json").write_text("someone else's")
    (state_root / "mine").symlink_to(elsewhere)
    with pytest.raises(LabError, match="symlink"):
        lab_files("mine")
    assert (elsewhere / "psk.json").read_text() == "someone else's"


def test_a_key_file_is_private_from_creation_and_never_written_through_a_symlink(tmp_path):
    old = os.umask(0)
    try:
        write_private(tmp_path / "psk.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "psk.json").stat().st_mode & 0o777 == 0o600
    target = tmp_path / "target"
    target.write_text("untouched")
    (tmp_path / "link.json").symlink_to(target)
    with pytest.raises(LabError, match="symlink"):
        write_private(tmp_path / "link.json", "{}")
    assert target.read_text() == "untouched"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"t": 5}', '{"bad name": "abcdefgh"}', "[" * 100000],
                         ids=["not-json", "not-an-object", "key-not-a-string", "bad-tunnel-name", "deep"])
def test_a_damaged_psk_file_is_one_line_naming_it(tmp_path, text):
    (tmp_path / "psk.json").write_text(text)
    with pytest.raises(LabError, match="psk.json") as caught:
        load_or_create_psks(tmp_path, ["onprem-0"])
    assert "\n" not in str(caught.value)


def _scenario_with(mutate) -> Path:
    doc = yaml.safe_load((resources.files("lab") / "scenarios" / "active-standby.yaml").read_text())
    mutate(doc)
    return doc


@pytest.mark.parametrize("where", ["gateways", "nodes", "networks", "first_hop"])
@pytest.mark.parametrize("name", ["azure-gw {\n! touch /tmp/PWNED #", "onprem-host\n", "a b", "x;y", "$(id)"], ids=repr)
def test_every_key_and_reference_in_a_scenario_is_checked_by_the_model(tmp_path, where, name):
    def mutate(doc):
        section = doc.setdefault(where, {})
        if section:
            key = next(iter(section))
            section[name] = section.pop(key)
        else:
            section[name] = {"network": "onprem-lan", "address": "10.10.1.250", "routers": ["a1", "a2"]}

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_scenario_with(mutate)))
    with pytest.raises(TopologyError) as caught:
        load_scenario(str(path))
    assert "\n" not in str(caught.value) and "not a valid" in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_a_value_in_a_shell_template_is_always_one_word(value):
    assume("\x00" not in value)
    try:
        word = _shell_word(value)
    except UnsafeValue:
        assert any(ord(c) < 32 or ord(c) == 127 for c in value)
        return
    echoed = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, text=True, check=True).stdout
    assert echoed == value


def test_a_name_that_slipped_past_the_model_is_still_never_rendered_raw():
    evil = "azure-gw {\n! touch /tmp/PWNED #"
    group = SimpleNamespace(name=evil, interface="internet", vrid=51, addresses=(), moves_tunnels=False)
    with pytest.raises(UnsafeValue):
        _template("keepalived.conf.j2", node="azure-gw-0", advert_int=1,
                  groups=[dict(group=group, source="198.51.100.10", peers=[], priority=200)])
    # A shell script takes every value as one word, whatever reached it.
    tunnel = SimpleNamespace(t=SimpleNamespace(name="t;touch /tmp/PWNED"), bgp_peer="$(reboot)")
    script = _template("updown.sh.j2", tunnels=[tunnel], gateway_side=True)
    assert "'t;touch /tmp/PWNED')" in script and "peer='$(reboot)'" in script


def test_a_profile_name_can_not_point_the_results_elsewhere(tmp_path):
    profile = (resources.files("lab") / "profiles" / "fast.yaml").read_text().replace("name: fast",
                                                                                     "name: /../../../../tmp/x")
    (tmp_path / "p.yaml").write_text(profile)
    with pytest.raises(TopologyError, match="not a valid"):
        load_plan("active-standby", str(tmp_path / "p.yaml"))


# --- the lock ----------------------------------------------------------------------------


HOLD = """
import sys, time
from lab.run.locks import hold_lab
with hold_lab("mine", "up"):
    print("held", flush=True)
    time.sleep(float(sys.argv[1]))
"""


def _holder(seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(seconds)], stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_command_waits_a_bounded_time_then_names_the_holder(state_root):
    proc = _holder(30)
    try:
        with pytest.raises(LabBusy, match=rf"`lab up` \(pid {proc.pid}\) holds it"):
            with hold_lab("mine", "down", wait_s=0.5):
                pass
        with try_hold_lab("mine", "status") as held:
            assert not held
    finally:
        proc.kill()
        proc.wait()
    with hold_lab("mine", "down", wait_s=5):   # free once the holder is gone, even killed
        pass


def test_a_waiting_command_gets_the_lab_when_the_holder_ends(state_root):
    proc = _holder(1)
    start = time.monotonic()
    with hold_lab("mine", "down", wait_s=20):
        assert time.monotonic() - start > 0.5   # it waited for the holder's second
    proc.wait()


def test_the_lock_is_taken_again_within_one_process_and_leaves_nothing(state_root):
    with hold_lab("mine", "failover"):
        with hold_lab("mine", "up"):     # a failover re-creating its lab
            pass
        proc = subprocess.run([sys.executable, "-c", "from lab.run.locks import hold_lab\n"
                               "with hold_lab('mine', 'down', wait_s=0.2): pass"],
                              capture_output=True, text=True, env=os.environ.copy())
        assert "`lab failover`" in proc.stderr
    assert list(state_root.iterdir()) == []


def test_a_busy_lab_exits_with_tempfail_in_one_line(state_root, monkeypatch):
    monkeypatch.setenv("LAB_LOCK_WAIT_S", "0.3")
    from lab.ui import cli

    monkeypatch.setattr(cli, "real_adapters", lambda: _NoLab())
    proc = _holder(30)
    try:
        result = runner.invoke(app, ["repair", "--lab", "mine"])
    finally:
        proc.kill()
        proc.wait()
    assert result.exit_code == BUSY_EXIT
    assert "busy" in _one_line_error(result)


def test_the_lock_wait_from_the_environment_is_checked(state_root, monkeypatch):
    monkeypatch.setenv("LAB_LOCK_WAIT_S", "forever")
    with pytest.raises(LabError, match="LAB_LOCK_WAIT_S"):
        with hold_lab("mine", "up"):
            pass


class _NoLab:
    """Just enough engine for `lab repair` to reach the lock: one running node of the default lab."""

    def __init__(self):
        plan = load_plan("active-standby", lab="mine")
        info = type("Info", (), {"labels": {"lab.name": "mine", "lab.scenario": "active-standby",
                                            "lab.profile": "azure"}})
        self.runtime = type("Runtime", (), {"ping": lambda self: None,
                                            "containers": lambda self, labels: [info]})()
        self.host = None
        self.plan = plan


# --- secrets -----------------------------------------------------------------------------


def test_the_config_hash_label_tells_nothing_about_a_key_without_the_labs_own_key():
    plan = load_plan("active-standby")
    psks = {"onprem-0": "k"}   # Azure allows a 1-character key
    one = plan_deploy(plan, psks, config_key=b"1" * 32).nodes[0].labels["lab.config-hash"]
    again = plan_deploy(plan, psks, config_key=b"1" * 32).nodes[0].labels["lab.config-hash"]
    other = plan_deploy(plan, psks, config_key=b"2" * 32).nodes[0].labels["lab.config-hash"]
    assert one == again != other


def test_compose_gives_each_vpn_node_only_its_own_tunnels_keys():
    plan = load_plan("dual-redundancy")
    script = render_psk_init(plan)
    for node in {n for t in plan.tunnels for n in (t.device, *t.instances)}:
        block = script.split(f"> /secrets/{node}/psk.conf")[0].rsplit("{\necho 'secrets {'", 1)[1]
        written = {line.split("ike-")[1].split(" ")[0] for line in block.splitlines() if "ike-" in line}
        assert written == {t.name for t in plan.tunnels_of(node)}


@pytest.mark.parametrize("value", ["nonsense", "8.8.0.0/16", "10.0.0.0/30", "10.0.0.1/8"])
def test_the_transport_pool_from_the_environment_is_checked(monkeypatch, value):
    from lab.plan.segments import transport_pool

    monkeypatch.setenv("LAB_TRANSPORT_POOL", value)
    with pytest.raises(LabError, match="LAB_TRANSPORT_POOL"):
        transport_pool()


def test_a_failover_that_re_creates_its_lab_keeps_holding_it(state_root):
    """down then up inside a failover's hold: the lab stays held throughout, on disk too."""
    probe = ("from lab.run.locks import hold_lab\n"
             "with hold_lab('mine', 'down', wait_s=0.2): pass")
    with hold_lab("mine", "failover"):
        folder = make_lab_dir("mine")
        write_private(folder / "psk.json", "{}")
        with hold_lab("mine", "down"):
            remove_lab_files(lab_files("mine"))       # what teardown does
        assert subprocess.run([sys.executable, "-c", probe], capture_output=True,
                              env=os.environ.copy()).returncode != 0
        with hold_lab("mine", "up"):
            make_lab_dir("mine")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ.copy())
        assert done.returncode != 0 and "`lab failover`" in done.stderr
    remove_lab_files(lab_files("mine"))


def test_a_lock_is_removed_only_by_its_own_holder(state_root):
    from lab.run.locks import _release, _try_lock, lock_path

    first = _try_lock("mine")
    lock_path("mine").unlink()            # as if an old holder had removed it
    second = _try_lock("mine")            # a new command locks a new file
    _release("mine", first)               # the old fd's release must not remove the new file
    assert lock_path("mine").exists()
    with pytest.raises(LabBusy):
        with hold_lab("mine", "down", wait_s=0.2):
            pass
    _release("mine", second)
    assert not lock_path("mine").exists()


# --- the guard, as every command that checks it sees it ----------------------------------


class FakeHost:
    """The engine host's nftables as the guard's port sees it: tables and their commented rules."""

    def __init__(self, rules: set[str] | None):
        self.rules = rules          # None: no table at all
        self.applied: list[str] = []

    def counters(self, table):
        if self.rules is None:
            raise LabError(f"engine host: nft failed: no such table {table}")
        return {name: 0 for name in self.rules}

    def apply_guard(self, table, script):
        self.applied.append(script)
        self.rules = set(GUARD_RULES)


@pytest.mark.parametrize("rules, said", [(None, "missing"), ({"into the lab", "to the host"}, "incomplete"),
                                         (set(GUARD_RULES), None)], ids=["gone", "incomplete", "whole"])
def test_the_guard_is_put_back_when_it_is_gone_or_incomplete(rules, said):
    host = FakeHost(rules)
    line = ensure_guard("mine", SimpleNamespace(host=host))
    if said is None:
        assert line is None and host.applied == []
    else:
        assert f"guard of lab mine was {said}: re-applied" in line
        assert host.applied == [render_guard("mine")] and set(GUARD_RULES) <= host.rules


def test_break_and_repair_check_the_guard_while_they_hold_the_lab(state_root, monkeypatch):
    from lab.failover import breakfix

    host = FakeHost(None)
    adapters = SimpleNamespace(host=host, runtime=SimpleNamespace(lab_objects=lambda labels: ["lab-mine-x"]))
    monkeypatch.setattr(breakfix, "_break", lambda *args: "done")
    monkeypatch.setattr(breakfix, "_repair", lambda *args: ["repaired"])
    plan = load_plan("active-standby", lab="mine")
    assert "re-applied" in breakfix.break_lab(plan, adapters, "kill", "azure-gw-0", lab_dir("mine"))
    host.rules = None
    assert "re-applied" in breakfix.repair_lab(plan, adapters, lab_dir("mine"))[0]


# --- a failed first `up` removes only what it made -----------------------------------------


class SharedEngine:
    """Containers with labels, as another user's lab of the same name leaves them on one engine."""

    def __init__(self, objects):
        self.objects = objects      # name -> labels

    def _match(self, labels):
        return [n for n, have in self.objects.items() if all(have.get(k) == v for k, v in labels.items())]

    def remove_lab(self, labels):
        gone = self._match(labels)
        for name in gone:
            del self.objects[name]
        return gone

    def lab_objects(self, labels):
        return self._match(labels)


def test_a_failed_first_up_removes_only_its_own_objects_and_files(state_root, monkeypatch):
    from lab.run import lifecycle

    monkeypatch.setattr(lifecycle, "GONE_FOR_S", 0.0)
    engine = SharedEngine({"lab-mine-a": {"lab.name": "mine", "lab.up-run": "theirs"},
                           "lab-mine-b": {"lab.name": "mine", "lab.up-run": "ours"}})
    host = FakeHost(set(GUARD_RULES))
    host.remove_guard = lambda table: host.applied.append("removed")
    folder = make_lab_dir("mine")
    write_private(folder / "psk.json", '{"onprem-0": "set-by-hand"}')
    removed, left = lifecycle.teardown("mine", SimpleNamespace(runtime=engine, host=host), run="ours",
                                       keep_files=frozenset({"psk.json"}))
    assert removed[0] == "lab-mine-b" and left == []
    assert list(engine.objects) == ["lab-mine-a"]          # the other user's lab is whole
    assert "removed" not in host.applied                   # and keeps its guard
    assert (folder / "psk.json").exists()


def test_every_capability_a_kind_gets_has_its_reason_and_every_node_its_limits():
    from lab.model.kinds import CAPABILITY_REASONS, KINDS

    plan = load_plan("dual-redundancy")
    for spec in plan_deploy(plan, {t.name: "k" * 32 for t in plan.tunnels}, config_key=b"1" * 32).nodes:
        kind = KINDS[spec.labels["lab.kind"]]
        assert set(spec.capabilities) <= set(CAPABILITY_REASONS), spec.hostname
        assert "SYS_ADMIN" not in spec.capabilities or "bgpd" in kind.daemons, spec.hostname
        assert spec.memory_bytes > 0 and spec.pids > 0 and spec.dns == ("127.0.0.1",), spec.hostname
    assert KINDS["workload-host"].capabilities == ("NET_ADMIN", "NET_RAW")
