"""What the probes of one direction recorded: plain data, filled by the run layer (lab/run/observe.py)
and read by the failover maths (lab/failover/metrics.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

Sent = tuple[int, int]               # slot (sequence number), sent_ns
Received = tuple[int, int, int]      # slot, sent_ns (as the probe carried it), recv_ns


@dataclass
class DirectionProbes:
    """Everything one direction's probes saw: what the sender sent, what the receiver got."""
    name: str
    sent: list[Sent] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    first_slot_ns: int | None = None        # when slot 0 was due; None: read from `sent`
    # How far each log is known to be complete (the probe's heartbeats); None: complete.
    sender_through_ns: int | None = None
    receiver_through_ns: int | None = None
