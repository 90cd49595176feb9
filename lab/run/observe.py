"""Watching a lab during a failover run: probes and events, on one clock.

Live sources (the probes' exec streams, VICI event subscriptions, the tails
of FRR's and keepalived's logs) are read by one thread each, and their
events join `live_events` as they arrive. Sources that keep their own
stamped record (the engine's events, container logs, FRR's log) are
read once the run is over, for its window, so a killed node's history is
still there: a tail dies with its node and is re-attached only once the
node runs again. What the record holds twice (an FRR or VRRP event that
also came live) is kept once, the live one: FRR's stamp is the same either
way; keepalived's log line is written as it changes state, before its
notify hook writes the line Docker stamps, and is read in the node, on the
lab's clock itself, not moved onto it from Docker's wall clock.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from lab.run.clock import LabClock, estimate
from lab.model.daemon_events import (
    Event,
    FrrLogReader,
    container_log_events,
    docker_event,
    frr_log_events,
    keepalived_log_event,
    not_yet_seen,
    twin_of,
    vici_event,
)
from lab.model.errors import LabError
from lab.model.schema import LabPlan
from lab.run.ports import ContainerInfo, EventWatch, ExecStream, LogTail
from lab.model.kinds import runs_bgp, runs_ike
from lab.model.probes import DirectionProbes
from lab.run.status import running_node
from lab.run.ports import Adapters

VICI_EVENTS = ["ike-updown", "child-updown", "ike-rekey"]
FRR_LOG = "/var/log/frr/frr.log"
# charon's own log (the entrypoint sends its stderr there): `lab logs` shows it.
CHARON_LOG = "/var/log/charon.log"
# keepalived's own log (lab-vrrp starts it with --log-console into it).
KEEPALIVED_LOG = "/var/log/keepalived.log"
# How often a tail whose node went away (killed) looks for it again.
REATTACH_EVERY_S = 1.0
JOIN_WITHIN_S = 5.0
WATCH_READY_WITHIN_S = 10.0
# Round trips to time; the shortest is kept (a busy machine delays some).
CLOCK_SAMPLES = 16


def measure_clock(adapters: Adapters, container: str) -> LabClock:
    """The lab's clock, from timed round trips to one node's agent."""
    return estimate(adapters.runtime.clock_samples(container, CLOCK_SAMPLES))


def host_address(plan: LabPlan, host: str) -> str:
    return str(next(iter(plan.nodes[host].links.values())))


@dataclass
class HostProbe:
    """What one workload host's probe sent and received, filled as lines arrive."""
    host: str
    sent: list[tuple[int, int]] = field(default_factory=list)
    received: list[tuple[int, int, int]] = field(default_factory=list)
    errors: int = 0
    finished: bool = False
    first_slot_ns: int | None = None     # the probe's schedule (its B line)
    through_ns: int | None = None        # its last heartbeat: its log is complete to here

    def take(self, line: str) -> None:
        parts = line.split(",")
        try:
            if parts[0] == "H" and len(parts) == 2:
                self.through_ns = int(parts[1])
            elif parts[0] == "B" and len(parts) == 3:
                self.first_slot_ns = int(parts[1])
            elif parts[0] == "S" and len(parts) == 4:
                self.sent.append((int(parts[1]), int(parts[2])))
                self.errors += bool(parts[3])
            elif parts[0] == "R" and len(parts) == 4:
                self.received.append((int(parts[1]), int(parts[2]), int(parts[3])))
            elif parts[0] == "E":
                self.finished = True
        except ValueError:
            pass  # a torn line at the very end of the stream


class Observation:
    """Probes both ways between each probe pair, and VICI events of every VPN node."""

    def __init__(self, plan: LabPlan, adapters: Adapters, clock: LabClock, interval_s: float, port: int,
                 bound_s: float, *, skip_stopped: bool = False):
        if not plan.scenario.probes:
            raise LabError(f"scenario {plan.scenario.name} names no probe hosts (probes:)")
        self.plan = plan
        self.adapters = adapters
        self.interval_s = interval_s
        self.port = port
        self.bound_s = bound_s
        self.hosts: dict[str, HostProbe] = {}
        # In the order they arrived (their stamps may be earlier than an event's before them).
        self.live_events: list[Event] = []
        # When each tailed event reached `lab`, on the lab's clock.
        self.received_ns: dict[Event, int] = {}
        self._streams: list[ExecStream] = []
        self._watches: list[EventWatch] = []
        self._tails: list[LogTail] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # Handed out by recorded_events with no live twin yet: a late live twin is dropped.
        self._recorded_only: list[Event] = []
        # Each node's FRR log as its tail reads it: a route's next hops come on lines after its own.
        self._frr_logs: dict[str, FrrLogReader] = {}
        self.clock = clock
        self.started_ns = 0
        # A watch of a lab with a fault in place (the console's): a node that isn't running is
        # watched from when it runs again (its log tail), not a reason to fail.
        self.skip_stopped = skip_stopped

    def directions(self) -> list[DirectionProbes]:
        found = []
        for a, b in self.plan.scenario.probes:
            for src, dst in ((a, b), (b, a)):
                sender, receiver = self.hosts[src], self.hosts[dst]
                # Heartbeats read before the lines they vouch for (a pump thread appends meanwhile).
                # Until a stream's first heartbeat, nothing of it is known to be complete.
                sender_through, receiver_through = self._through(sender), self._through(receiver)
                found.append(DirectionProbes(f"{src} → {dst}", list(sender.sent), list(receiver.received),
                                             first_slot_ns=sender.first_slot_ns, sender_through_ns=sender_through,
                                             receiver_through_ns=receiver_through))
        return found

    def _through(self, probe: HostProbe) -> int | None:
        if probe.through_ns is not None:
            return probe.through_ns
        # A probe of an image older than heartbeats (no schedule line either) vouches for nothing: taken
        # as complete, as before them. One that has them vouches for nothing before its first.
        return self.started_ns if probe.first_slot_ns is not None else None

    def _thread(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _pump_probe(self, stream: ExecStream, probe: HostProbe) -> None:
        for line in stream.lines():
            probe.take(line)

    def _pump_vici(self, watch: EventWatch, node: str) -> None:
        for stamped_ns, label, message in watch:  # stamped in the node, on the lab's clock
            with self._lock:
                self.live_events.extend(vici_event(label, message, node, stamped_ns))

    def tailed_files(self, node: str) -> list[str]:
        """The logs of a node that report BGP, BFD or VRRP changes (none without a way to tail them)."""
        if self.adapters.logs_for is None:
            return []
        return (([FRR_LOG] if runs_bgp(self.plan.nodes[node].kind) else [])
                + ([KEEPALIVED_LOG] if self.plan.groups_of(node) else []))

    def _open_tail(self, info: ContainerInfo, within_s: float) -> LogTail | None:
        """A tail of the node's logs, kept to be closed by stop(); None once stopping."""
        assert self.adapters.logs_for is not None
        tail = self.adapters.logs_for(info).tail(self.tailed_files(info.node), within_s)
        with self._lock:
            if not self._stopping.is_set():
                self._tails.append(tail)
                return tail
        tail.close()
        return None

    def take_line(self, node: str, path: str, line: str, read_ns: int) -> list[Event]:
        """A tailed line's events, added to the live ones unless the record already gave them."""
        if path == FRR_LOG:
            reader = self._frr_logs.setdefault(node, FrrLogReader(node, self.clock.wall))
            found = reader.feed(line)    # FRR's own stamp
        else:
            found = [e for e in [keepalived_log_event(line, node, read_ns)] if e is not None]
        received = self.clock.now_ns()
        added = []
        with self._lock:
            for event in found:
                twin = twin_of(event, self._recorded_only)
                if twin is not None:
                    self._recorded_only.remove(twin)
                    continue
                self.live_events.append(event)
                self.received_ns[event] = received
                added.append(event)
        return added

    def _follow(self, tail: LogTail | None, node: str) -> None:
        """One node's tail until the observation stops; re-attached when a killed node runs again."""
        bound_ns = self.started_ns + int(self.bound_s * 1e9)
        while True:
            if tail is not None:
                for read_ns, path, line in tail:
                    self.take_line(node, path, line, read_ns)
            if self._stopping.wait(REATTACH_EVERY_S) or self.clock.now_ns() >= bound_ns:
                return
            try:
                # Not waited for: this thread is the one that reads its ready line.
                tail = self._open_tail(running_node(self.adapters.runtime, self.plan.lab, node),
                                       (bound_ns - self.clock.now_ns()) / 1e9)
                self._frr_logs.pop(node, None)    # a new tail: a header the old one held is cut
            except LabError:
                tail = None     # not running yet: looked for again

    def start(self) -> None:
        self.started_ns = self.clock.now_ns()
        runtime = self.adapters.runtime
        peers: dict[str, str] = {}
        for a, b in self.plan.scenario.probes:
            peers.setdefault(a, b)
            peers.setdefault(b, a)
        try:
            for node in self.plan.nodes.values():
                if runs_ike(node.kind):
                    try:
                        info = running_node(runtime, self.plan.lab, node.name)
                    except LabError:
                        if self.skip_stopped:
                            continue
                        raise
                    watch = self.adapters.ike_for(info).watch(VICI_EVENTS, self.bound_s)
                    self._watches.append(watch)
                    self._thread(self._pump_vici, watch, node.name)
            tails = []
            for node in self.plan.nodes.values():
                if self.tailed_files(node.name):
                    try:
                        tail = self._open_tail(running_node(runtime, self.plan.lab, node.name), self.bound_s)
                    except LabError:
                        if not self.skip_stopped:
                            raise
                        tail = None     # _follow opens it once the node runs
                    tails += [tail] if tail is not None else []
                    self._thread(self._follow, tail, node.name)
            for host, peer in peers.items():
                probe = self.hosts[host] = HostProbe(host)
                argv = ["lab-probe", "--peer", host_address(self.plan, peer), "--port", str(self.port),
                        "--interval", str(self.interval_s), "--duration", str(self.bound_s),
                        "--flows", str(self.plan.scenario.probe_flows),
                        # A slot served later than the Forwarding Delay Threshold is missed, not sent.
                        "--catch-up", str(self.plan.profile.convergence.threshold_intervals * self.interval_s)]
                stream = runtime.stream_exec(self.plan.nodes[host].container, argv)
                self._streams.append(stream)
                self._thread(self._pump_probe, stream, probe)
            for watch in self._watches + tails:
                watch.wait_ready(WATCH_READY_WITHIN_S)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Ends probes, watchers and tails; a second call finds nothing left to stop."""
        with self._lock:
            self._stopping.set()
            streams, watches, threads, tails = self._streams, self._watches, self._threads, self._tails
            self._streams, self._watches, self._threads, self._tails = [], [], [], []
        for stream in streams:
            stream.stop()
        for watch in watches + tails:
            watch.close()
        deadline = time.monotonic() + JOIN_WITHIN_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def recorded_events(self, until_ns: int) -> list[Event]:
        """The engine's container events, VRRP notifications and FRR's log for this run's window,
        but those that already came live."""
        runtime = self.adapters.runtime
        since_wall = self.clock.wall.to_realtime(self.started_ns)
        until_wall = self.clock.wall.to_realtime(until_ns)
        found: list[Event] = []
        for raw in runtime.events({"lab.name": self.plan.lab}, since_wall, until_wall):
            event = docker_event(raw, self.clock.wall)
            if event is not None:
                found.append(event)
        for node in self.plan.nodes.values():
            if self.plan.groups_of(node.name):
                text = runtime.logs(node.container, since_ns=since_wall, until_ns=until_wall, timestamps=True)
                found.extend(container_log_events(text, node.name, self.clock.wall))
            if runs_bgp(node.kind):
                found.extend(frr_log_events(runtime.read_file(node.container, FRR_LOG), node.name, self.clock.wall))
        found = [e for e in found if self.started_ns <= e.t_ns <= until_ns]
        with self._lock:
            kept = not_yet_seen(found, self.live_events)
            self._recorded_only += [e for e in kept if e not in self._recorded_only]
        return kept
