"""Wherever Docker runs: a non-root member of the `docker` group, and a client
that reaches the engine only over TCP (our stand-in for Docker Desktop and
remote engines).

Both run the CLI as their own Linux user, from a copy of the repository the
first one set up with the README's `make` targets. Neither can see the
engine host's /proc of the containers, so everything they do goes through
the Docker API. The TCP client's failovers also run on a clock of their own
(a time namespace), as a laptop's does in front of Docker Desktop's VM.
Creating the accounts and the namespace needs root (CI runs as root).
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from lab.run import lifecycle

REPO = Path(__file__).resolve().parents[2]
MEMBER = "azlab-member"      # in the docker group, like a Linux laptop user
REMOTE = "azlab-remote"      # not in the docker group: reaches the engine over TCP only
ENGINE_SOCKET = "/var/run/docker.sock"
# The TCP client's monotonic clock runs a day ahead of the engine's.
CLIENT_CLOCK_AHEAD_S = 86400
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "results", "__pycache__", ".pytest_cache", "*.egg-info",
                                     ".hypothesis")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"),
                                reason="creating the test accounts needs root and useradd")


def _ensure_user(name: str, groups: list[str]) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        argv = ["useradd", "--create-home", "--shell", "/bin/bash"] + (["--groups", ",".join(groups)] if groups else [])
        subprocess.run(argv + [name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def as_user(user: pwd.struct_passwd, argv: list[str], env: dict[str, str] | None = None, timeout: float = 600,
            clock_ahead_s: int = 0) -> subprocess.CompletedProcess:
    """argv as that user (with their groups), in a clean login-like environment.

    With `clock_ahead_s`, in a time namespace whose CLOCK_MONOTONIC runs that far
    ahead of the engine's: a client with a clock of its own, as on a laptop in
    front of Docker Desktop's VM or a remote engine.
    """
    base = {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name, "LANG": "C.UTF-8",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "COLUMNS": "200"}
    base.update(env or {})
    clock = ["unshare", "--time", "--monotonic", str(clock_ahead_s), "--boottime", str(clock_ahead_s), "--fork"] \
        if clock_ahead_s else []
    wrapped = clock + ["runuser", "-u", user.pw_name, "--", "env", "-i", *[f"{k}={v}" for k, v in base.items()], *argv]
    return subprocess.run(wrapped, capture_output=True, text=True, timeout=timeout)


class TcpRelay:
    """The engine's API on 127.0.0.1:<port>, relayed byte for byte to its Unix socket.

    From the client's side this is an engine on TCP, as DOCKER_HOST=tcp://...
    gives; hijacked exec sessions pass through unchanged.
    """

    def __init__(self):
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(ENGINE_SOCKET)
            for source, sink in ((client, engine), (engine, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.server.close()


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    """The two users, and a copy of the repository the member owns (its venv made by `make venv`)."""
    created = [n for n in (MEMBER, REMOTE) if not _user_exists(n)]
    member = _ensure_user(MEMBER, ["docker"])
    remote = _ensure_user(REMOTE, [])
    root = Path(f"/tmp/azlab-engines-{uuid.uuid4().hex[:6]}")
    repo = root / "repo"
    shutil.copytree(REPO, repo, ignore=COPY_IGNORE)
    root.chmod(0o755)
    subprocess.run(["chown", "-R", f"{member.pw_uid}:{member.pw_gid}", str(repo)], check=True)
    try:
        done = as_user(member, ["make", "-C", str(repo), "venv"], timeout=900)
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
        yield member, remote, repo
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for name in created:
            subprocess.run(["userdel", "--remove", name], capture_output=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def lab_cli(user, repo: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600,
            clock_ahead_s: int = 0):
    return as_user(user, [str(repo / ".venv" / "bin" / "lab"), *args], env=env, timeout=timeout,
                   clock_ahead_s=clock_ahead_s)


def assert_no_streams_left(adapters, lab: str) -> None:
    """Every probe and event watch a failover started through the engine was stopped through it."""
    for c in adapters.runtime.containers({"lab.name": lab}):
        if c.status == "running":
            _, processes = adapters.runtime.exec(c.name, ["ps", "-eo", "args"])
            assert not [p for p in processes.splitlines() if "lab-probe" in p or "lab-agent watch" in p], (c.node, processes)


def operate(user, repo: Path, lab: str, adapters, env: dict[str, str] | None = None, clock_ahead_s: int = 0) -> None:
    """status, a kill and a link-down failover, break and repair, down: each must work for this user."""
    status = lab_cli(user, repo, "status", "--lab", lab, "--json", env=env)
    assert status.returncode == 0, status.stderr[-1500:]
    assert json.loads(status.stdout)["converged"] is True

    for fault in ("kill", "link-down"):
        out = Path(user.pw_dir) / f"results-{fault}"
        run = lab_cli(user, repo, "failover", "--lab", lab, "--fault", fault, "--runs", "1", "--out", str(out),
                      env=env, timeout=900, clock_ahead_s=clock_ahead_s)
        assert run.returncode in (0, 1, 3), f"{fault}: {run.stderr[-1500:]}"
        report = json.loads(as_user(user, ["cat", str(out / "report.json")]).stdout)
        # 3: could not measure (invalid runs repeated to the bound): a failure, with its reasons.
        assert run.returncode != 3, [r["invalid"] for r in report["runs"]] + report["unmeasured"]
        measured = next(r for r in report["runs"] if r["invalid"] is None)
        # Measured for real: the instance was hit, traffic stopped and came back, on one clock.
        assert measured["invalid"] is None, measured["invalid"]
        assert all(d["converged"] for d in measured["directions"]), fault
        assert all(d["lost"] > 0 for d in measured["directions"]), fault
        # A client clock of its own is measured, not assumed: the offset and how well it is known.
        assert ("offset known to" in report["clock"]) == bool(clock_ahead_s), report["clock"]
        # The fault is stamped by the client, the recovery by the probes in the nodes: with a
        # day between the two clocks, only a correct offset puts them within seconds of each other.
        assert all(0 < d["first_route_s"] < 30 for d in measured["directions"]), measured["directions"]
        # ... and the offset is the day, known to well within a probe interval.
        assert abs(measured["clock_offset_ns"] + clock_ahead_s * 10**9) < 10**9 // 10, measured["clock_offset_ns"]
        assert measured["clock_uncertainty_ns"] < 20 * 10**6 and measured["invalid"] is None
        assert_no_streams_left(adapters, lab)
        # The exit code says the verdict, and the verdict is the report's: kill's timing claim is
        # guarded by a median of 3 (test_failover.py), not by this one sample, which a CI run once
        # saw land 40 ms past the 2 s target (routes 1.2 s after BGP, against 0.2 s in 10 runs here).
        assert run.returncode == {"PASS": 0, "FAIL": 1}[report["verdict"]], (report["verdict"], run.stdout[-2500:])

    broken = lab_cli(user, repo, "break", "link-down", "--target", "azure-gw-0", "--lab", lab, env=env)
    assert broken.returncode == 0, broken.stderr[-1500:]
    repaired = lab_cli(user, repo, "repair", "--lab", lab, env=env)
    assert repaired.returncode == 0, repaired.stderr[-1500:]
    after = lab_cli(user, repo, "status", "--lab", lab, "--json", env=env)
    assert json.loads(after.stdout)["converged"] is True, after.stdout[-1500:]

    down = lab_cli(user, repo, "down", "--lab", lab, env=env)
    assert down.returncode == 0, down.stderr[-1500:]


# About 105 s: in make test-all with the TCP-only client; make test keeps the one-line refusal of a
# user without access.
@pytest.mark.sweep
def test_a_docker_group_member_runs_the_readme_commands_and_every_operation(accounts, adapters):
    member, _, repo = accounts
    lab = f"mem-{uuid.uuid4().hex[:6]}"
    try:
        up = as_user(member, ["make", "-C", str(repo), "lab-up", f"UP_ARGS=--profile fast --lab {lab}"], timeout=900)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert "converged" in up.stdout
        operate(member, repo, lab, adapters)
        assert adapters.runtime.lab_objects({"lab.name": lab}) == []
    finally:
        lifecycle.teardown(lab, adapters)


# About 2.5 min: in make test-all.
@pytest.mark.sweep
def test_a_client_with_only_tcp_to_the_engine_and_its_own_clock_runs_every_operation(accounts, adapters):
    _, remote, repo = accounts
    # No way in but the API: not the engine's socket, not the containers' /proc.
    refused = lab_cli(remote, repo, "status")
    assert refused.returncode == 2  # a usage or environment error, as every `lab` error
    assert "permission denied on the Docker engine" in refused.stderr and "docker group" in refused.stderr
    relay = TcpRelay()
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{relay.port}"}
    lab = f"tcp-{uuid.uuid4().hex[:6]}"
    try:
        up = lab_cli(remote, repo, "up", "--profile", "fast", "--lab", lab, env=env)
        assert up.returncode == 0, up.stderr[-2000:]
        gateway = adapters.runtime.containers({"lab.name": lab, "lab.node": "azure-gw-0"})[0]
        peek = as_user(remote, ["ls", f"/proc/{gateway.pid}/root/run"])
        assert peek.returncode != 0 and "Permission denied" in peek.stderr
        operate(remote, repo, lab, adapters, env=env, clock_ahead_s=CLIENT_CLOCK_AHEAD_S)
    finally:
        relay.close()
        lifecycle.teardown(lab, adapters)


def test_no_access_to_the_engine_is_one_line_within_a_second(accounts):
    _, remote, repo = accounts
    started = time.monotonic()
    done = lab_cli(remote, repo, "up", "--lab", f"deny-{uuid.uuid4().hex[:6]}")
    elapsed = time.monotonic() - started
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "sudo usermod -aG docker" in errors[0], done.stderr
    # The interpreter's start-up is most of it; nothing waits on the engine.
    assert elapsed < 5, elapsed
