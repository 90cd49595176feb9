"""Synthetic probe streams around a fault, for the timeline and report tests."""
from lab.failover.metrics import NS, Handover, Method
from lab.model.probes import DirectionProbes

MS = 1_000_000
INTERVAL = 20 * MS
FAULT = 10 * NS          # the fault happens 10 s into the clock
LATENCY = 3 * MS
# Short enough for short streams; the RFC's 5 s has tests of its own.
METHOD = Method(interval_ns=INTERVAL, sustained_ns=2 * NS, baseline_ns=1 * NS)
# gw-0 fails, gw-1 takes over; the device "dev" has a tunnel to the gateway.
HANDOVER = Handover(target="gw-0", standbys=("gw-1",), devices=("dev",), public_ip="198.51.100.100",
                    gateway_bgp_ip="10.1.255.30", device_bgp_ips=("10.10.255.1",))


def at(seconds: float) -> int:
    """A time `seconds` after the fault."""
    return FAULT + round(seconds * NS)


def stream(seconds_before: float, seconds_after: float, lost=lambda t: False, delay=lambda t: LATENCY,
           name: str = "a → b") -> tuple[DirectionProbes, int]:
    """Probes every 20 ms around the fault; `lost(t)` drops the probe sent t s after the fault,
    `delay(t)` is its one-way delay in ns. Returns the probes and the window's end."""
    probes = DirectionProbes(name)
    start = FAULT - round(seconds_before * NS)
    count = round((seconds_before + seconds_after) * NS / INTERVAL)
    for seq in range(count):
        sent = start + seq * INTERVAL
        probes.sent.append((seq, sent))
        t = (sent - FAULT) / NS
        if not lost(t):
            probes.received.append((seq, sent, sent + delay(t)))
    return probes, start + count * INTERVAL


def between(a: float, b: float):
    """A `lost` predicate: probes sent from a s to before b s after the fault (with float slack)."""
    return lambda t: a - 1e-9 <= t < b - 1e-9
