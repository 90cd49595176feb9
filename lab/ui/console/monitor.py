"""What the console watches while no timed run is going: the lab's control events as they come,
and a light probe both ways between the probe hosts, so a fault left by `break` shows its outage live.

The same watch a failover run uses (`Observation`: VICI subscriptions, the tails of FRR's and
keepalived's logs, `lab-probe` streams), started with nodes that aren't running skipped (a fault may
have killed one), in cycles of a few minutes so its records stay small, and again after each fault
or repair so a restarted node's VICI socket is watched too. A timed run pauses it: the run's own
probes and events take over, and nothing else loads the machine while it measures.
"""
from __future__ import annotations

import logging
import random
import threading
from collections import deque
from dataclasses import dataclass

from lab.model.daemon_events import Event
from lab.model.errors import LabError
from lab.model.events import ControlEvent, EventStream, LabEvent
from lab.model.schema import LabPlan
from lab.run.observe import Observation, measure_clock
from lab.run.ports import Adapters

log = logging.getLogger("lab.console")

# 20 probes a second each way: a gap of 50 ms is visible, and the load is a few hundred packets a second.
PROBE_INTERVAL_S = 0.05
# Not the failover runner's port (47000): a run never reads the console's probes.
PROBE_PORT = 47100
PROBE_PORTS = 64       # 47100-47163: one per watch in turn
CYCLE_S = 300.0
TICK_S = 0.5
RETRY_S = 3.0


# Probes are counted by when they were sent, in bins of this width, once a bin is this old: a probe
# not received by then is counted lost (the failover runner's threshold is 100 ms; this is a picture).
BIN_S = 0.25
SETTLE_S = 0.4
# The first second of a watch is not counted: its probes are starting at both ends.
WARM_UP_S = 1.0


@dataclass(frozen=True)
class DeliveryTick(LabEvent):
    """What the console's probe of one direction delivered of what it sent in one bin of time."""
    cycle: int
    direction: str
    at_ms: int            # the bin's start, wall clock (ms since the epoch)
    width_ms: int
    sent: int
    delivered: int


class DeliveryBins:
    """One watch's probes of one direction, counted bin by bin as each bin settles."""

    def __init__(self, start_ns: int):
        self.next_ns = start_ns
        self._sent_read = 0
        self._received: set[int] = set()
        self._received_read = 0

    def settled(self, sent: list, received: list, now_ns: int) -> list[tuple[int, int, int]]:
        """(bin start, sent, delivered) for every bin that settled since the last call."""
        for slot, _, _ in received[self._received_read:]:
            self._received.add(slot)
        self._received_read = len(received)
        width, found = int(BIN_S * 1e9), []
        while self.next_ns + width <= now_ns - int(SETTLE_S * 1e9):
            end = self.next_ns + width
            slots = []
            while self._sent_read < len(sent) and sent[self._sent_read][1] < end:
                slots.append(sent[self._sent_read][0])
                self._sent_read += 1
            found.append((self.next_ns, len(slots), sum(1 for slot in slots if slot in self._received)))
            self.next_ns = end
        return found


class ConsoleMonitor:
    def __init__(self, plan: LabPlan, adapters: Adapters, events: EventStream,
                 interval_s: float = PROBE_INTERVAL_S, cycle_s: float = CYCLE_S):
        self.plan, self.adapters, self.events = plan, adapters, events
        self.interval_s, self.cycle_s = interval_s, cycle_s
        self._stop = threading.Event()
        self._wake = threading.Event()       # end the cycle now: paused, restarted or stopped
        self._running = threading.Event()    # set while not paused
        self._running.set()
        self._idle = threading.Event()       # set while no observation is open
        self._idle.set()
        self._thread: threading.Thread | None = None
        self.cycle = 0
        # What was published lately: two overlapping watches see the same events.
        self._published: deque[Event] = deque(maxlen=2000)
        self._read = 0       # the current watch's events published so far
        self._current: Observation | None = None
        self._attempt = 0
        self._port_base = random.randrange(PROBE_PORTS)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="console-monitor", daemon=True)
        self._thread.start()

    def stop(self, within_s: float = 10.0) -> None:
        self._stop.set()
        self._running.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(within_s)

    def restart(self) -> None:
        """A new cycle now (after a fault or a repair: a node may have started again)."""
        self._wake.set()

    def pause(self, within_s: float = 15.0) -> None:
        """Stops watching until `resume`; returns once the watch's probes have stopped."""
        self._running.clear()
        self._wake.set()
        self._idle.wait(within_s)

    def resume(self) -> None:
        self._running.set()
        self._wake.set()

    def _loop(self) -> None:
        observation: Observation | None = None
        try:
            while not self._stop.is_set():
                if not self._running.is_set():
                    self._close(observation)
                    observation = self._current = None
                    self._running.wait()
                    continue
                self._wake.clear()
                try:
                    # The next watch opens before the last one closes: nothing that happens while it
                    # starts (a VRRP takeover a second after a kill) falls between the two.
                    fresh = self._open()
                except LabError as exc:
                    self.events.note(self.plan.lab, f"console: watching the lab failed ({exc}); trying again")
                    self._wake.wait(RETRY_S)
                    continue
                except Exception as exc:  # noqa: BLE001 - the watch must outlive a bug: said, logged, retried
                    log.exception("console: opening the watch failed")
                    self.events.note(self.plan.lab, f"console: watching the lab failed ({type(exc).__name__}); "
                                                    "trying again", logging.WARNING)
                    self._wake.wait(RETRY_S)
                    continue
                if observation is not None:
                    self._publish_events(observation)
                    observation.stop()
                observation = self._current = fresh
                self._read = 0
                try:
                    self._watch(observation)
                except Exception as exc:  # noqa: BLE001 - as above: a new watch replaces this one
                    log.exception("console: the watch failed")
                    self.events.note(self.plan.lab, f"console: the watch failed ({type(exc).__name__}); "
                                                    "starting another", logging.WARNING)
                    self._wake.wait(RETRY_S)
        finally:
            self._close(observation)

    def _close(self, observation: Observation | None) -> None:
        if observation is not None:
            self._publish_events(observation)
            observation.stop()
        self._idle.set()

    def _open(self) -> Observation:
        probes = self.plan.scenario.probes
        clock = measure_clock(self.adapters, self.plan.nodes[probes[0][0]].container)
        # Each watch its own port: the one it replaces may still be sending for a moment, and a
        # console that was killed leaves its probes running until their bound.
        self._attempt += 1
        port = PROBE_PORT + (self._port_base + self._attempt) % PROBE_PORTS
        observation = Observation(self.plan, self.adapters, clock, self.interval_s, port, self.cycle_s,
                                  skip_stopped=True)
        self._idle.clear()
        try:
            observation.start()
        except BaseException:
            observation.stop()
            if self._current is None:
                self._idle.set()
            raise
        self.cycle += 1
        return observation

    def _watch(self, observation: Observation) -> None:
        bins: dict[str, DeliveryBins] = {}
        clock = observation.clock
        for _ in range(int(self.cycle_s / TICK_S)):
            if self._wake.wait(TICK_S) or self._stop.is_set():
                return
            self._publish_events(observation)
            now = clock.now_ns()
            for direction in observation.directions():
                counted = bins.setdefault(direction.name,
                                          DeliveryBins(observation.started_ns + int(WARM_UP_S * 1e9)))
                for start_ns, sent, delivered in counted.settled(direction.sent, direction.received, now):
                    if sent:
                        self.events.publish(DeliveryTick(
                            self.plan.lab, cycle=self.cycle, direction=direction.name,
                            at_ms=clock.wall.to_realtime(start_ns) // 1_000_000, width_ms=int(BIN_S * 1000),
                            sent=sent, delivered=delivered))

    def _publish_events(self, observation: Observation) -> None:
        fresh = observation.live_events[self._read:]
        self._read += len(fresh)
        for event in sorted(fresh, key=lambda e: e.t_ns):
            if event in self._published:
                continue
            self._published.append(event)
            self.events.publish(ControlEvent(self.plan.lab, event=event))
