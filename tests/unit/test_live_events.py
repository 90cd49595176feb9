"""FRR's and keepalived's events while a run goes on: the agent's tail, the observation that
parses what it reads as it arrives, and the report that keeps each event once (live or recorded)."""
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab.model.daemon_events import (
    ClockOffset,
    Event,
    frr_log_events,
    keepalived_log_event,
    not_yet_seen,
)
from lab.plan.load import load_plan
from lab.run import observe
from lab.run.clock import LabClock
from lab.run.observe import FRR_LOG, KEEPALIVED_LOG, Observation
from lab.run.ports import ContainerInfo

AGENT = Path(__file__).resolve().parents[2] / "images" / "node" / "agent.py"
# Wall clock 2026-11-26T10:15:59Z is monotonic 1000 s in these tests.
WALL_AT_1000 = 1795688159 * 10**9
CLOCK = ClockOffset(WALL_AT_1000 - 1000 * 10**9)
BGP_DOWN = ("2026/11/26 10:15:59.597 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 10.1.255.30(azure-gw-0) in vrf "
            "default Down BGP Notification send")
BFD_DOWN = ("2026/11/26 10:15:59.597 BFD: [SEY1D-NT8EQ] state-change: [mhop:yes peer:10.1.255.30 "
            "local:10.10.255.1 vrf:default] up -> down reason:control-expired")
BGP_UP = "2026/11/26 10:16:00.920 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 10.1.255.30(azure-gw-1) in vrf default Up"
MS = 1_000_000


# --- the agent's tail, run for real on this machine ----------------------------------------

def agent_tail(*args):
    return subprocess.Popen([sys.executable, str(AGENT), "tail", *args], stdout=subprocess.PIPE, text=True)


def next_document(process, within_s=5.0):
    found = queue.Queue()
    threading.Thread(target=lambda: found.put(process.stdout.readline()), daemon=True).start()
    return json.loads(found.get(timeout=within_s))


def test_the_agent_tails_new_lines_only_stamped_when_read_and_stops_at_its_bound(tmp_path):
    log, later = tmp_path / "frr.log", tmp_path / "keepalived.log"
    log.write_text("written before the tail\n")
    process = agent_tail("--within", "2", str(log), str(later))
    try:
        assert "ready" in next_document(process)
        with log.open("a") as f:
            written = time.monotonic_ns()
            f.write(BGP_DOWN + "\n")
            f.flush()
            f.write("half a li")
            f.flush()
        first = next_document(process)
        assert (first["path"], first["line"]) == (str(log), BGP_DOWN)
        # Read within a tick of the write (inotify wakes it), on this machine's monotonic clock.
        assert written <= first["t"] <= written + 300 * MS
        with log.open("a") as f:
            f.write("ne\n")
        assert next_document(process)["line"] == "half a line"
        later.write_text("(azure-gw) Entering MASTER STATE\n")    # a file that appears once the tail runs
        assert next_document(process)["line"] == "(azure-gw) Entering MASTER STATE"
        assert process.wait(timeout=5) == 0       # the --within bound
    finally:
        process.kill()


def test_the_agent_tail_ends_at_sigterm(tmp_path):
    process = agent_tail("--within", "60", str(tmp_path / "none.log"))
    try:
        assert "ready" in next_document(process)
        started = time.monotonic()
        process.terminate()
        assert process.wait(timeout=5) == 0 and time.monotonic() - started < 2
    finally:
        process.kill()


def test_the_agent_tail_needs_a_file():
    done = subprocess.run([sys.executable, str(AGENT), "tail", "--within", "1"], capture_output=True, text=True)
    assert done.returncode == 1 and "name at least one file" in done.stderr


# --- parsing and merging (pure) -------------------------------------------------------------

def test_keepalived_state_changes_are_vrrp_events_stamped_when_read():
    assert keepalived_log_event("Tue Dec  1 20:30:05 2026: (azure-gw) Entering MASTER STATE", "azure-gw-1", 7) == \
        Event(7, "vrrp", "azure-gw-1", "vrrp-master", "keepalived, group azure-gw")
    assert keepalived_log_event("(onprem-lan) Entering BACKUP STATE (init)", "onprem-0", 7).kind == "vrrp-backup"
    assert keepalived_log_event("VRRP_Instance(VI_1) Entering FAULT STATE", "onprem-0", 7).kind == "vrrp-fault"
    for other in ["(azure-gw) Entering INIT STATE", "(azure-gw) sent 0 priority", "Stopping", ""]:
        assert keepalived_log_event(other, "onprem-0", 7) is None


def test_an_event_read_live_and_again_in_the_record_is_kept_once():
    live_frr = frr_log_events(BGP_DOWN, "onprem-0", CLOCK)       # the same line, the same stamp
    recorded = frr_log_events("\n".join([BFD_DOWN, BGP_DOWN, BGP_UP]), "onprem-0", CLOCK)
    assert [e.kind for e in not_yet_seen(recorded, live_frr)] == ["bfd-down", "bgp-up"]
    # FRR's twin must have FRR's stamp: one a millisecond off is another event.
    moved = [Event(live_frr[0].t_ns + MS, *list(vars(live_frr[0]).values())[1:])]
    assert len(not_yet_seen(recorded, moved)) == 3
    # A VRRP transition: keepalived's line read live, its notify hook's line stamped by Docker a few
    # ms later, are one event, whatever their details; seconds apart, two.
    docker = [Event(1000 * 10**9 + 5 * MS, "vrrp", "azure-gw-1", "vrrp-master", "keepalived notify"),
              Event(1005 * 10**9, "vrrp", "azure-gw-1", "vrrp-master", "keepalived notify")]
    agent = [keepalived_log_event("(azure-gw) Entering MASTER STATE", "azure-gw-1", 1000 * 10**9)]
    assert not_yet_seen(docker, agent) == docker[1:]
    # Each live event stands for one recorded event; another node's or kind's is not a twin.
    assert not_yet_seen(docker[:1] * 2, agent) == docker[:1]
    assert not_yet_seen(docker[:1], [keepalived_log_event("(azure-gw) Entering MASTER STATE", "azure-gw-0",
                                                          1000 * 10**9)]) == docker[:1]
    assert not_yet_seen(docker[:1], [keepalived_log_event("(azure-gw) Entering BACKUP STATE", "azure-gw-1",
                                                          1000 * 10**9)]) == docker[:1]
    # Sources read only once are never merged, however alike.
    kills = [Event(5, "docker", "azure-gw-0", "container-kill"), Event(5, "docker", "azure-gw-0", "container-kill")]
    assert not_yet_seen(kills, kills) == kills


# --- the observation, against a fake engine -------------------------------------------------

class FeedStream:
    """An exec's output lines, fed by the test; stop() ends it, as SIGTERM ends the agent."""

    def __init__(self, container, argv):
        self.container, self.argv = container, argv
        self.queue = queue.Queue()
        self.stopped = False

    def feed(self, *documents):
        for d in documents:
            self.queue.put(json.dumps(d))

    def end(self):
        self.queue.put(None)

    def lines(self):
        while (line := self.queue.get(timeout=10)) is not None:
            yield line

    def stop(self):
        self.stopped = True
        self.end()


class FakeEngine:
    """The engine as the observation sees it: containers that run or not, exec streams, records."""

    def __init__(self, plan):
        self.plan = plan
        self.running = {n: True for n in plan.nodes}
        self.streams: list[FeedStream] = []
        self.logs_text: dict[str, str] = {}
        self.frr_text: dict[str, str] = {}
        self.opened = threading.Condition()

    def containers(self, labels):
        node = labels["lab.node"]
        return [ContainerInfo(self.plan.nodes[node].container, node, self.plan.nodes[node].kind, "running",
                              None, 1 if self.running[node] else 0, "h")]

    def stream_exec(self, name, argv):
        stream = FeedStream(name, argv)
        with self.opened:
            self.streams.append(stream)
            self.opened.notify_all()
        return stream

    def tails_of(self, node, count, within_s=5.0):
        container = self.plan.nodes[node].container
        with self.opened:
            assert self.opened.wait_for(lambda: len(self._tails(container)) >= count, within_s)
            return self._tails(container)

    def _tails(self, container):
        return [s for s in self.streams if s.container == container and s.argv[:2] == ["lab-agent", "tail"]]

    def events(self, labels, since, until):
        return []

    def logs(self, name, **kwargs):
        return self.logs_text.get(name, "")

    def read_file(self, name, path):
        return self.frr_text.get(name, "")


def observation(plan, engine, tails=True):
    from types import SimpleNamespace

    from lab.adapters.node_agent import AgentLogs, NodeAgent
    # Wall clock at monotonic 1000 s as above; `lab` and the engine share one monotonic clock.
    clock = LabClock(0, 0, CLOCK, 1000)
    # The real agent client, on the fake engine.
    logs_for = (lambda c: AgentLogs(NodeAgent(c.node, c.name, engine))) if tails else None
    obs = Observation(plan, SimpleNamespace(runtime=engine, logs_for=logs_for), clock, 0.02, 5000, bound_s=60)
    obs.started_ns = 999 * 10**9
    return obs


def test_which_logs_are_tailed_follows_the_daemons_a_node_runs():
    plan = load_plan("dual-redundancy", "fast", lab="t")
    obs = observation(plan, FakeEngine(plan))
    assert obs.tailed_files("onprem-0") == [FRR_LOG, KEEPALIVED_LOG]    # BGP, and the LAN's VRRP
    assert obs.tailed_files("vnet-router") == [FRR_LOG]
    assert obs.tailed_files("onprem-host") == []
    standby = load_plan("active-standby", "fast", lab="t")
    assert observation(standby, FakeEngine(standby)).tailed_files("azure-gw-0") == [FRR_LOG, KEEPALIVED_LOG]
    # Adapters that can't tail: the record alone, as before.
    assert observation(plan, FakeEngine(plan), tails=False).tailed_files("onprem-0") == []


def test_tailed_lines_become_live_events_and_the_record_adds_only_what_they_missed():
    plan = load_plan("active-standby", "fast", lab="t")
    engine = FakeEngine(plan)
    obs = observation(plan, engine)
    read_ns = 1000 * 10**9 + 858 * MS
    assert [e.kind for e in obs.take_line("onprem-0", FRR_LOG, BGP_DOWN, read_ns)] == ["bgp-down"]
    assert obs.take_line("onprem-0", FRR_LOG, "2026/11/26 10:15:59.600 BGP: something else", read_ns) == []
    (master,) = obs.take_line("azure-gw-1", KEEPALIVED_LOG, "(azure-gw) Entering MASTER STATE", read_ns)
    assert master.t_ns == read_ns and obs.received_ns[master] >= read_ns
    # The record holds both again (the notify hook's line 3 ms later, as Docker stamped it), and
    # what the tail missed.
    engine.frr_text[plan.nodes["onprem-0"].container] = "\n".join([BFD_DOWN, BGP_DOWN, BGP_UP])
    engine.logs_text[plan.nodes["azure-gw-1"].container] = "2026-11-26T10:15:59.861192684Z lab-notify: vrrp master"
    recorded = obs.recorded_events(1002 * 10**9)
    assert sorted(e.kind for e in recorded) == ["bfd-down", "bgp-up"]
    report = obs.live_events + recorded
    assert sorted(e.kind for e in report) == ["bfd-down", "bgp-down", "bgp-up", "vrrp-master"]
    # A live line that comes after the record gave its event is not added twice.
    assert obs.take_line("onprem-0", FRR_LOG, BGP_UP, read_ns) == []
    assert len(obs.live_events) == 2
    # A second read of the record (the runner's, to the end of the run) still leaves the live ones out.
    assert sorted(e.kind for e in obs.recorded_events(1002 * 10**9)) == ["bfd-down", "bgp-up"]


def test_a_tail_follows_its_node_through_a_kill_and_stops_with_the_observation(monkeypatch):
    monkeypatch.setattr(observe, "REATTACH_EVERY_S", 0.01)
    plan = load_plan("active-standby", "fast", lab="t")
    engine = FakeEngine(plan)
    obs = observation(plan, engine)
    obs.started_ns = obs.clock.now_ns()
    info = engine.containers({"lab.node": "azure-gw-1"})[0]
    first = obs._open_tail(info, 60)
    assert first._stream.argv == ["lab-agent", "tail", "--within", "60", FRR_LOG, KEEPALIVED_LOG]
    obs._thread(obs._follow, first, "azure-gw-1")
    first._stream.feed({"ready": 1}, {"t": 5, "path": KEEPALIVED_LOG, "line": "(azure-gw) Entering MASTER STATE"})
    # Killed: its tail ends with it; while it is down, none is started.
    engine.running["azure-gw-1"] = False
    first._stream.end()
    time.sleep(0.1)
    assert len(engine.streams) == 1
    engine.running["azure-gw-1"] = True
    second = engine.tails_of("azure-gw-1", 2)[1]
    second.feed({"ready": 6}, {"t": 7, "path": KEEPALIVED_LOG, "line": "(azure-gw) Entering BACKUP STATE"})
    deadline = time.monotonic() + 5
    while len(obs.live_events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(e.kind, e.t_ns) for e in obs.live_events] == [("vrrp-master", 5), ("vrrp-backup", 7)]
    threads = list(obs._threads)
    started = time.monotonic()
    obs.stop()
    assert second.stopped and not any(t.is_alive() for t in threads) and time.monotonic() - started < 2
    assert len(engine.streams) == 2        # nothing re-attached after the stop


def test_a_tail_that_never_gets_ready_fails_the_start_naming_the_node():
    from lab.adapters.node_agent import AgentLogTail
    from lab.model.errors import LabError

    stream = FeedStream("lab-t-onprem-0", [])
    tail = AgentLogTail("onprem-0", stream)
    stream.queue.put("usage: lab-agent {sas,terminate,watch} ...")
    stream.end()
    assert list(tail) == []
    with pytest.raises(LabError, match="onprem-0: the tail of its logs ended at once .usage: lab-agent"):
        tail.wait_ready(1)
