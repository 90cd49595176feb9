"""Outage maths on synthetic probe streams and on one recorded real run."""
import pytest
from recorded import DATA, recorded_events, recorded_probes

from lab.events import Event
from lab.timeline import (
    NS,
    Check,
    DirectionProbes,
    analyse_direction,
    breakdown,
    checks,
    percentile,
    steady_since,
)

MS = 1_000_000
INTERVAL = 20 * MS
FAULT = 10 * NS          # the fault happens 10 s into the clock
LATENCY = 3 * MS


def stream(seconds_before: float, seconds_after: float, lost=lambda t: False, name="a → b"):
    """Probes every 20 ms around the fault; `lost(t)` (seconds after the fault) drops a packet."""
    probes = DirectionProbes(name)
    start = FAULT - int(seconds_before * NS)
    count = int((seconds_before + seconds_after) * NS / INTERVAL)
    for seq in range(count):
        sent = start + seq * INTERVAL
        probes.sent.append((seq, sent))
        if not lost((sent - FAULT) / NS):
            probes.received.append((seq, sent, sent + LATENCY))
    end = start + count * INTERVAL
    return probes, end


def test_no_loss_means_no_interruption():
    probes, end = stream(2, 5)
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    assert result.lost == 0
    assert not result.interrupted
    assert result.restored_s == 0.0
    assert result.outage_s == pytest.approx(0.02, abs=0.001)
    assert result.first_loss_s is None


def test_a_gap_gives_outage_restore_time_and_loss():
    probes, end = stream(2, 5, lost=lambda t: 0 <= t < 1.5)
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    assert result.interrupted
    assert result.lost == 75                         # 1.5 s of 20 ms probes
    assert result.outage_s == pytest.approx(1.52, abs=0.001)   # last before -> first after
    assert result.restored_s == pytest.approx(1.5 + LATENCY / NS, abs=0.001)
    assert result.first_loss_s == pytest.approx(0.0, abs=0.001)


def test_loss_in_one_direction_only():
    forward, end = stream(2, 5, lost=lambda t: 0.2 <= t < 0.9, name="a → b")
    backward, _ = stream(2, 5, name="b → a")
    results = [analyse_direction(p, FAULT, end, INTERVAL) for p in (forward, backward)]
    assert results[0].interrupted and results[0].lost == 35
    assert not results[1].interrupted and results[1].lost == 0
    found = checks(results, breakdown([], FAULT, "gw", results), target_s=2.0, interval_s=0.02)
    assert all(c.passed for c in found if "b → a" in c.name)


def test_reordered_probes_are_counted_not_lost():
    probes, end = stream(2, 3)
    # Swap the arrival times of two packets after the fault.
    i = next(i for i, r in enumerate(probes.received) if r[1] > FAULT)
    a, b = probes.received[i], probes.received[i + 1]
    probes.received[i] = (a[0], a[1], b[2] + MS)
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    assert result.reordered == 1
    assert result.lost == 0
    assert not result.interrupted


def test_duplicates_count_once():
    probes, end = stream(1, 2)
    probes.received.append(probes.received[5])
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    assert result.received == len(probes.sent)
    assert result.lost == 0


def test_a_run_that_never_recovers_is_not_restored_and_fails():
    probes, end = stream(2, 8, lost=lambda t: t >= 0)
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    assert result.restored_s is None and not result.restored
    assert result.outage_s == pytest.approx((end - FAULT) / NS + 0.02 - LATENCY / NS, abs=0.01)
    found = checks([result], breakdown([], FAULT, "gw", [result]), target_s=2.0, interval_s=0.02)
    restored = next(c for c in found if c.name.startswith("restored"))
    assert restored.measured is None and not restored.passed


def test_two_interruptions_restore_after_the_last_and_outage_is_the_longest():
    probes, end = stream(2, 6, lost=lambda t: 0 <= t < 0.5 or 2.0 <= t < 3.0)
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    assert result.outage_s == pytest.approx(1.02, abs=0.001)
    assert result.restored_s == pytest.approx(3.0 + LATENCY / NS, abs=0.001)
    assert result.lost == 75


def test_breakdown_reads_phases_from_events_in_causal_order():
    probes, end = stream(1, 4, lost=lambda t: t < 2.0)
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    at = lambda s: FAULT + int(s * NS)
    events = [
        Event(at(-0.5), "frr", "onprem-0", "bgp-up", "earlier, ignored"),
        Event(at(0.7), "frr", "onprem-0", "bfd-down"),
        Event(at(0.9), "vrrp", "gw-1", "vrrp-master"),
        Event(at(0.95), "vici", "onprem-0", "child-up"),
        Event(at(1.8), "frr", "onprem-0", "bgp-up"),
    ]
    phases = {p.name: p.at_s for p in breakdown(events, FAULT, "gw-0", [result])}
    assert phases["detected"] == pytest.approx(0.7)
    assert phases["public IP moved"] == pytest.approx(0.9)
    assert phases["IKE re-established"] == pytest.approx(0.95)
    assert phases["BGP Established"] == pytest.approx(1.8)
    assert phases["traffic restored"] == pytest.approx(2.0 + LATENCY / NS, abs=0.001)


def test_missing_events_are_not_observed_rather_than_made_up():
    probes, end = stream(1, 3)
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    # The target's own VRRP master event does not count as the IP moving away.
    phases = breakdown([Event(FAULT + NS, "vrrp", "gw-0", "vrrp-master")], FAULT, "gw-0", [result])
    moved = next(p for p in phases if p.name == "public IP moved")
    assert moved.at_s is None and moved.evidence == "not observed"


def test_checks_apply_the_target_and_a_loss_budget():
    assert Check("x", 1.9, 2.0, "s").passed
    assert not Check("x", 2.1, 2.0, "s").passed
    assert not Check("x", None, 2.0, "s").passed
    probes, end = stream(1, 4, lost=lambda t: 0 <= t < 1.0)
    result = analyse_direction(probes, FAULT, end, INTERVAL)
    found = {c.name: c for c in checks([result], breakdown([], FAULT, "gw", [result]), 2.0, 0.02)}
    assert found["lost a → b"].limit == 100 and found["lost a → b"].passed
    # Interrupted, yet nothing observed the fault: detection fails.
    assert not found["detected"].passed


def test_percentiles_rank_a_never_restored_run_last():
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == 5.0
    assert percentile([1.0, None, 3.0], 50) == 3.0
    assert percentile([1.0, None, 3.0], 95) is None
    assert percentile([], 50) is None


def test_steady_since_finds_the_start_of_the_current_flow():
    arrivals = [0, 20, 40, 500, 520, 540]
    assert steady_since(arrivals, 550, 60) == 500
    assert steady_since(arrivals, 700, 60) is None
    assert steady_since([], 10, 60) is None
    assert steady_since([0, 20, 40], 45, 60) == 0


def test_a_recorded_kill_run():
    """A real `lab failover --fault kill --profile fast` run, re-analysed."""
    data = DATA
    probes = recorded_probes()
    events = recorded_events()
    interval = int(data["interval_s"] * NS)
    results = [analyse_direction(p, data["fault_ns"], data["end_ns"], interval) for p in probes]
    for p, r in zip(probes, results):
        assert r.interrupted and r.restored
        assert r.lost == r.sent - r.received > 0
        # The outage can't be shorter than the lost probes' worth of sending.
        longest_loss_run = max_consecutive_lost(p)
        assert r.outage_s >= longest_loss_run * data["interval_s"]
    phases = [p for p in breakdown(events, data["fault_ns"], data["target"], results)]
    times = [p.at_s for p in phases]
    assert None not in times
    # Causal order: fault, detection, IP moved, IKE up, BGP up, traffic back.
    assert times == sorted(times)
    assert phases[-1].at_s == max(r.restored_s for r in results)


def max_consecutive_lost(probes: DirectionProbes) -> int:
    got = {r[0] for r in probes.received}
    best = run = 0
    for seq, _ in sorted(probes.sent):
        run = run + 1 if seq not in got else 0
        best = max(best, run)
    return best
