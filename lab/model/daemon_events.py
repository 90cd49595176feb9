"""Control-plane events on one clock, parsed from what the daemons report.

Pure: each parser takes what an adapter collected (a VICI message, a Docker
event, a log's text or one line of it) and returns `Event`s stamped in
CLOCK_MONOTONIC nanoseconds, the clock the probes use. Sources that stamp
wall-clock time (Docker, FRR's log) are converted with the offset between
the two clocks, read once per run on the same host. FRR's and keepalived's
events are read twice, live (FRR's log, keepalived's log) and from the
record after the run (FRR's log, the notify hook's lines in Docker's log):
`not_yet_seen` keeps each once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
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


def frr_log_events(text: str, node: str, clock: ClockOffset) -> list[Event]:
    """BGP session changes (log-neighbor-changes) and BFD state changes (debug bfd peer)."""
    found = []
    for t, body in _stamped_lines(text, _FRR_STAMP, "%Y/%m/%d %H:%M:%S", clock):
        adj = _ADJCHANGE.search(body)
        if adj:
            kind = BGP_UP if adj.group(2) == "Up" else BGP_DOWN
            found.append(Event(t, "frr", node, kind, f"{adj.group(1)}{adj.group(3)}".strip()))
            continue
        bfd = _BFD_STATE.search(body)
        if bfd and bfd.group(3) in ("up", "down"):
            peer = _BFD_PEER.search(bfd.group(1))
            found.append(Event(t, "frr", node, BFD_UP if bfd.group(3) == "up" else BFD_DOWN,
                               f"{peer.group(1) if peer else bfd.group(1)} {bfd.group(2)} -> {bfd.group(3)}"))
    return found


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
