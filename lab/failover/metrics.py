"""Probes and events in, convergence figures out. Pure maths on one clock.

The figures are the benchmarks of RFC 6412 (terms), measured as RFC 6413
and RFC 7747 do, on UDP probes sent each way at a fixed interval (the
offered rate). They hold for any Convergence Event: the fault, the restore,
or the failback (reversion). Every instant is read on send times, so a
late probe moves no instant; delay is reported on its own.

Send slots. The sender owes one probe per interval: slot k is due at
`first_slot_ns + k x interval`, and the probe it sends carries k. Every
slot of a window is accounted for:
- delivered: received within the Forwarding Delay Threshold of its send;
- late: received, but later than the threshold (RFC 6412: a packet that
  late counts as lost);
- lost: sent, never received;
- missed: never sent. A sender that wakes late sends the slots it owes at
  once (read on their real send times), up to one threshold late; a slot
  later than that is missed. A run of missed slots between two delivered
  ones is taken as delivered (the path was fine on both sides); any other
  run as lost, so a silent sender can never shorten an outage. Over
  `MISSED_SLOTS_ALLOWED` missed slots make the result invalid.

A bad slot is a late, lost or missed-and-lost one.
- The window judges the slots sent from one threshold before the event (a
  probe in flight at the event can be lost by it) until one threshold
  before the window's end (a later one may still have been in flight).
  Both streams must have reported past the end, or the result is invalid.
- A loss episode is a run of consecutive bad slots. It starts at the send
  time of its first bad slot and ends at the send time of the next
  delivered one, or at the window's end (still open).
- Full Convergence Time, by the Rate-Derived Method: from the event to the
  Convergence Recovery Instant, the end of the window's last loss episode,
  when traffic then flowed at the offered rate for the Sustained
  Convergence Validation Time. Every loss in the window is judged, however
  late: no loss is "another event". No episode: 0. The window has less
  than the validation time after the last episode: not converged (None).
- Convergence Packet Loss: the bad slots up to that instant (every bad
  slot of the window when it never converged).
- Loss-Derived Convergence Time: Convergence Packet Loss / offered rate,
  i.e. bad slots x interval.
- First Route Convergence Time: from the event to the end of the first
  loss episode.
- Per flow (probes spread round-robin over several UDP flows, so that ECMP
  routers hash them over every path): the same figures on each flow's own
  slots, RFC 6413's route-specific convergence with flows standing in for
  routes. The worst flow is reported beside the aggregate. The verdict
  takes the later of the two Full Convergence Times: the aggregate alone
  could end up to one round of the flows before its slowest flow did.
- Maximum delay: the longest one-way delay (receive - send; the containers
  share the engine kernel's CLOCK_MONOTONIC) of the window's probes that
  arrived at all, late ones included.
- Longest gap between arrivals: a secondary figure only.

Before the first event of a run, the baseline (the method's, before the
event) must be clean: a lost or late probe makes the result invalid. So
does loss that began before the event's stamp by more than a probe's
transit and one interval (the clock, or the stamp, is wrong). An event that
follows another (the restore, the failback) is judged from where the
previous window ended, so that every moment of a run is in one window.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

from lab.model.daemon_events import (
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
from lab.model.probes import DirectionProbes, Received

NS = 1_000_000_000
# The live view calls traffic interrupted after this many intervals without an arrival.
INTERRUPTION_INTERVALS = 3
# The Forwarding Delay Threshold's default, in probe intervals: 100 ms at 20 ms. A steady
# path here delays a probe by a few ms; five intervals leave a loaded 2-core machine room
# while keeping a held probe from passing as delivered (see README, "How a run is timed").
THRESHOLD_INTERVALS = 5
# Send slots a sender may miss in one window before its figures stop being a measurement
# of the path (one threshold's worth at the default).
MISSED_SLOTS_ALLOWED = 5

DELIVERED, LATE, LOST, MISSED = "delivered", "late", "lost", "missed"


@dataclass(frozen=True)
class Method:
    """How a direction is measured: the offered rate and the RFC 6412 parameters."""
    interval_ns: int          # one probe per interval: the offered rate
    sustained_ns: int         # Sustained Convergence Validation Time
    baseline_ns: int = 0      # how long before the event must be clean; 0: not checked
    flows: int = 1            # the probes' flows, sent round-robin (one round: flows x interval)
    threshold_intervals: int = THRESHOLD_INTERVALS   # Forwarding Delay Threshold, in intervals

    @property
    def threshold_ns(self) -> int:
        """RFC 6412's Forwarding Delay Threshold: a probe later than this is lost."""
        return self.threshold_intervals * self.interval_ns


@dataclass(frozen=True)
class LossEpisode:
    start_s: float      # send time of its first bad slot, after the event (negative: before it)
    end_s: float        # send time of the next delivered probe; the window's end when open
    probes: int         # its bad slots
    open: bool = False  # still going on when the window ended


@dataclass(frozen=True)
class FlowFigures:
    """One flow's own figures (RFC 6413's route-specific convergence, a flow for a route)."""
    flow: int
    first_route_s: float | None
    rate_derived_s: float | None
    loss_derived_s: float


@dataclass(frozen=True)
class DirectionResult:
    direction: str
    sent: int                        # probes sent in the window
    received: int                    # of those, delivered within the threshold
    lost: int                        # sent and never received
    late: int                        # received later than the Forwarding Delay Threshold: lost too
    missed: int                      # send slots the sender never sent
    duplicates: int
    reordered: int
    loss_episodes: tuple[LossEpisode, ...]
    convergence_packet_loss: int     # bad slots before the Convergence Recovery Instant
    loss_derived_s: float            # Loss-Derived Convergence Time
    first_route_s: float | None      # First Route Convergence Time; None: loss never ended
    rate_derived_s: float | None     # Full Convergence Time (Rate-Derived Method), aggregate; None: not converged
    max_delay_s: float | None        # None: nothing arrived
    longest_gap_s: float             # secondary: longest time without an arrival
    invalid: str | None = None       # why this result can't be trusted
    # Share of the slots from the event until the Convergence Recovery Instant that were
    # bad: 1.0 when every flow stopped, less when only those over a lost path did.
    loss_share: float | None = None
    worst_flow: FlowFigures | None = None   # with several flows: the one that converged last
    before_event: int = 0                   # bad slots sent before the event's stamp (in flight when it hit)
    threshold_s: float = 0.0                # the Forwarding Delay Threshold it was judged with

    @property
    def interrupted(self) -> bool:
        return bool(self.loss_episodes)

    @property
    def full_convergence_s(self) -> float | None:
        """The verdict's figure: the later of the aggregate's and the worst flow's Full Convergence Time."""
        if self.worst_flow is None:
            return self.rate_derived_s
        if self.rate_derived_s is None or self.worst_flow.rate_derived_s is None:
            return None
        return max(self.rate_derived_s, self.worst_flow.rate_derived_s)

    @property
    def converged(self) -> bool:
        return self.full_convergence_s is not None


@dataclass(frozen=True)
class _Slot:
    seq: int
    at_ns: int             # when sent; when due, for a missed slot
    state: str             # DELIVERED, LATE, LOST or MISSED
    delay_ns: int | None   # receive - send, when it arrived at all
    bad: bool              # what the figures read: not delivered (a missed slot as resolved)


def _seconds(ns: int) -> float:
    return round(ns / NS, 4)


def _first_arrivals(received: list[Received]) -> tuple[dict[int, tuple[int, int]], int]:
    """slot -> (sent_ns, earliest receive time), and how many arrivals were duplicates."""
    first: dict[int, tuple[int, int]] = {}
    duplicates = 0
    for seq, sent_ns, recv_ns in received:
        if seq in first:
            duplicates += 1
            if recv_ns < first[seq][1]:
                first[seq] = (sent_ns, recv_ns)
        else:
            first[seq] = (sent_ns, recv_ns)
    return first, duplicates


def _slots(probes: DirectionProbes, arrivals: dict[int, tuple[int, int]], start_ns: int, stop_ns: int,
           method: Method) -> list[_Slot]:
    """Every send slot sent (or due) in [start_ns, stop_ns), in order, its state resolved."""
    sent_at = {}
    for seq, sent_ns in probes.sent:
        sent_at.setdefault(seq, sent_ns)
    for seq, (sent_ns, _) in arrivals.items():
        sent_at.setdefault(seq, sent_ns)
    if not sent_at:
        return []
    interval = method.interval_ns
    first = probes.first_slot_ns
    if first is None:   # the earliest slot, as close to on time as any was sent
        first = min(t - seq * interval for seq, t in sent_at.items())
    # A slot is sent at most a threshold late (later, it is missed): that many slots before covers it.
    lo = max(0, (start_ns - first) // interval - method.threshold_intervals - 1)
    hi = (stop_ns - first) // interval + 1
    found = []
    for seq in range(lo, hi + 1):
        at = sent_at.get(seq, first + seq * interval)
        if not start_ns <= at < stop_ns:
            continue
        if seq not in sent_at:
            found.append(_Slot(seq, at, MISSED, None, True))
        elif seq in arrivals:
            delay = arrivals[seq][1] - at
            late = delay > method.threshold_ns
            found.append(_Slot(seq, at, LATE if late else DELIVERED, delay, late))
        else:
            found.append(_Slot(seq, at, LOST, None, True))
    found.sort(key=lambda s: s.at_ns)
    return _resolve_missed(found)


def _resolve_missed(slots: list[_Slot]) -> list[_Slot]:
    """A run of missed slots between two delivered ones reads as delivered; any other, as bad."""
    resolved = list(slots)
    i = 0
    while i < len(slots):
        if slots[i].state != MISSED:
            i += 1
            continue
        j = i
        while j < len(slots) and slots[j].state == MISSED:
            j += 1
        if 0 < i and j < len(slots) and slots[i - 1].state == DELIVERED and slots[j].state == DELIVERED:
            for k in range(i, j):
                resolved[k] = dataclasses.replace(slots[k], bad=False)
        i = j
    return resolved


def _episodes(slots: list[_Slot], cutoff_ns: int) -> list[tuple[int, int, int, bool]]:
    """(start, end, bad slots, open) for each run of consecutive bad slots."""
    found = []
    start, count = None, 0
    for slot in slots:
        if slot.bad:
            start = slot.at_ns if start is None else start
            count += 1
        elif start is not None:
            found.append((start, slot.at_ns, count, False))
            start, count = None, 0
    if start is not None:
        found.append((start, cutoff_ns, count, True))
    return found


def _recovery(episodes: list[tuple[int, int, int, bool]], event_ns: int, cutoff_ns: int,
              sustained_ns: int) -> int | None:
    """The Convergence Recovery Instant: the end of the last episode, validated by a loss-free
    stretch to the window's end at least the validation time long; None when not converged."""
    if not episodes:
        return event_ns if cutoff_ns - event_ns >= sustained_ns else None
    _, end, _, still_open = episodes[-1]
    if still_open or cutoff_ns - max(end, event_ns) < sustained_ns:
        return None
    return max(end, event_ns)


@dataclass(frozen=True)
class _Figures:
    episodes: list[tuple[int, int, int, bool]]
    recovery_ns: int | None
    counted: int                # bad slots up to the recovery (all when not converged)
    first_route_s: float | None


def _figures(slots: list[_Slot], event_ns: int, cutoff_ns: int, sustained_ns: int) -> _Figures:
    episodes = _episodes(slots, cutoff_ns)
    recovery = _recovery(episodes, event_ns, cutoff_ns, sustained_ns) if slots else None
    if recovery is None:
        counted = sum(e[2] for e in episodes)
    else:
        counted = sum(e[2] for e in episodes if e[1] <= recovery)
    if not slots:
        first_route = None
    elif not episodes:
        first_route = 0.0
    else:
        first_route = None if episodes[0][3] else _seconds(max(0, episodes[0][1] - event_ns))
    return _Figures(episodes, recovery, counted, first_route)


def _clean_problem(slots: list[_Slot], method: Method) -> str | None:
    """Why the stretch before the window is not clean: loss, or a probe later than the threshold."""
    problems = []
    lost = sum(s.state == LOST for s in slots)
    if lost:
        problems.append(f"{lost} probe{'s' if lost > 1 else ''} lost in the baseline")
    late = [s.delay_ns for s in slots if s.state == LATE]
    if late:
        problems.append(f"a probe delayed {max(late) / 1e6:.0f} ms in the baseline "
                        f"(limit {method.threshold_ns / 1e6:.0f} ms)")
    return "; ".join(problems) or None


def _worst_flow(slots: list[_Slot], event_ns: int, cutoff_ns: int, method: Method) -> FlowFigures | None:
    if method.flows <= 1:
        return None
    flows = []
    for flow in range(method.flows):
        own = [s for s in slots if s.seq % method.flows == flow]
        if not own:
            continue
        f = _figures(own, event_ns, cutoff_ns, method.sustained_ns)
        flows.append(FlowFigures(flow, f.first_route_s,
                                 None if f.recovery_ns is None else _seconds(f.recovery_ns - event_ns),
                                 _seconds(f.counted * method.flows * method.interval_ns)))
    # Never converged ranks worst; then the latest recovery, then the most loss.
    return max(flows, key=lambda f: (f.rate_derived_s is None, f.rate_derived_s or 0, f.loss_derived_s),
               default=None)


def _longest_gap(arrivals: list[int], event_ns: int, end_ns: int) -> int:
    """Longest time without an arrival, from the last one before the event to the end."""
    previous = max((a for a in arrivals if a <= event_ns), default=event_ns)
    longest = 0
    for a in sorted(a for a in arrivals if event_ns < a <= end_ns):
        longest = max(longest, a - previous)
        previous = a
    return max(longest, end_ns - previous)


def _coverage_problems(probes: DirectionProbes, end_ns: int, cutoff_ns: int, method: Method) -> list[str]:
    problems = []
    if probes.sender_through_ns is not None and probes.sender_through_ns < cutoff_ns:
        problems.append(f"the sender's log ends {(cutoff_ns - probes.sender_through_ns) / 1e6:.0f} ms "
                        "before the window's end")
    if probes.receiver_through_ns is not None and probes.receiver_through_ns < end_ns:
        problems.append(f"the receiver's log ends {(end_ns - probes.receiver_through_ns) / 1e6:.0f} ms "
                        "before the window's end")
    return problems


def analyse_direction(probes: DirectionProbes, event_ns: int, end_ns: int, method: Method,
                      since_ns: int | None = None) -> DirectionResult:
    """The RFC 6412 figures of one direction for one Convergence Event (see the module's docstring).

    `since_ns`: for an event that follows another one in the same run (the restore, the
    failback), the previous window's end. The window then judges every slot from there, so
    nothing falls between two windows; loss that began before this event's stamp is part of
    its figures. For the first event (None), the baseline before it must be clean instead.
    """
    threshold = method.threshold_ns
    cutoff = end_ns - threshold
    judged_from = (event_ns if since_ns is None else min(since_ns, event_ns)) - threshold
    clean_from = judged_from if since_ns is not None or method.baseline_ns <= 0 else event_ns - method.baseline_ns
    arrivals, duplicates = _first_arrivals(probes.received)
    slots = _slots(probes, arrivals, min(clean_from, judged_from), cutoff, method)
    before = [s for s in slots if s.at_ns < judged_from]
    window = [s for s in slots if s.at_ns >= judged_from]
    after_event = [s for s in window if s.at_ns >= event_ns]
    figures = _figures(window, event_ns, cutoff, method.sustained_ns)
    episodes, recovery = figures.episodes, figures.recovery_ns

    problems = []
    if clean_from < judged_from and not any(s.state != MISSED for s in before):
        problems.append("no probes sent in the baseline")
    elif before:
        problems.append(_clean_problem(before, method) or "")
    missed = sum(s.state == MISSED for s in slots)
    if missed > MISSED_SLOTS_ALLOWED:
        problems.append(f"the sender missed {missed} send slots (at most {MISSED_SLOTS_ALLOWED})")
    problems += _coverage_problems(probes, end_ns, cutoff, method)
    if since_ns is None and episodes and episodes[0][0] < event_ns:
        # A probe in flight at the event may be lost by it; one sent earlier than its own transit
        # before the stamp arrived before the fault existed.
        transit = max((s.delay_ns for s in slots if s.state == DELIVERED and s.at_ns < event_ns), default=0)
        early = event_ns - episodes[0][0]
        if early > transit + method.interval_ns:
            problems.append(f"loss began {early / 1e6:.0f} ms before the event's stamp")
    round_end = event_ns + method.flows * method.interval_ns
    until = after_event if recovery is None else [s for s in after_event if s.at_ns < max(recovery, round_end)]
    bad_until = sum(s.bad for s in until)
    delays = [s.delay_ns for s in window if s.delay_ns is not None]
    reordered, highest = 0, -1
    for _, seq in sorted((arrivals[s.seq][1], s.seq) for s in window if s.seq in arrivals):
        reordered += seq < highest
        highest = max(highest, seq)
    return DirectionResult(
        direction=probes.name,
        sent=sum(s.state != MISSED for s in window),
        received=sum(s.state == DELIVERED for s in window),
        lost=sum(s.state == LOST for s in window),
        late=sum(s.state == LATE for s in window),
        missed=sum(s.state == MISSED for s in window),
        duplicates=duplicates,
        reordered=reordered,
        loss_episodes=tuple(LossEpisode(_seconds(s - event_ns), _seconds(e - event_ns), n, o)
                            for s, e, n, o in episodes),
        convergence_packet_loss=figures.counted,
        loss_derived_s=_seconds(figures.counted * method.interval_ns),
        first_route_s=figures.first_route_s,
        rate_derived_s=None if recovery is None else _seconds(recovery - event_ns),
        max_delay_s=_seconds(max(delays)) if delays else None,
        longest_gap_s=_seconds(_longest_gap([r for _, r in arrivals.values()], event_ns, end_ns)),
        invalid="; ".join(p for p in problems if p) or None,
        loss_share=round(bad_until / len(until), 4) if until else (0.0 if window else None),
        worst_flow=_worst_flow(window, event_ns, cutoff, method),
        threshold_s=_seconds(threshold),
        before_event=sum(s.bad for s in window if s.at_ns < event_ns),
    )


@dataclass(frozen=True)
class RunWindows:
    """A run's windows, each direction's figures: they cover it from its baseline to its last probe."""
    failover: list[DirectionResult]
    restore: list[DirectionResult]
    waiting: list[DirectionResult]      # from the restore's convergence to the failback: not judged
    reversion: list[DirectionResult]    # the failback's; empty when nothing was handed back


def run_windows(probes: list[DirectionProbes], method: Method, fault_ns: int, end_ns: int, restore_ns: int | None,
                restore_end_ns: int | None, failback_ns: int | None, stopped_ns: int) -> RunWindows:
    """The fault's window to `end_ns`, the restore's from there to `restore_end_ns`, the wait to the failback
    (or the last probe), and the failback's to `stopped_ns`: each judged from where the one before ended."""
    failover = [analyse_direction(p, fault_ns, end_ns, method) for p in probes]
    if restore_ns is None or restore_end_ns is None:
        return RunWindows(failover, [], [], [])
    restore = [analyse_direction(p, restore_ns, restore_end_ns, method, since_ns=end_ns) for p in probes]
    waited_until = failback_ns if failback_ns is not None else stopped_ns
    waiting = ([analyse_direction(p, restore_end_ns, waited_until, method, since_ns=restore_end_ns) for p in probes]
               if waited_until > restore_end_ns else [])
    reversion = ([analyse_direction(p, failback_ns, stopped_ns, method, since_ns=failback_ns) for p in probes]
                 if failback_ns is not None else [])
    return RunWindows(failover, restore, waiting, reversion)


def invalid_reason(directions: list[DirectionResult]) -> str | None:
    """Why a run's figures can't be trusted; None when they can."""
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
        return Phase(TRAFFIC_RESTORED, max(d.full_convergence_s for d in directions),  # type: ignore[type-var]
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


def checks(directions: list[DirectionResult], target_s: float, event: str = "") -> list[Check]:
    """The verdict: each direction's Full Convergence Time (rate-derived; its worst flow's when later) against
    the target."""
    name = f"{event} rate-derived convergence" if event else "rate-derived convergence"
    return [Check(f"{name} {d.direction}", d.full_convergence_s, target_s, "s")
            for d in directions]


def steady_since(arrivals: list[int], now_ns: int, threshold_ns: int) -> int | None:
    """Since when probes have been arriving without a gap over the threshold; None if not now."""
    if not arrivals or now_ns - arrivals[-1] > threshold_ns:
        return None
    for i in range(len(arrivals) - 1, 0, -1):
        if arrivals[i] - arrivals[i - 1] > threshold_ns:
            return arrivals[i]
    return arrivals[0]
