"""The lab's one event stream: typed events, published by the core, read by any number of subscribers.

The core never prints. `lab up`'s progress display, the failover live view, the pytest plugin and
the browser console each subscribe to an `EventStream` and draw what they need from the same
events. Pure: no I/O, no threads; a subscriber is called in the publisher's thread, in order.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from lab.model.daemon_events import Event

log = logging.getLogger("lab.events")


class Stage(str, Enum):
    """Where a lab, or a failover run on it, is now. A consumer switches on these, never on text."""
    # lab up
    CHECKING_ENGINE = "checking the Docker engine"
    BUILDING_IMAGE = "building the node image"
    PLACING_NETWORKS = "placing the lab's networks"
    INSTALLING_GUARD = "installing the host's forwarding guard"
    CREATING_NETWORKS = "creating networks"
    CREATING_NODES = "creating nodes"
    WAITING_HEALTHY = "waiting for healthy daemons"
    WAITING_CONVERGED = "waiting for IKE and BGP to converge"
    CONVERGED = "converged"
    REMOVING_FAILED_START = "start-up failed: removing what was created"
    # lab down
    REMOVING = "removing the lab"
    # a failover run
    RECREATING = "re-creating the lab"
    STARTING_PROBES = "starting probes"
    BASELINE = "baseline"
    MEASURING_FAILOVER = "measuring the failover"
    COLLECTING_EVENTS = "collecting events"
    RESTORING = "restoring"
    MEASURING_RESTORE = "measuring the restore"
    WAITING = "waiting before the failback"
    FAILING_BACK = "failing back"
    MEASURING_REVERSION = "measuring the reversion"
    # break / repair
    BREAKING = "injecting a fault"
    REPAIRING = "repairing"


@dataclass(frozen=True)
class LabEvent:
    """What every event carries: the lab it is about, and when it was published (this process's
    monotonic clock, for elapsed times on screen; measurements use the engine's clock, not this)."""
    lab: str
    at: float = field(default_factory=time.monotonic, kw_only=True)


@dataclass(frozen=True)
class StageChanged(LabEvent):
    stage: Stage
    detail: str = ""           # e.g. the node being created, the fault being restored
    run: int | None = None     # within a failover: this run, of `runs`
    runs: int | None = None


@dataclass(frozen=True)
class Note(LabEvent):
    """A line worth telling a person (a guard repaired, a run repeated); `level` is a logging level."""
    text: str
    level: int = logging.INFO


@dataclass(frozen=True)
class ProbeTick(LabEvent):
    """One direction's probe stream so far in a failover run's current window."""
    run: int
    direction: str
    delivered: int
    lost: int
    flowing_for_s: float | None   # None: interrupted now
    since_event_s: float | None   # seconds since the window's event (fault, restore, failback)


@dataclass(frozen=True)
class ControlEvent(LabEvent):
    """A control-plane event (IKE, CHILD SA, BGP, BFD, VRRP, Docker, the fault itself) as it arrives."""
    event: Event


@dataclass(frozen=True)
class PhaseObserved(LabEvent):
    """A phase of a failover (detection, hand-over, ...) found in a finished run's events."""
    run: int
    phase: str
    at_s: float | None          # seconds after the fault; None: not seen


@dataclass(frozen=True)
class RunDone(LabEvent):
    """One failover run measured (or found invalid); `result` is its RunResult."""
    run: int
    result: Any


@dataclass(frozen=True)
class FailoverDone(LabEvent):
    """Every run of a failover done; `report` is the FailoverReport."""
    report: Any


@dataclass(frozen=True)
class LabUp(LabEvent):
    """The lab is up and converged; `status` is its LabStatus."""
    status: Any
    took_s: float


@dataclass(frozen=True)
class LabDown(LabEvent):
    removed: int


Subscriber = Callable[[LabEvent], None]


class EventStream:
    """Events in, to every subscriber in the order they subscribed.

    A subscriber that raises is logged and kept: a broken view must not abort a failover half-way
    (a fault left in place). KeyboardInterrupt and SystemExit still go through."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Adds a subscriber; returns the call that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    def publish(self, event: LabEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:  # noqa: BLE001 - see the class's docstring
                log.exception("event subscriber %r failed on %s", subscriber, type(event).__name__)

    # Shorthands the core uses most.
    def stage(self, lab: str, stage: Stage, detail: str = "", run: int | None = None,
              runs: int | None = None) -> None:
        self.publish(StageChanged(lab, stage, detail, run, runs))

    def note(self, lab: str, text: str, level: int = logging.INFO) -> None:
        self.publish(Note(lab, text, level))


class Recorder:
    """A subscriber that keeps every event: for tests, and for consumers that read after the fact."""

    def __init__(self) -> None:
        self.events: list[LabEvent] = []

    def __call__(self, event: LabEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]
