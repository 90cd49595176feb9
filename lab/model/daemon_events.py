"""Control-plane events on one clock, parsed from what the daemons report.

Pure: each parser takes what an adapter collected (a VICI message, a Docker
event, a log's text or one line of it; FRR's reader keeps a route's header
until its next-hop lines follow) and returns `Event`s stamped in
CLOCK_MONOTONIC nanoseconds, the clock the probes use. Sources that stamp
wall-clock time (Docker, FRR's log) are converted with the offset between
the two clocks, read once per run on the same host. FRR's and keepalived's
events are read twice, live (FRR's log, keepalived's log) and from the
record after the run (FRR's log, the notify hook's lines in Docker's log):
`not_yet_seen` keeps each once.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

# The kinds a timeline knows. Each source maps its own vocabulary onto these.
FAULT = "fault"
RESTORE = "restore"
VRRP_MASTER, VRRP_BACKUP, VRRP_FAULT, VRRP_STOP = "vrrp-master", "vrrp-backup", "vrrp-fault", "vrrp-stop"
IKE_UP, IKE_DOWN, IKE_REKEY = "ike-up", "ike-down", "ike-rekey"
CHILD_UP, CHILD_DOWN = "child-up", "child-down"
BGP_UP, BGP_DOWN = "bgp-up", "bgp-down"
BFD_UP, BFD_DOWN = "bfd-up", "bfd-down"
ROUTE = "route"     # best path changed: bgpd gave zebra a prefix's new next hops, or withdrew it
CONTAINER_PREFIX = "container-"


@dataclass(frozen=True)
class Event:
    t_ns: int        # CLOCK_MONOTONIC
    source: str      # fault, docker, vrrp, vici, frr
    node: str
    kind: str
    detail: str = ""


@dataclass(frozen=True)
class ClockOffset:
    """Wall-clock minus monotonic time, both read on this host at one moment."""
    realtime_minus_monotonic_ns: int

    def to_monotonic(self, realtime_ns: int) -> int:
        return realtime_ns - self.realtime_minus_monotonic_ns

    def to_realtime(self, monotonic_ns: int) -> int:
        return monotonic_ns + self.realtime_minus_monotonic_ns


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def vici_event(label: str, message: dict, node: str, t_ns: int) -> list[Event]:
    """An ike-updown / child-updown / ike-rekey message, stamped when it arrived."""
    up = _text(message.get("up", b"no")) == "yes"
    sas = [(name, sa) for name, sa in message.items() if isinstance(sa, dict)]
    if label == "ike-updown":
        return [Event(t_ns, "vici", node, IKE_UP if up else IKE_DOWN,
                      f"{name} {_text(sa.get('remote-host', b''))}") for name, sa in sas]
    if label == "child-updown":
        found = []
        for name, sa in sas:
            for child in (sa.get("child-sas") or {}).values():
                found.append(Event(t_ns, "vici", node, CHILD_UP if up else CHILD_DOWN,
                                   f"{_text(child.get('name', name))} via {_text(sa.get('remote-host', b''))}"))
        return found
    if label == "ike-rekey":
        return [Event(t_ns, "vici", node, IKE_REKEY, name) for name, _ in sas]
    return []


def docker_event(event: dict, clock: ClockOffset) -> Event | None:
    """A container event (kill, die, pause, start, ...) from the engine's event stream."""
    if event.get("Type") != "container" or "timeNano" not in event:
        return None
    action = str(event.get("Action", "")).split(":")[0]
    if action.startswith("exec_") or action in ("health_status", "attach", "resize", "top"):
        return None
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    node = attributes.get("lab.node", attributes.get("name", "?"))
    detail = f"signal {attributes['signal']}" if "signal" in attributes else ""
    return Event(clock.to_monotonic(int(event["timeNano"])), "docker", node, CONTAINER_PREFIX + action, detail)


_DOCKER_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z (.*)$")
_NOTIFY = re.compile(r"lab-notify: vrrp (master|backup|fault|stop)\b")
_VRRP_KINDS = {"master": VRRP_MASTER, "backup": VRRP_BACKUP, "fault": VRRP_FAULT, "stop": VRRP_STOP}


def _epoch_ns(stamp: str, fraction: str | None, fmt: str) -> int:
    seconds = datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc).timestamp()
    digits = (fraction or "").ljust(9, "0")[:9]
    return int(seconds) * 1_000_000_000 + int(digits)


def _stamped_lines(text: str, stamp: re.Pattern, fmt: str, clock: ClockOffset) -> Iterator[tuple[int, str]]:
    """(monotonic time, rest of the line) for each line that starts with a wall-clock stamp."""
    for line in text.splitlines():
        stamped = stamp.match(line)
        if stamped:
            yield clock.to_monotonic(_epoch_ns(stamped.group(1), stamped.group(2), fmt)), stamped.group(3)


def container_log_events(text: str, node: str, clock: ClockOffset) -> list[Event]:
    """VRRP transitions from a node's log, as Docker stamped it (`timestamps=True`)."""
    found = []
    for t, body in _stamped_lines(text, _DOCKER_STAMP, "%Y-%m-%dT%H:%M:%S", clock):
        notify = _NOTIFY.search(body)
        if notify:
            found.append(Event(t, "vrrp", node, _VRRP_KINDS[notify.group(1)], "keepalived notify"))
    return found


# keepalived's own log (--log-console): the moment it changes state, before it runs the notify hook.
# Its stamp is to the second: a line is stamped when the node's agent read it.
_KEEPALIVED_STATE = re.compile(r"\((\S+)\) Entering (MASTER|BACKUP|FAULT) STATE")


def keepalived_log_event(line: str, node: str, t_ns: int) -> Event | None:
    """A VRRP transition from one line of keepalived's log, read at `t_ns`."""
    state = _KEEPALIVED_STATE.search(line)
    if state is None:
        return None
    return Event(t_ns, "vrrp", node, _VRRP_KINDS[state.group(2).lower()], f"keepalived, group {state.group(1)}")


# FRR stamps its log in the container's local time, which is UTC in the image.
_FRR_STAMP = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)(?:\.(\d+))? (.*)$")
_ADJCHANGE = re.compile(r"%ADJCHANGE: neighbor (\S+?)(?:\(\S*\))? in vrf \S+ (Up|Down)(.*)$")
_BFD_STATE = re.compile(r"state-change: \[(.*?)\] (\S+) -> (\S+)")
_BFD_PEER = re.compile(r"peer:(\S+)")


# Best-path changes, from bgpd's `debug bgp zebra` lines: what it hands zebra for the RIB, so the
# moment BGP's choice changed, on FRR's own ms stamp. Read live by the tail the node's agent already
# runs on this log (inotify: no exec polling the node, so no observer effect on a 2-core machine),
# and again from the file after the run, rather than by polling `show ip route json`: polling would
# exec into every node each interval, and stamp a change only to that interval. FRR 8.4.4 writes
# (as recorded from the image, bgpd message ids in brackets):
#   BGP: [V15FP-4CPVK] Tx route add VRF 0 10.1.0.0/16 metric 0 tag 0 count 2 nhg 0
#   BGP: [JQXM8-V0CKB]   nhop [1]: 10.77.0.3 if 0 VRF 0 wt 0
#   BGP: [JQXM8-V0CKB]   nhop [2]: 10.77.0.4 if 0 VRF 0 wt 0
#   BGP: [G7K80-KF0HM] Tx route delete VRF 0 10.2.0.0/16
# A header and its next hops are lines of their own, so a reader keeps the header until `count` of
# them are read. A next hop that is an interface only has no address (`nhop [1]:  if 5 ...`).
_BGP_MESSAGE = r"^BGP: (?:\[[\w-]+\] )?"
_ROUTE_TX = re.compile(_BGP_MESSAGE + r"Tx route (add|delete) VRF (\d+) (\S+)(?: metric \d+ tag \d+ count (\d+))?")
_ROUTE_NHOP = re.compile(_BGP_MESSAGE + r"\s+nhop \[(\d+)\]:\s*(?:(\S+)\s+)?if (\d+)\b")


def _hop_order(hop: str) -> tuple:
    try:
        return (0, ipaddress.ip_address(hop))
    except ValueError:
        return (1, hop)


@dataclass
class _RouteHeader:
    t_ns: int
    prefix: str
    vrf: str
    count: int
    hops: list[str] = field(default_factory=list)

    def event(self, node: str) -> Event:
        # Sorted: ECMP next hops are a set, and bgpd lists one set in different orders.
        hops = ",".join(sorted(self.hops, key=_hop_order)) or "no next hop"
        return Event(self.t_ns, "frr", node, ROUTE, f"{self.prefix}{_vrf(self.vrf)} via {hops}")


def _vrf(vrf: str) -> str:
    return "" if vrf == "0" else f" vrf {vrf}"


class FrrLogReader:
    """One node's FRR log, fed in pieces (all of it, or one line at a time as a tail reads it):
    BGP session changes, BFD state changes and best-path changes. A route header is held until its
    next hops are read, and stamped with its own line's stamp; one whose next hops never come (the
    text ends, another header or a wrong index cuts in) gives nothing.

    Every `Tx route` is kept, a repeat of the same next hops too: a reader that starts mid-file (the
    live tail) must give what one that read the whole file gives, for the two to be matched."""

    def __init__(self, node: str, clock: ClockOffset):
        self.node = node
        self.clock = clock
        self._header: _RouteHeader | None = None

    def feed(self, text: str) -> list[Event]:
        found = []
        for t, body in _stamped_lines(text, _FRR_STAMP, "%Y/%m/%d %H:%M:%S", self.clock):
            event = self._route(t, body) or _session_event(t, body, self.node)
            if event is not None:
                found.append(event)
        return found

    def _route(self, t: int, body: str) -> Event | None:
        hop = _ROUTE_NHOP.search(body)
        if hop:
            header = self._header
            if header is None or int(hop.group(1)) != len(header.hops) + 1:
                self._header = None
                return None
            header.hops.append(hop.group(2) or f"ifindex {hop.group(3)}")
            return self._complete()
        tx = _ROUTE_TX.search(body)
        if tx is None:
            return None
        action, vrf, prefix, count = tx.groups()
        if action == "delete":
            self._header = None
            return Event(t, "frr", self.node, ROUTE, f"{prefix}{_vrf(vrf)} withdrawn")
        self._header = _RouteHeader(t, prefix, vrf, int(count or 0))
        return self._complete()

    def _complete(self) -> Event | None:
        header = self._header
        if header is None or len(header.hops) < header.count:
            return None
        self._header = None
        return header.event(self.node)


def _session_event(t: int, body: str, node: str) -> Event | None:
    adj = _ADJCHANGE.search(body)
    if adj:
        kind = BGP_UP if adj.group(2) == "Up" else BGP_DOWN
        return Event(t, "frr", node, kind, f"{adj.group(1)}{adj.group(3)}".strip())
    bfd = _BFD_STATE.search(body)
    if bfd and bfd.group(3) in ("up", "down"):
        peer = _BFD_PEER.search(bfd.group(1))
        return Event(t, "frr", node, BFD_UP if bfd.group(3) == "up" else BFD_DOWN,
                     f"{peer.group(1) if peer else bfd.group(1)} {bfd.group(2)} -> {bfd.group(3)}")
    return None


def frr_log_events(text: str, node: str, clock: ClockOffset) -> list[Event]:
    """BGP session changes (log-neighbor-changes), BFD state changes (debug bfd peer) and best-path
    changes (debug bgp zebra) in the whole of a log's text."""
    return FrrLogReader(node, clock).feed(text)


# How far apart two reports of one event may be stamped. FRR's: one line of its log, read live and
# read again after the run, so the same stamp and detail. A VRRP transition: keepalived's log line,
# read live, then its notify hook's line in Docker's log, a few ms later (the hook is a process of
# its own); the same node and kind, whatever the detail (a gateway's notify names no group).
SAME_EVENT_WITHIN_NS = {"frr": 0, "vrrp": 1_000_000_000}


def _same(a: Event, b: Event) -> bool:
    within = SAME_EVENT_WITHIN_NS.get(a.source)
    return (within is not None and (a.source, a.node, a.kind) == (b.source, b.node, b.kind)
            and (a.source == "vrrp" or a.detail == b.detail) and abs(a.t_ns - b.t_ns) <= within)


def twin_of(event: Event, candidates) -> Event | None:
    """The candidate nearest in time that reports the same event, if one does."""
    return min((c for c in candidates if _same(event, c)), key=lambda c: abs(c.t_ns - event.t_ns), default=None)


def not_yet_seen(found: list[Event], seen: list[Event]) -> list[Event]:
    """The events of `found` that no event of `seen` already reports, each seen event standing for
    one found event at most. Sources read once only (docker, vici) are all kept."""
    unused = list(seen)
    kept = []
    for event in sorted(found, key=lambda e: e.t_ns):
        twin = twin_of(event, unused)
        if twin is None:
            kept.append(event)
        else:
            unused.remove(twin)
    return kept
