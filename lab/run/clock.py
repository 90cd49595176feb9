"""The lab's one clock: the engine's CLOCK_MONOTONIC, read from wherever `lab` runs.

Probes and node events are stamped inside containers, which share the
engine kernel's monotonic clock. `lab` itself (fault, restore, hand-over,
"now") may run elsewhere: on a laptop in front of Docker Desktop's VM, or
across a TCP or SSH link. Its stamps are moved onto the engine's clock by
an offset measured as NTP does: timed round trips to a node, keeping the
shortest, whose half is the uncertainty. When the offset is within that
uncertainty of zero, the two are one clock (the engine runs on this
machine's kernel) and stamps are used as read.

Pure: `estimate` takes the samples an adapter collected.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from lab.model.daemon_events import ClockOffset

# (asked on this machine, engine monotonic, engine wall clock, answered on this machine), ns
Sample = tuple[int, int, int, int]
NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class LabClock:
    engine_minus_client_ns: int     # 0 when this machine and the engine share one clock
    uncertainty_ns: int             # half the shortest round trip; 0 when shared
    wall: ClockOffset               # the engine's wall clock minus its monotonic clock
    round_trip_ns: int

    @property
    def shared(self) -> bool:
        return self.engine_minus_client_ns == 0 and self.uncertainty_ns == 0

    def now_ns(self) -> int:
        """This moment on the engine's monotonic clock."""
        return self.from_client(time.monotonic_ns())

    def from_client(self, client_monotonic_ns: int) -> int:
        return client_monotonic_ns + self.engine_minus_client_ns

    @property
    def summary(self) -> str:
        if self.shared:
            return ("one clock: the engine's CLOCK_MONOTONIC, shared by `lab` and the nodes "
                    f"(checked to ±{self.round_trip_ns / 2 / NS_PER_MS:.2f} ms)")
        return (f"the engine's CLOCK_MONOTONIC; `lab`'s own stamps (fault, restore, hand-over) are moved onto it "
                f"with an offset known to ±{self.uncertainty_ns / NS_PER_MS:.2f} ms")


def estimate(samples: list[Sample]) -> LabClock:
    """The offset from the shortest round trip; raises ValueError without samples."""
    if not samples:
        raise ValueError("no clock samples")
    asked, engine_monotonic, engine_wall, answered = min(samples, key=lambda s: s[3] - s[0])
    round_trip = answered - asked
    half = round_trip // 2
    offset = engine_monotonic - (asked + half)
    wall = ClockOffset(engine_wall - engine_monotonic)
    if abs(offset) <= half:
        return LabClock(0, 0, wall, round_trip)
    return LabClock(offset, half, wall, round_trip)
