"""Probes and events in, convergence figures out. Pure maths on one clock.

The figures are the benchmarks of RFC 6412 (terms), measured as RFC 6413
and RFC 7747 do, on UDP probes sent each way at a fixed interval (the
offered rate). They hold for any Convergence Event: the fault, or the
failback (reversion). Every instant is read on the probes' send times, so a
late probe moves no instant; delay is reported on its own.

- A probe is delivered if it was ever received (by sequence number), however
  late: late is delayed, not lost. A probe never received is lost.
- The window judges the probes sent from the event until `edge` before its
  end: those sent later may still have been in flight when it ended.
- A loss episode is a run of consecutive lost probes (in send order). It
  starts at the send time of its first lost probe and ends at the send time
  of the next delivered probe, or at the window's end (still open).
- Full Convergence Time, by the Rate-Derived Method: from the event to the
  Convergence Recovery Instant, when the delivered rate is back to the
  offered rate and stays there for the Sustained Convergence Validation
  Time. Here: the end of the last loss episode before the first loss-free
  stretch at least that long; 0 when nothing was lost in a window at least
  that long. No such stretch in the window: not converged (None).
- Convergence Packet Loss: the probes lost from the event to that instant
  (every lost probe of the window when it never converged).
- Loss-Derived Convergence Time: Convergence Packet Loss / offered rate,
  i.e. lost probes x interval.
- First Route Convergence Time: from the event to the end of the first loss
  episode, i.e. the first probe delivered after the loss began.
- Maximum delay: the longest one-way delay (receive - send; the containers
  share the engine kernel's CLOCK_MONOTONIC) of the probes delivered in the window,
  and of those in flight at the event that arrived after it.
- Longest gap between arrivals: the figure this lab used to publish as "the
  outage". A secondary figure only: one late probe in a gap halves it, and a
  receiver stall without loss reads as one.

The baseline before the event (less the same edge) must be clean: a lost
probe, or one delayed past the limit, makes the result invalid, and the
reason says which. Loss before the event is never counted in the figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

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
# The live view calls traffic interrupted after this many intervals without an arrival.
INTERRUPTION_INTERVALS = 3
# A steady path delays no probe this many intervals: one later than that makes
# a baseline invalid, and the same span at each edge of a window holds the
# probes that may still have been in flight when it began or ended.
DELAY_LIMIT_INTERVALS = 5

Sent = tuple[int, int]               # seq, sent_ns
Received = tuple[int, int, int]      # seq, sent_ns, recv_ns


@dataclass
class DirectionProbes:
    """Everything one direction's probes saw: what the sender sent, what the receiver got."""
    name: str
    sent: list[Sent] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)


@dataclass(frozen=True)
class Method:
    """How a direction is measured: the offered rate and the RFC 6412 parameters."""
    interval_ns: int          # one probe per interval: the offered rate
    sustained_ns: int         # Sustained Convergence Validation Time
    baseline_ns: int = 0      # how long before the event must be clean; 0: not checked
    flows: int = 1            # the probes' flows, sent round-robin (one round: flows x interval)

    @property
    def delay_limit_ns(self) -> int:
        return DELAY_LIMIT_INTERVALS * self.interval_ns


@dataclass(frozen=True)
class LossEpisode:
    start_s: float      # send time of its first lost probe, after the event
    end_s: float        # send time of the next delivered probe; the window's end when open
    probes: int
    open: bool = False  # still going on when the window ended


@dataclass(frozen=True)
class DirectionResult:
    direction: str
    sent: int                        # probes sent in the window
    received: int                    # of those, delivered, however late
    lost: int                        # of those, never delivered
    delayed: int                     # delivered (or in flight at the event), but later than the delay limit
    duplicates: int
    reordered: int
    loss_episodes: tuple[LossEpisode, ...]
    convergence_packet_loss: int     # lost before the Convergence Recovery Instant
    loss_derived_s: float            # Loss-Derived Convergence Time
    first_route_s: float | None      # First Route Convergence Time; None: loss never ended
    rate_derived_s: float | None     # Full Convergence Time (Rate-Derived Method); None: not converged
    max_delay_s: float | None        # None: nothing delivered
    longest_gap_s: float             # secondary: longest time without an arrival
    invalid: str | None = None       # why the baseline disqualifies this result
    # Share of the probes sent from the event until the Convergence Recovery Instant that
    # were lost: 1.0 when every flow stopped, less when only those over a lost path did.
    loss_share: float | None = None

    @property
    def interrupted(self) -> bool:
        return bool(self.loss_episodes)

    @property
    def converged(self) -> bool:
        return self.rate_derived_s is not None


def _seconds(ns: int) -> float:
    return round(ns / NS, 4)


def _send_times(probes: DirectionProbes) -> dict[int, int]:
    """seq -> send time: the sender's log, completed by the stamps the receiver read."""
    sent_at: dict[int, int] = {}
    for seq, sent_ns in probes.sent:
        sent_at.setdefault(seq, sent_ns)
    for seq, sent_ns, _ in probes.received:
        sent_at.setdefault(seq, sent_ns)
    return sent_at


def _first_arrivals(received: list[Received]) -> tuple[dict[int, int], int]:
    """seq -> earliest receive time, and how many arrivals were duplicates."""
    first: dict[int, int] = {}
    duplicates = 0
    for seq, _, recv_ns in received:
        if seq in first:
            duplicates += 1
            first[seq] = min(first[seq], recv_ns)
        else:
            first[seq] = recv_ns
    return first, duplicates


def _episodes(window: list[tuple[int, int]], delivered: dict[int, int], cutoff_ns: int) -> list[tuple[int, int, int, bool]]:
    """(start, end, probes, open) for each run of consecutive lost probes in send order."""
    found = []
    start, count = None, 0
    for sent_ns, seq in window:
        if seq not in delivered:
            start = sent_ns if start is None else start
            count += 1
        elif start is not None:
            found.append((start, sent_ns, count, False))
            start, count = None, 0
    if start is not None:
        found.append((start, cutoff_ns, count, True))
    return found


def _recovery(episodes: list[tuple[int, int, int, bool]], event_ns: int, cutoff_ns: int,
              sustained_ns: int) -> tuple[int, int] | None:
    """(Convergence Recovery Instant, episodes before it), or None when not converged in the window."""
    if not episodes:
        return (event_ns, 0) if cutoff_ns - event_ns >= sustained_ns else None
    # Traffic that flowed at the offered rate for the whole validation time after the
    # event was never interrupted by it: a later loss belongs to something else.
    if episodes[0][0] - event_ns >= sustained_ns:
        return event_ns, 0
    for i, (_, end, _, still_open) in enumerate(episodes):
        if still_open:
            return None
        following = episodes[i + 1][0] if i + 1 < len(episodes) else cutoff_ns
        if following - end >= sustained_ns:
            return end, i + 1
    return None


def _baseline_problem(sent_at: dict[int, int], delivered: dict[int, int], event_ns: int, method: Method) -> str | None:
    """Why the baseline before the event is not clean: loss, or a probe delayed past the limit."""
    if method.baseline_ns <= 0:
        return None
    start, stop = event_ns - method.baseline_ns, event_ns - method.delay_limit_ns
    judged = [(seq, t) for seq, t in sent_at.items() if start <= t < stop]
    if not judged:
        return "no probes sent in the baseline"
    problems = []
    lost = sum(seq not in delivered for seq, _ in judged)
    if lost:
        problems.append(f"{lost} probe{'s' if lost > 1 else ''} lost in the baseline")
    worst = max((delivered[seq] - t for seq, t in judged if seq in delivered), default=0)
    if worst > method.delay_limit_ns:
        problems.append(f"a probe delayed {worst / 1e6:.0f} ms in the baseline "
                        f"(limit {method.delay_limit_ns / 1e6:.0f} ms)")
    return "; ".join(problems) or None


def _longest_gap(arrivals: list[int], event_ns: int, end_ns: int) -> int:
    """Longest time without an arrival, from the last one before the event to the end."""
    previous = max((a for a in arrivals if a <= event_ns), default=event_ns)
    longest = 0
    for a in sorted(a for a in arrivals if event_ns < a <= end_ns):
        longest = max(longest, a - previous)
        previous = a
    return max(longest, end_ns - previous)


def analyse_direction(probes: DirectionProbes, event_ns: int, end_ns: int, method: Method) -> DirectionResult:
    """The RFC 6412 figures of one direction for one Convergence Event (see the module's docstring)."""
    sent_at = _send_times(probes)
    delivered, duplicates = _first_arrivals(probes.received)
    cutoff = end_ns - method.delay_limit_ns
    window = sorted((t, seq) for seq, t in sent_at.items() if event_ns <= t < cutoff)
    episodes = _episodes(window, delivered, cutoff)
    recovery = _recovery(episodes, event_ns, cutoff, method.sustained_ns) if window else None
    lost = sum(e[2] for e in episodes)
    counted = lost if recovery is None else sum(e[2] for e in episodes[:recovery[1]])
    round_end = event_ns + method.flows * method.interval_ns
    until = len(window) if recovery is None else sum(1 for t, _ in window if t < max(recovery[0], round_end))

    if not window:
        first_route = None
    elif not episodes or (recovery is not None and recovery[1] == 0):
        first_route = 0.0  # the event interrupted nothing (within the validation time)
    else:
        first_route = None if episodes[0][3] else _seconds(episodes[0][1] - event_ns)

    delays = [delivered[seq] - t for t, seq in window if seq in delivered]
    # Probes in flight at the event that arrived after it were delayed during it too.
    in_flight = [delivered[seq] - t for seq, t in sent_at.items()
                 if t < event_ns and seq in delivered and delivered[seq] > event_ns]
    reordered, highest = 0, -1
    for _, seq in sorted((delivered[seq], seq) for _, seq in window if seq in delivered):
        reordered += seq < highest
        highest = max(highest, seq)
    return DirectionResult(
        direction=probes.name,
        sent=len(window),
        received=len(delays),
        lost=lost,
        delayed=sum(d > method.delay_limit_ns for d in delays + in_flight),
        duplicates=duplicates,
        reordered=reordered,
        loss_episodes=tuple(LossEpisode(_seconds(s - event_ns), _seconds(e - event_ns), n, o)
                            for s, e, n, o in episodes),
        convergence_packet_loss=counted,
        loss_derived_s=_seconds(counted * method.interval_ns),
        first_route_s=first_route,
        rate_derived_s=None if recovery is None else _seconds(recovery[0] - event_ns),
        max_delay_s=_seconds(max(delays + in_flight)) if delays or in_flight else None,
        longest_gap_s=_seconds(_longest_gap(list(delivered.values()), event_ns, end_ns)),
        invalid=_baseline_problem(sent_at, delivered, event_ns, method),
        loss_share=round(counted / until, 4) if until else (0.0 if window else None),
    )


def invalid_reason(directions: list[DirectionResult]) -> str | None:
    """Why a run's figures can't be trusted (its baseline was not clean); None when they can."""
    reasons = [f"{d.direction}: {d.invalid}" for d in directions if d.invalid]
    return "; ".join(reasons) or None


# What counts as the system noticing a fault: a VRRP transition, a tunnel or
# session going down. The fault's own container events are not detection.
DETECTION_KINDS = {VRRP_MASTER, VRRP_BACKUP, VRRP_FAULT, VRRP_STOP, IKE_DOWN, CHILD_DOWN, BGP_DOWN, BFD_DOWN}


@dataclass(frozen=True)
class Handover:
    """Where each phase of a failover must be read: the nodes and sessions that carry the traffic."""
    target: str                      # the instance the fault hit
    standbys: tuple[str, ...]        # the gateway's other instances: one of them takes over
    devices: tuple[str, ...]         # the VPN devices with a tunnel to the gateway
    public_ip: str                   # the gateway's public IP: the devices' tunnel endpoint
    gateway_bgp_ip: str              # the gateway's BGP address, which moves with the public IP
    device_bgp_ips: tuple[str, ...]  # the devices' BGP addresses


TRAFFIC_RESTORED = "traffic restored"


@dataclass(frozen=True)
class Phase:
    name: str
    at_s: float | None        # seconds after the fault; None: not observed
    evidence: str             # the event it was read from
    out_of_order: bool = False  # observed before a phase listed ahead of it


def _event_phase(name: str, event: Event | None, fault_ns: int) -> Phase:
    if event is None:
        return Phase(name, None, "not observed")
    return Phase(name, _seconds(event.t_ns - fault_ns), f"{event.node}: {event.kind} {event.detail}".strip())


def _peer(detail: str) -> str:
    """The neighbour address a BGP event names first."""
    return detail.split()[0] if detail else ""


def breakdown(events: list[Event], fault_ns: int, until_ns: int, handover: Handover,
              directions: list[DirectionResult]) -> list[Phase]:
    """fault -> detected -> public IP moved -> IKE re-established -> BGP Established -> traffic restored.

    Each phase is searched from the fault on its own, on the node and session
    that matter, so their order is evidence, not construction:
    - public IP moved: VRRP master on a standby of the gateway (not the target);
    - IKE re-established: a CHILD_SA up on the instance taking over, or on a
      device for its tunnel to the gateway's public IP;
    - BGP Established: the session between a device and the instance taking
      over (either end's view), not any other session such as the VNet router's;
    - traffic restored: the Full Convergence Time (rate-derived) of the
      slowest direction.
    The instance taking over is the one seen taking the IP; without that,
    the gateway's only standby. A phase seen before one listed ahead of it is
    marked out of order.
    """
    window = sorted((e for e in events if fault_ns <= e.t_ns <= until_ns), key=lambda e: e.t_ns)

    def first(matches) -> Event | None:
        return next((e for e in window if matches(e)), None)

    detected = first(lambda e: e.kind in DETECTION_KINDS)
    moved = first(lambda e: e.kind == VRRP_MASTER and e.node in handover.standbys)
    if moved is not None:
        taking_over = {moved.node}
    else:
        taking_over = set(handover.standbys) if len(handover.standbys) == 1 else set()
    ike = first(lambda e: e.kind == CHILD_UP and (
        e.node in taking_over or (e.node in handover.devices and handover.public_ip in e.detail.split())))
    bgp = first(lambda e: e.kind == BGP_UP and (
        (e.node in taking_over and _peer(e.detail) in handover.device_bgp_ips)
        or (e.node in handover.devices and _peer(e.detail) == handover.gateway_bgp_ip)))
    return _flag_order([
        Phase("fault injected", 0.0, handover.target),
        _event_phase("detected", detected, fault_ns),
        _event_phase("public IP moved", moved, fault_ns),
        _event_phase("IKE re-established", ike, fault_ns),
        _event_phase("BGP Established", bgp, fault_ns),
        _traffic_phase(directions),
    ])


@dataclass(frozen=True)
class Withdrawal:
    """Where the phases of a failover without a hand-over are read: the target's peers drop
    its tunnels and sessions and keep the paths they have elsewhere (active-active, a
    device of a dual-redundant site, a zone). Each entry is one tunnel or session as the
    nodes at its far end may see it (several when instances share it): its first down
    event at any of them counts."""
    target: str
    nodes: tuple[str, ...]
    tunnels: tuple[tuple[str, tuple[str, ...]], ...]               # tunnel name, far-end nodes
    sessions: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # label, (peer node, target address) views
    first_hop_routers: tuple[str, ...] = ()                        # routers that may take the target's LAN address


def _latest_of_firsts(window: list[Event], wanted: list[Callable[[Event], bool]]) -> Event | None:
    """The moment every entry had been seen once: the latest of each entry's first event."""
    firsts = [next((e for e in window if matches(e)), None) for matches in wanted]
    if not firsts or any(f is None for f in firsts):
        return None
    return max(firsts, key=lambda e: e.t_ns)  # type: ignore[union-attr]


def withdrawal_breakdown(events: list[Event], fault_ns: int, until_ns: int, w: Withdrawal,
                         directions: list[DirectionResult]) -> list[Phase]:
    """fault -> detected -> (LAN address moved) -> tunnels down at its peers -> BGP down at its
    peers -> traffic restored. A phase is the moment every peer had seen it: the slowest decides.
    With BFD the sessions go before the tunnels (DPD): that run's tunnel phase is out of order."""
    window = sorted((e for e in events if fault_ns <= e.t_ns <= until_ns), key=lambda e: e.t_ns)
    detected = next((e for e in window if e.kind in DETECTION_KINDS and e.node not in w.nodes), None)

    def session_down(views: tuple[tuple[str, str], ...]) -> Callable[[Event], bool]:
        return lambda e: e.kind in (BGP_DOWN, BFD_DOWN) and (e.node, _peer(e.detail)) in views

    def tunnel_down(name: str, ends: tuple[str, ...]) -> Callable[[Event], bool]:
        return lambda e: e.kind in (IKE_DOWN, CHILD_DOWN) and e.node in ends and _peer(e.detail) == name

    phases = [Phase("fault injected", 0.0, w.target), _event_phase("detected", detected, fault_ns)]
    if w.first_hop_routers:
        moved = next((e for e in window if e.kind == VRRP_MASTER and e.node in w.first_hop_routers), None)
        phases.append(_event_phase("LAN address moved", moved, fault_ns))
    phases += [
        _event_phase("tunnels down at its peers",
                     _latest_of_firsts(window, [tunnel_down(name, ends) for name, ends in w.tunnels]), fault_ns),
        _event_phase("BGP down at its peers",
                     _latest_of_firsts(window, [session_down(views) for _, views in w.sessions]), fault_ns),
        _traffic_phase(directions),
    ]
    return _flag_order(phases)


def _traffic_phase(directions: list[DirectionResult]) -> Phase:
    if directions and all(d.converged for d in directions):
        return Phase(TRAFFIC_RESTORED, max(d.rate_derived_s for d in directions),  # type: ignore[type-var]
                     "Full Convergence Time (rate-derived), slowest direction")
    return Phase(TRAFFIC_RESTORED, None, "not converged in the measurement window")


def _flag_order(phases: list[Phase]) -> list[Phase]:
    """Marks each phase observed before one listed ahead of it."""
    flagged, latest = [], -math.inf
    for p in phases:
        if p.at_s is not None:
            p = Phase(p.name, p.at_s, p.evidence, out_of_order=p.at_s < latest)
            latest = max(latest, p.at_s)
        flagged.append(p)
    return flagged


def observed_order(phases: list[Phase]) -> list[str]:
    """The observed phases, in the order they happened."""
    return [p.name for p in sorted((p for p in phases if p.at_s is not None), key=lambda p: p.at_s)]


@dataclass(frozen=True)
class Check:
    name: str
    measured: float | None     # None: never happened within the window
    limit: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.measured is not None and self.measured <= self.limit


def checks(directions: list[DirectionResult], target_s: float) -> list[Check]:
    """The verdict: each direction's Full Convergence Time (rate-derived) against the target."""
    return [Check(f"rate-derived convergence {d.direction}", d.rate_derived_s, target_s, "s") for d in directions]


def percentile(values: list[float | None], q: float) -> float | None:
    """Nearest-rank percentile; a missing value (never converged) ranks as infinite."""
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
