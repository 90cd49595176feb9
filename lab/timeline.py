"""Probes and events in, outage figures out. Pure maths on one clock.

A direction's outage is the longest gap between two probes it received
after the fault; traffic is restored at the end of the last gap longer than
a few probe intervals; packets lost are those sent and never received.
A direction that receives nothing after the fault is not restored, and its
outage runs to the end of the measurement window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .events import (
    BFD_DOWN,
    BGP_DOWN,
    BGP_UP,
    CHILD_DOWN,
    CHILD_UP,
    IKE_DOWN,
    VRRP_BACKUP,
    VRRP_FAULT,
    VRRP_MASTER,
    VRRP_STOP,
    Event,
)

NS = 1_000_000_000
# A gap longer than this many probe intervals counts as an interruption.
INTERRUPTION_INTERVALS = 3

Sent = tuple[int, int]               # seq, sent_ns
Received = tuple[int, int, int]      # seq, sent_ns, recv_ns


@dataclass
class DirectionProbes:
    """Everything one direction's probes saw: what the sender sent, what the receiver got."""
    name: str
    sent: list[Sent] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)


@dataclass(frozen=True)
class DirectionResult:
    direction: str
    sent: int
    received: int
    lost: int
    reordered: int
    interrupted: bool
    outage_s: float               # longest gap after the fault (to window end if never restored)
    first_loss_s: float | None    # fault -> first probe sent after it that never arrived
    restored_s: float | None      # fault -> end of the last interruption; None: never restored

    @property
    def restored(self) -> bool:
        return self.restored_s is not None


def _seconds(ns: int) -> float:
    return round(ns / NS, 4)


def analyse_direction(probes: DirectionProbes, fault_ns: int, end_ns: int, interval_ns: int) -> DirectionResult:
    first_arrival: dict[int, Received] = {}
    for record in probes.received:
        if record[0] not in first_arrival or record[2] < first_arrival[record[0]][2]:
            first_arrival[record[0]] = record
    arrivals = sorted(first_arrival.values(), key=lambda r: r[2])
    reordered, highest = 0, -1
    for seq, _, _ in arrivals:
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)

    sent_seqs = {seq for seq, _ in probes.sent}
    lost_sent = sorted((sent_ns, seq) for seq, sent_ns in probes.sent if seq not in first_arrival)
    first_loss = next((sent_ns for sent_ns, _ in lost_sent if sent_ns >= fault_ns), None)

    threshold = INTERRUPTION_INTERVALS * interval_ns
    before = [r[2] for r in arrivals if r[2] <= fault_ns]
    after = [r[2] for r in arrivals if r[2] > fault_ns]
    # The gap that spans the fault starts at the last arrival before it.
    previous = before[-1] if before else fault_ns
    longest, restored_at, interrupted = 0, None, False
    for t in after:
        gap = t - previous
        longest = max(longest, gap)
        if gap > threshold:
            interrupted, restored_at = True, t
        previous = t
    tail = end_ns - previous
    if tail > threshold:
        # Nothing (or nothing steady) arrived up to the end: not restored.
        interrupted, restored_at = True, None
        longest = max(longest, tail)
    return DirectionResult(
        direction=probes.name,
        sent=len(sent_seqs),
        received=len(first_arrival),
        lost=len(lost_sent),
        reordered=reordered,
        interrupted=interrupted,
        outage_s=_seconds(longest),
        first_loss_s=_seconds(first_loss - fault_ns) if first_loss is not None else None,
        restored_s=(_seconds(restored_at - fault_ns) if restored_at is not None else None) if interrupted else 0.0,
    )


# What counts as the system noticing a fault: a VRRP transition, a tunnel or
# session going down. The fault's own container events are not detection.
DETECTION_KINDS = {VRRP_MASTER, VRRP_BACKUP, VRRP_FAULT, VRRP_STOP, IKE_DOWN, CHILD_DOWN, BGP_DOWN, BFD_DOWN}


@dataclass(frozen=True)
class Phase:
    name: str
    at_s: float | None      # seconds after the fault; None: not observed
    evidence: str           # the event it was read from


def _first(events: list[Event], after_ns: int, kinds: set[str], exclude_node: str | None = None) -> Event | None:
    return next((e for e in events if e.t_ns >= after_ns and e.kind in kinds and e.node != exclude_node), None)


def breakdown(events: list[Event], fault_ns: int, target_node: str, directions: list[DirectionResult]) -> list[Phase]:
    """fault -> detection -> public IP moved -> IKE up -> BGP Established -> traffic restored, from events."""
    ordered = sorted(events, key=lambda e: e.t_ns)

    def phase(name: str, event: Event | None) -> Phase:
        if event is None:
            return Phase(name, None, "not observed")
        return Phase(name, _seconds(event.t_ns - fault_ns), f"{event.node}: {event.kind} {event.detail}".strip())

    detected = _first(ordered, fault_ns, DETECTION_KINDS)
    moved = _first(ordered, fault_ns, {VRRP_MASTER}, exclude_node=target_node)
    since = moved.t_ns if moved else fault_ns
    ike = _first(ordered, since, {CHILD_UP})
    bgp = _first(ordered, ike.t_ns if ike else since, {BGP_UP})
    restored = [d.restored_s for d in directions]
    if all(r is not None for r in restored) and any(d.interrupted for d in directions):
        traffic = Phase("traffic restored", max(restored), "probes in both directions")
    elif all(r is not None for r in restored):
        traffic = Phase("traffic restored", 0.0, "probes never interrupted")
    else:
        traffic = Phase("traffic restored", None, "not restored in the measurement window")
    return [
        Phase("fault injected", 0.0, f"{target_node}"),
        phase("detected", detected),
        phase("public IP moved", moved),
        phase("IKE re-established", ike),
        phase("BGP Established", bgp),
        traffic,
    ]


@dataclass(frozen=True)
class Check:
    name: str
    measured: float | None     # None: never happened within the window
    limit: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.measured is not None and self.measured <= self.limit


def checks(directions: list[DirectionResult], phases: list[Phase], target_s: float, interval_s: float) -> list[Check]:
    """Each figure against the target: outage and restore time per direction, detection, loss."""
    found = []
    for d in directions:
        found.append(Check(f"outage {d.direction}", d.outage_s, target_s, "s"))
        found.append(Check(f"restored {d.direction}", d.restored_s, target_s, "s"))
        # A loss budget: the probes a target-long outage would cost, and no more.
        found.append(Check(f"lost {d.direction}", float(d.lost), float(math.ceil(target_s / interval_s)), "packets"))
    detected = next(p for p in phases if p.name == "detected")
    interrupted = any(d.interrupted for d in directions)
    # A fault nobody had to react to (no interruption) needs no detection.
    found.append(Check("detected", detected.at_s if interrupted else (detected.at_s or 0.0), target_s, "s"))
    return found


def percentile(values: list[float | None], q: float) -> float | None:
    """Nearest-rank percentile; a missing value (never restored) ranks as infinite."""
    if not values:
        return None
    ranked = sorted(math.inf if v is None else v for v in values)
    index = max(0, math.ceil(q / 100 * len(ranked)) - 1)
    value = ranked[index]
    return None if math.isinf(value) else value


def steady_since(arrivals: list[int], now_ns: int, threshold_ns: int) -> int | None:
    """Since when probes have been arriving without a gap over the threshold; None if not now."""
    if not arrivals or now_ns - arrivals[-1] > threshold_ns:
        return None
    for i in range(len(arrivals) - 1, 0, -1):
        if arrivals[i] - arrivals[i - 1] > threshold_ns:
            return arrivals[i]
    return arrivals[0]
