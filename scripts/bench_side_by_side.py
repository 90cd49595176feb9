#!/usr/bin/env python3
"""Benchmark: what labs side by side cost when idle, and whether the last one still fails over.

For 1, 2 and 4 labs of the default scenario (`--profile fast`, named sbs-1 .. sbs-4), brought up
one after the other with the installed `lab` command, it prints:

- each `lab up`'s time;
- the idle CPU of all labs, as % of one core, over --idle-s seconds after convergence: the
  containers' cgroup counters, plus the engine's own processes (dockerd, containerd and each
  container's containerd-shim with the runc processes it reaps), with exec'd processes counted
  once (they sit in a container's cgroup and in its shim's reaped-children times);
- with --detail, where that CPU goes: per process name in the nodes, per engine process;
- the memory of the nodes (as `docker stats` counts it) and of their shims;
- whether `lab failover --lab sbs-N --profile fast --fault kill --runs 1` on the last lab passes.

Every lab is taken down at the end, on an error or Ctrl-C too. It reads the engine's cgroups and
processes through /proc and /sys: the engine must run on this machine. Goal (issue 18): four labs
under 20 % of one core in all, and a fast kill on any of them passes.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

LAB = str(Path(sys.executable).with_name("lab"))
GOAL_PERCENT = {1: 5.0, 4: 20.0}
UP_WITHIN_S = 300
FAILOVER_WITHIN_S = 600
DOWN_WITHIN_S = 120
CLK_TCK = os.sysconf("SC_CLK_TCK")
ENGINE_NAMES = ("dockerd", "containerd", "docker-proxy")
SHIM_PREFIX = "containerd-shim"   # comm is cut at 15 characters: containerd-shim-runc-v2 reads so


# --- reading the kernel's counters --------------------------------------------------------------

def proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(name, start time, own CPU ticks, reaped children's CPU ticks) of a process, None once gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, rest = data[data.index("(") + 1:data.rindex(")")], data[data.rindex(")") + 2:].split()
    utime, stime, cutime, cstime, start = (int(rest[i]) for i in (11, 12, 13, 14, 19))
    return name, start, utime + stime, cutime + cstime


def mount_points() -> dict[str, Path]:
    """cgroup v1 controller (or 'unified' for v2) -> where it is mounted."""
    found = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype, _, options = right.split()[:3]
        where = Path(left.split()[4])
        if fstype == "cgroup2":
            found.setdefault("unified", where)
        elif fstype == "cgroup":
            for option in options.split(","):
                if option in ("cpuacct", "memory"):
                    found[option] = where
    return found


@dataclass(frozen=True)
class Node:
    lab: str
    name: str
    cid: str
    cpu_dir: Path        # the cgroup that counts its CPU (v1 cpuacct, or v2)
    memory_dir: Path
    v2: bool


def node_cgroups(lab: str, name: str, cid: str, pid: int, mounts: dict[str, Path]) -> Node:
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else ["unified"]:
            paths[c] = path.lstrip("/")
    if "cpuacct" in mounts and "cpuacct" in paths:
        return Node(lab, name, cid, mounts["cpuacct"] / paths["cpuacct"], mounts["memory"] / paths["memory"], False)
    if "unified" in mounts and "unified" in paths:
        where = mounts["unified"] / paths["unified"]
        return Node(lab, name, cid, where, where, True)
    raise SystemExit(f"error: no CPU cgroup found for {name}: is the Docker engine on this machine?")


def cgroup_cpu_ns(node: Node) -> int:
    if node.v2:
        usage = dict(line.split() for line in (node.cpu_dir / "cpu.stat").read_text().splitlines())
        return int(usage["usage_usec"]) * 1000
    return int((node.cpu_dir / "cpuacct.usage").read_text())


def cgroup_memory_bytes(node: Node) -> int:
    """As `docker stats` counts it: usage less the inactive page cache."""
    stat = dict(line.split() for line in (node.memory_dir / "memory.stat").read_text().splitlines())
    if node.v2:
        return int((node.memory_dir / "memory.current").read_text()) - int(stat.get("inactive_file", 0))
    return int((node.memory_dir / "memory.usage_in_bytes").read_text()) - int(stat.get("total_inactive_file", 0))


def cgroup_pids(node: Node) -> list[int]:
    return [int(p) for p in (node.cpu_dir / "cgroup.procs").read_text().split()]


def engine_processes(ids: set[str]) -> dict[int, str | None]:
    """pid -> the container id a shim serves (None for dockerd, containerd, docker-proxy)."""
    found: dict[int, str | None] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if name.startswith(SHIM_PREFIX):
            served = [a.decode() for a in argv if a.decode() in ids]
            found[int(entry.name)] = served[0] if served else "other"
        elif name in ENGINE_NAMES:
            found[int(entry.name)] = None
    return found


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) ticks of the whole machine, every process included."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


@dataclass
class Sample:
    at_ns: int
    cgroup_ns: dict[str, int]                                        # container id -> CPU ns
    procs: dict[tuple[int, int], tuple[str, str, int]]               # (pid, start) -> (cid, name, ticks)
    engine: dict[tuple[int, int], tuple[str, str | None, int, int]]  # (pid, start) -> (name, cid, own, children)
    machine: tuple[int, int]


def take_sample(nodes: list[Node], engine: dict[int, str | None]) -> Sample:
    procs = {}
    for node in nodes:
        for pid in cgroup_pids(node):
            stat = proc_stat(pid)
            if stat:
                procs[(pid, stat[1])] = (node.cid, stat[0], stat[2] + stat[3])
    engine_now = {}
    for pid, cid in engine.items():
        stat = proc_stat(pid)
        if stat:
            engine_now[(pid, stat[1])] = (stat[0], cid, stat[2], stat[3])
    return Sample(time.monotonic_ns(), {n.cid: cgroup_cpu_ns(n) for n in nodes}, procs, engine_now,
                  machine_busy_ticks())


@dataclass
class Idle:
    seconds: float
    per_lab: dict[str, float]                 # lab -> % of one core: its nodes and its shims
    engine: float                             # dockerd, containerd, docker-proxy: shared by all labs
    detail: dict[str, float] = field(default_factory=dict)
    machine: float = 0.0                      # the whole machine, whatever runs on it

    @property
    def total(self) -> float:
        return sum(self.per_lab.values()) + self.engine


def idle_cpu(nodes: list[Node], seconds: float) -> Idle:
    """CPU over `seconds` in which this script asks the engine nothing."""
    ids = {n.cid for n in nodes}
    engine = engine_processes(ids)
    first = take_sample(nodes, engine)
    time.sleep(seconds)
    last = take_sample(nodes, engine)
    wall = (last.at_ns - first.at_ns) / 1e9
    tick_ns = 1e9 / CLK_TCK

    def percent(ns: float) -> float:
        return 100.0 * ns / 1e9 / wall

    detail: dict[str, float] = defaultdict(float)
    per_lab: dict[str, float] = defaultdict(float)
    lab_of = {n.cid: n.lab for n in nodes}
    short_lived: dict[str, float] = {}
    for node in nodes:
        used = last.cgroup_ns[node.cid] - first.cgroup_ns[node.cid]
        lasting = 0.0
        for key, (cid, name, ticks) in last.procs.items():
            if cid == node.cid and key in first.procs:
                spent = (ticks - first.procs[key][2]) * tick_ns
                lasting += spent
                detail[f"node: {name}"] += percent(spent)
        # What ran and ended inside the window: execs (health checks, `lab`'s reads), scripts.
        short_lived[node.cid] = max(0.0, used - lasting)
        detail["node: short-lived processes (execs)"] += percent(short_lived[node.cid])
        per_lab[node.lab] += percent(used)
    engine_pct = 0.0
    for key, (name, cid, own, children) in last.engine.items():
        if key not in first.engine:
            continue
        own_ns = (own - first.engine[key][2]) * tick_ns
        # A shim reaps runc and the exec'd processes; the latter are in the node's cgroup already.
        reaped_ns = (children - first.engine[key][3]) * tick_ns
        if cid is None:
            engine_pct += percent(own_ns + reaped_ns)
            detail[f"engine: {name}"] += percent(own_ns + reaped_ns)
            continue
        reaped_ns = max(0.0, reaped_ns - short_lived.get(cid, 0.0))
        detail["engine: containerd-shim"] += percent(own_ns)
        detail["engine: runc (reaped by the shims)"] += percent(reaped_ns)
        if cid in lab_of:
            per_lab[lab_of[cid]] += percent(own_ns + reaped_ns)
        else:
            engine_pct += percent(own_ns + reaped_ns)
    busy = (last.machine[0] - first.machine[0]) / max(1, last.machine[1] - first.machine[1])
    return Idle(wall, dict(per_lab), engine_pct, dict(detail), machine=100.0 * busy * (os.cpu_count() or 1))


# --- driving labs -------------------------------------------------------------------------------

class Labs:
    """The labs this run starts, through the installed `lab`; `close` takes every one down."""

    def __init__(self, prefix: str, scenario: str, profile: str, logs: Path):
        self.prefix, self.scenario, self.profile, self.logs = prefix, scenario, profile, logs
        self.started: list[str] = []

    def name(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def run(self, args: list[str], log: str, within_s: float) -> tuple[int, float]:
        """(exit code, seconds) of one `lab` command, its output in the log folder.

        On Ctrl-C the child (same process group) got the signal too: it is left to clean up
        after itself (bounded) before this script takes its labs down.
        """
        started = time.monotonic()
        with open(self.logs / log, "w") as out:
            child = subprocess.Popen([LAB, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                code = child.wait(timeout=within_s)
            except subprocess.TimeoutExpired:
                child.terminate()
                child.wait(timeout=60)
                raise RuntimeError(f"lab {' '.join(args)} did not end within {within_s} s (log: {self.logs / log})")
            except KeyboardInterrupt as stop:
                if isinstance(stop, Terminated):
                    child.send_signal(signal.SIGINT)   # a Ctrl-C reached it already; SIGTERM only us
                try:
                    child.wait(timeout=DOWN_WITHIN_S)
                except subprocess.TimeoutExpired:
                    child.kill()
                raise
        return code, time.monotonic() - started

    def up(self, index: int) -> float:
        lab = self.name(index)
        self.started.append(lab)
        code, seconds = self.run(["up", self.scenario, "--profile", self.profile, "--lab", lab], f"up-{lab}.log",
                                 UP_WITHIN_S)
        if code != 0:
            tail = (self.logs / f"up-{lab}.log").read_text()[-1500:]
            raise RuntimeError(f"lab up --lab {lab} failed ({code}):\n{tail}")
        return seconds

    def failover(self, index: int) -> tuple[str, str]:
        lab = self.name(index)
        out = self.logs / f"failover-{lab}"
        code, _ = self.run(["failover", "--scenario", self.scenario, "--lab", lab, "--profile", self.profile,
                            "--fault", "kill", "--runs", "1", "--out", str(out)], f"failover-{lab}.log",
                           FAILOVER_WITHIN_S)
        if not (out / "summary.md").exists():
            return f"ERROR (exit {code}, no report)", f"(see {self.logs / f'failover-{lab}.log'})"
        verdict = {0: "PASS", 1: "FAIL", 3: "INVALID"}.get(code, f"ERROR (exit {code})")
        summary = (out / "summary.md").read_text().splitlines()
        # "- converged, onprem-host → azure-vm: median 0.98 s (min ...)": each direction's time.
        converged = [line.removeprefix("- converged, ").split(" (")[0].replace(": median", "")
                     for line in summary if line.startswith("- converged, ")]
        return verdict, f"({', '.join(converged)}; {out})"

    def close(self) -> list[str]:
        """Takes every lab this run started down; returns those that are left."""
        # A second Ctrl-C, or a SIGTERM, must not leave labs behind.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        left = []
        try:
            for lab in reversed(self.started):
                try:
                    code, _ = self.run(["down", "--lab", lab], f"down-{lab}.log", DOWN_WITHIN_S)
                except RuntimeError:
                    code = -1
                if code != 0:
                    left.append(lab)
                print(f"lab down --lab {lab}: {'done' if code == 0 else f'FAILED ({code}), see {self.logs}'}",
                      flush=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return left


def nodes_of(client, labs: list[str], mounts: dict[str, Path]) -> list[Node]:
    nodes = []
    for lab in labs:
        for c in client.containers.list(filters={"label": f"lab.name={lab}"}):
            nodes.append(node_cgroups(lab, c.name, c.id, int(c.attrs["State"]["Pid"]), mounts))
    return nodes


def memory_mib(nodes: list[Node]) -> tuple[float, float]:
    """(nodes, their shims) in MiB."""
    shims = engine_processes({n.cid for n in nodes})
    shim_bytes = sum(rss_bytes(pid) for pid, cid in shims.items() if cid in {n.cid for n in nodes})
    return sum(cgroup_memory_bytes(n) for n in nodes) / 2**20, shim_bytes / 2**20


class Terminated(KeyboardInterrupt):
    """SIGTERM: the run ends as on Ctrl-C, and the labs are taken down."""


def _interrupt(signum, frame) -> None:
    raise Terminated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1,2,4", help="how many labs side by side, in rising order")
    parser.add_argument("--idle-s", type=float, default=30.0, help="seconds of idle measured at each count")
    parser.add_argument("--settle-s", type=float, default=5.0, help="seconds left after the last `lab up`")
    parser.add_argument("--scenario", default="active-standby")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--prefix", default="sbs", help="labs are named PREFIX-1, PREFIX-2, ...")
    parser.add_argument("--no-failover", action="store_true", help="skip the kill failover on the last lab")
    parser.add_argument("--detail", action="store_true", help="where the idle CPU goes, per process")
    args = parser.parse_args()
    try:
        counts = sorted({int(c) for c in args.counts.split(",")})
    except ValueError:
        parser.error(f"--counts {args.counts!r}: numbers separated by commas, e.g. 1,2,4")
    if not counts or counts[0] < 1 or counts[-1] > 8:
        parser.error("--counts: from 1 to 8 labs")

    from lab.adapters.docker_runtime import engine_client
    from lab.failover.runner import machine_summary
    from lab.adapters.wiring import real_adapters

    client = engine_client()
    for index in range(1, counts[-1] + 1):
        if client.containers.list(all=True, filters={"label": f"lab.name={args.prefix}-{index}"}):
            raise SystemExit(f"error: lab {args.prefix}-{index} exists already: `lab down --lab "
                             f"{args.prefix}-{index}` first, or choose another --prefix")
    mounts = mount_points()
    logs = Path(tempfile.mkdtemp(prefix="lab-sbs-"))
    own_state = "LAB_STATE_DIR" not in os.environ
    os.environ.setdefault("LAB_STATE_DIR", str(logs / "state"))
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"machine: {machine_summary(real_adapters().runtime.engine_summary())}", flush=True)
    print(f"labs: {args.scenario} --profile {args.profile}; idle measured over {args.idle_s:.0f} s, "
          f"{args.settle_s:.0f} s after the last lab converged; logs in {logs}", flush=True)
    labs = Labs(args.prefix, args.scenario, args.profile, logs)
    rows, failed = [], False
    try:
        up_times: list[float] = []
        for count in counts:
            for index in range(len(up_times) + 1, count + 1):
                up_times.append(labs.up(index))
                print(f"lab up --lab {labs.name(index)}: {up_times[-1]:.1f} s", flush=True)
            time.sleep(args.settle_s)
            names = [labs.name(i) for i in range(1, count + 1)]
            nodes = nodes_of(client, names, mounts)
            idle = idle_cpu(nodes, args.idle_s)
            nodes_mib, shims_mib = memory_mib(nodes)
            per_lab = ", ".join(f"{lab} {idle.per_lab.get(lab, 0.0):.1f}" for lab in names)
            print(f"{count} lab(s) idle: {idle.total:.1f} % of one core in all ({per_lab}; engine "
                  f"{idle.engine:.1f}); the whole machine meanwhile {idle.machine:.0f} %", flush=True)
            print(f"{count} lab(s) memory: nodes {nodes_mib:.0f} MiB, their shims {shims_mib:.0f} MiB", flush=True)
            if args.detail:
                for what, pct in sorted(idle.detail.items(), key=lambda kv: -kv[1]):
                    if pct >= 0.05:
                        print(f"    {what:<45} {pct:5.1f} %", flush=True)
            verdict, outage = ("skipped", "") if args.no_failover else labs.failover(count)
            print(f"{count} lab(s): fast kill failover on {labs.name(count)}: {verdict} {outage}".rstrip(), flush=True)
            goal = GOAL_PERCENT.get(count)
            met = goal is None or idle.total < goal
            failed |= not met or verdict not in ("PASS", "skipped")
            rows.append((count, idle.total, nodes_mib + shims_mib, verdict, goal, met))
    except KeyboardInterrupt:
        print("interrupted: taking the labs down", flush=True)
        failed = True
    except RuntimeError as exc:
        print(f"error: {exc}", flush=True)
        failed = True
    finally:
        left = labs.close()
        if left:
            # Their keys and records stay: `lab down` needs the state folder they were made with.
            print(f"left running: {', '.join(left)}; take them down with LAB_STATE_DIR={os.environ['LAB_STATE_DIR']} "
                  f"{LAB} down --lab NAME", flush=True)
            failed = True
        elif own_state:
            shutil.rmtree(logs / "state", ignore_errors=True)
    if rows:
        print("\n| labs | idle CPU, % of one core | memory, MiB | `lab up`, s | fast kill on the last | goal |")
        print("| ---: | ---: | ---: | --- | --- | --- |")
        for count, total, mib, verdict, goal, met in rows:
            ups = ", ".join(f"{t:.1f}" for t in up_times[:count])
            judged = "-" if goal is None else f"< {goal:.0f} %: {'met' if met else 'MISSED'}"
            print(f"| {count} | {total:.1f} | {mib:.0f} | {ups} | {verdict} | {judged} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
