"""Convergence maths (RFC 6412 terms) on synthetic probe streams, hand-made adversarial cases,
random streams (Hypothesis) and one recorded real run."""
import dataclasses
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recorded import DATA, recorded_events, recorded_probes
from recorded import HANDOVER as RECORDED_HANDOVER
from streams import FAULT, HANDOVER, INTERVAL, LATENCY, METHOD, MS, at, between, stream

from lab.events import Event
from lab.experiment import handover_of
from lab.timeline import (
    NS,
    Check,
    DirectionProbes,
    Method,
    analyse_direction,
    breakdown,
    checks,
    invalid_reason,
    observed_order,
    steady_since,
)
from lab.topology import load_plan

RFC_METHOD = dataclasses.replace(METHOD, sustained_ns=5 * NS)


def analyse(probes, end, method=METHOD, event=FAULT):
    return analyse_direction(probes, event, end, method)


# --- the figures --------------------------------------------------------------------


def test_no_loss_converges_at_once_and_reports_delay():
    result = analyse(*stream(2, 5))
    assert (result.lost, result.interrupted, result.loss_episodes) == (0, False, ())
    assert result.rate_derived_s == 0.0 and result.first_route_s == 0.0 and result.loss_derived_s == 0.0
    assert result.max_delay_s == pytest.approx(LATENCY / NS)
    assert result.invalid is None


def test_a_gap_gives_every_figure():
    result = analyse(*stream(2, 5, lost=between(0, 1.5)))
    assert result.lost == result.convergence_packet_loss == 75               # 1.5 s of 20 ms probes
    (episode,) = result.loss_episodes
    assert (episode.start_s, episode.end_s, episode.probes, episode.open) == (0.0, 1.5, 75, False)
    assert result.rate_derived_s == result.first_route_s == 1.5
    assert result.loss_derived_s == pytest.approx(1.5)
    assert result.longest_gap_s == pytest.approx(1.52)                         # last before -> first after


def test_loss_that_starts_after_a_full_validation_time_was_not_caused_by_the_event():
    # Hypothesis found it: clean traffic for the whole Sustained Convergence Validation Time after
    # the event, then a loss that never ends. The event interrupted nothing; the loss is another story.
    result = analyse(*stream(2, 12, lost=between(6, 12)), method=RFC_METHOD)
    assert result.rate_derived_s == result.first_route_s == result.loss_derived_s == 0.0
    assert result.convergence_packet_loss == 0 and result.loss_episodes[0].open


def test_a_late_probe_in_the_middle_of_a_gap_is_delayed_not_a_recovery():
    # Once, one late probe cut "the outage" from 1.54 s to 0.79 s. Here it is a probe in flight at the
    # fault, held up and delivered 0.77 s later, and one sent in the gap that turns up late.
    probes, end = stream(2, 5, lost=between(0, 1.5))
    before = analyse(probes, end)
    stuck = next(r for r in probes.received if r[1] == at(-0.02))
    probes.received.remove(stuck)
    probes.received.append((stuck[0], stuck[1], at(0.77)))
    probes.received.append((101, at(0.02), at(0.78)))    # seq 100 is sent at the fault
    result = analyse(probes, end)
    assert result.rate_derived_s == before.rate_derived_s == 1.5
    assert result.loss_derived_s == pytest.approx(1.48)   # that one probe was delayed, not lost
    assert [(e.start_s, e.end_s, e.probes) for e in result.loss_episodes] == [(0.0, 0.02, 1), (0.04, 1.5, 73)]
    assert result.first_route_s == 0.02
    assert result.max_delay_s == pytest.approx(0.79) and result.delayed == 2
    # The old headline figure, now secondary, is still cut by the late arrivals.
    assert (before.longest_gap_s, result.longest_gap_s) == (pytest.approx(1.52), pytest.approx(0.807))


def test_a_window_ending_70_ms_after_the_last_arrival_is_converged():
    probes, _ = stream(1, 4, lost=between(0, 1.0))
    end = max(r[2] for r in probes.received) + 70 * MS
    probes.sent = [s for s in probes.sent if s[1] < end]
    result = analyse(probes, end)
    assert result.converged and result.rate_derived_s == 1.0
    assert result.lost == 50                               # the last probes in flight are not judged


def test_two_lost_probes_are_an_interruption():
    result = analyse(*stream(2, 5, lost=between(0.5, 0.54)))
    assert result.interrupted and result.lost == 2
    assert [(e.start_s, e.end_s, e.probes) for e in result.loss_episodes] == [(0.5, 0.54, 2)]
    assert result.rate_derived_s == result.first_route_s == 0.54
    assert result.loss_derived_s == pytest.approx(0.04)
    apart = analyse(*stream(2, 5, lost=lambda t: between(0.5, 0.52)(t) or between(0.6, 0.62)(t)))
    assert len(apart.loss_episodes) == 2 and apart.rate_derived_s == 0.62 and apart.first_route_s == 0.52


def test_a_100_ms_receiver_stall_without_loss_reads_as_delay():
    # The receiver stops reading for 100 ms, then gets everything at once.
    stall = lambda t: at(0.6) - at(t) + LATENCY if 0.5 <= t < 0.6 else LATENCY
    probes, end = stream(2, 5)
    probes.received = [(seq, sent, sent + stall((sent - FAULT) / NS)) for seq, sent, _ in probes.received]
    result = analyse(probes, end)
    assert not result.interrupted and result.rate_derived_s == 0.0 and result.loss_derived_s == 0.0
    assert result.max_delay_s == pytest.approx(0.103)
    assert result.delayed == 1                                 # only one past the 100 ms limit
    assert result.longest_gap_s == pytest.approx(0.12, abs=0.001)


def test_a_3_probe_blip_after_the_sustained_time_does_not_move_convergence():
    lost = lambda t: between(0, 0.5)(t) or between(6.0, 6.06)(t)
    result = analyse(*stream(2, 12, lost=lost), method=RFC_METHOD)
    assert result.rate_derived_s == 0.5                        # 5.5 s clean afterwards: validated
    assert result.convergence_packet_loss == 25 and result.loss_derived_s == pytest.approx(0.5)
    assert result.lost == 28 and len(result.loss_episodes) == 2
    # Within the Sustained Convergence Validation Time, the same blip does count.
    early = analyse(*stream(2, 12, lost=lambda t: between(0, 0.5)(t) or between(3.0, 3.06)(t)), method=RFC_METHOD)
    assert early.rate_derived_s == 3.06 and early.convergence_packet_loss == 28


def test_loss_before_the_fault_makes_the_run_invalid_and_is_never_folded_in():
    result = analyse(*stream(2, 5, lost=between(-0.8, -0.6)))
    assert result.invalid == "10 probes lost in the baseline"
    assert not result.interrupted and result.rate_derived_s == 0.0
    spanning = analyse(*stream(2, 5, lost=between(-0.5, 0.5)))
    assert spanning.invalid == "20 probes lost in the baseline"        # sent -1.0 s to -0.1 s
    assert spanning.loss_episodes[0].start_s == 0.0 and spanning.convergence_packet_loss == 25
    assert invalid_reason([spanning]) == f"a → b: {spanning.invalid}"
    assert invalid_reason([analyse(*stream(2, 5))]) is None


def test_delay_before_the_fault_makes_the_run_invalid():
    result = analyse(*stream(2, 5, delay=lambda t: 150 * MS if -0.5 <= t < -0.4 else LATENCY))
    assert result.invalid == "a probe delayed 150 ms in the baseline (limit 100 ms)"


def test_a_probe_in_flight_at_the_fault_is_neither_baseline_nor_outage():
    result = analyse(*stream(2, 5, lost=between(-0.02, -0.01)))
    assert result.invalid is None and result.lost == 0


def test_no_probes_at_all():
    result = analyse(DirectionProbes("a → b"), at(5))
    assert (result.sent, result.lost, result.rate_derived_s, result.first_route_s, result.max_delay_s) == \
        (0, 0, None, None, None)
    assert result.invalid == "no probes sent in the baseline"
    assert result.longest_gap_s == 5.0


def test_a_direction_that_never_converges():
    probes, end = stream(2, 8, lost=lambda t: t >= 0)
    result = analyse(probes, end)
    assert not result.converged and result.rate_derived_s is None and result.first_route_s is None
    (episode,) = result.loss_episodes
    assert episode.open and episode.end_s == pytest.approx(8 - 0.1)      # the window's judged end
    assert result.loss_derived_s == pytest.approx(result.lost * 0.02)
    found = checks([result], target_s=2.0)
    assert found[0].measured is None and not found[0].passed


def test_loss_too_close_to_the_end_is_not_validated():
    result = analyse(*stream(2, 3, lost=between(1.5, 2.0)))
    assert result.rate_derived_s is None and result.first_route_s == 2.0


def test_reordered_and_duplicate_probes_are_counted_not_lost():
    probes, end = stream(2, 3)
    i = next(i for i, r in enumerate(probes.received) if r[1] > FAULT)
    a, b = probes.received[i], probes.received[i + 1]
    probes.received[i] = (a[0], a[1], b[2] + MS)
    probes.received.append(probes.received[i + 5])
    result = analyse(probes, end)
    assert (result.reordered, result.duplicates, result.lost, result.interrupted) == (1, 1, 0, False)


def test_the_same_function_measures_the_failback():
    # Fault at 0, a 1 s outage; failback at 10 s, a 0.3 s outage.
    probes, end = stream(2, 20, lost=lambda t: between(0, 1.0)(t) or between(10.0, 10.3)(t))
    failover = analyse(probes, at(9))
    reversion = analyse(probes, end, event=at(10))
    assert failover.rate_derived_s == 1.0 and failover.lost == 50
    assert reversion.rate_derived_s == pytest.approx(0.3) and reversion.lost == 15 and reversion.invalid is None


def test_checks_use_the_rate_derived_figure_only():
    assert Check("x", 1.9, 2.0, "s").passed
    assert not Check("x", 2.1, 2.0, "s").passed
    assert not Check("x", None, 2.0, "s").passed
    results = [analyse(*stream(2, 5, lost=between(0, 1.0))), analyse(*stream(2, 5, lost=between(0, 2.5), name="b → a"))]
    found = checks(results, target_s=2.0)
    assert [(c.name, c.measured, c.passed) for c in found] == [
        ("rate-derived convergence a → b", 1.0, True), ("rate-derived convergence b → a", 2.5, False)]


def test_steady_since_finds_the_start_of_the_current_flow():
    arrivals = [0, 20, 40, 500, 520, 540]
    assert steady_since(arrivals, 550, 60) == 500
    assert steady_since(arrivals, 700, 60) is None
    assert steady_since([], 10, 60) is None
    assert steady_since([0, 20, 40], 45, 60) == 0


# --- the breakdown ------------------------------------------------------------------


def converged_after(seconds: float):
    return [analyse(*stream(1, 5, lost=between(0, seconds)))]


def phases_of(events, directions=None, handover=HANDOVER, until=at(5)):
    return {p.name: p for p in breakdown(events, FAULT, until, handover, directions or converged_after(2.0))}


def test_breakdown_reads_each_phase_on_the_node_and_session_that_matter():
    events = [
        Event(at(-0.5), "frr", "dev", "bgp-up", "10.1.255.30"),                    # before the fault
        Event(at(0.02), "frr", "vnet-router", "bgp-down", "10.1.255.4 Peer closed the session"),
        Event(at(0.7), "frr", "dev", "bfd-down", "10.1.255.30 up -> down"),
        Event(at(0.9), "vrrp", "gw-1", "vrrp-master", "keepalived notify"),
        Event(at(0.95), "vici", "dev", "child-up", "tunnel via 198.51.100.100"),
        Event(at(1.2), "frr", "vnet-router", "bgp-up", "10.1.255.5"),               # the VNet router's iBGP
        Event(at(1.8), "frr", "gw-1", "bgp-up", "10.10.255.1"),
        Event(at(6.0), "frr", "dev", "bgp-up", "10.1.255.30"),                     # after the window
    ]
    phases = phases_of(events)
    assert phases["detected"].at_s == 0.02
    assert (phases["public IP moved"].at_s, phases["public IP moved"].evidence) == (0.9, "gw-1: vrrp-master keepalived notify")
    assert phases["IKE re-established"].at_s == 0.95
    assert (phases["BGP Established"].at_s, phases["BGP Established"].evidence) == (1.8, "gw-1: bgp-up 10.10.255.1")
    assert phases["traffic restored"].at_s == 2.0
    assert not any(p.out_of_order for p in phases.values())


def test_events_on_the_wrong_node_or_session_are_not_phases():
    events = [
        Event(at(0.5), "vrrp", "gw-0", "vrrp-master"),                      # the target itself
        Event(at(0.6), "vici", "dev", "child-up", "other via 203.0.113.9"),   # a tunnel to another gateway
        Event(at(0.7), "vici", "gw-0", "child-up", "tunnel via 198.51.100.20"),
        Event(at(0.8), "frr", "vnet-router", "bgp-up", "10.1.255.5"),
        Event(at(0.9), "frr", "gw-1", "bgp-up", "10.1.255.10"),              # the standby's iBGP, not the device's
    ]
    phases = phases_of(events)
    for name in ("public IP moved", "IKE re-established", "BGP Established"):
        assert phases[name].at_s is None and phases[name].evidence == "not observed"


def test_phases_are_found_independently_and_shown_out_of_order():
    # BGP comes up over an old session before the IP moves: shown as it happened, flagged.
    events = [
        Event(at(0.3), "frr", "dev", "bgp-up", "10.1.255.30"),
        Event(at(0.5), "vici", "dev", "child-up", "tunnel via 198.51.100.100"),
        Event(at(0.9), "vrrp", "gw-1", "vrrp-master"),
    ]
    phases = breakdown(events, FAULT, at(5), HANDOVER, converged_after(2.0))
    flags = {p.name: (p.at_s, p.out_of_order) for p in phases}
    assert flags["public IP moved"] == (0.9, False)
    assert flags["IKE re-established"] == (0.5, True) and flags["BGP Established"] == (0.3, True)
    assert flags["traffic restored"] == (2.0, False)
    assert observed_order(phases) == ["fault injected", "BGP Established", "IKE re-established", "detected",
                                      "public IP moved", "traffic restored"]


def test_with_several_standbys_the_one_that_took_the_ip_is_the_one_that_counts():
    handover = dataclasses.replace(HANDOVER, standbys=("gw-1", "gw-2"))
    events = [
        Event(at(0.5), "vici", "gw-2", "child-up", "tunnel via 198.51.100.20"),
        Event(at(0.6), "frr", "gw-2", "bgp-up", "10.10.255.1"),
        Event(at(0.8), "vrrp", "gw-1", "vrrp-master"),
        Event(at(0.9), "vici", "gw-1", "child-up", "tunnel via 198.51.100.20"),
        Event(at(1.1), "frr", "gw-1", "bgp-up", "10.10.255.1"),
    ]
    phases = phases_of(events, handover=handover)
    assert phases["IKE re-established"].at_s == 0.9 and phases["BGP Established"].at_s == 1.1


def test_traffic_not_restored_when_a_direction_never_converges():
    stuck = [analyse(*stream(1, 5, lost=lambda t: t >= 0))]
    assert phases_of([], directions=stuck)["traffic restored"].at_s is None


# --- random streams -----------------------------------------------------------------

PROPERTIES = settings(max_examples=200, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
# Runs of delivered and of lost probes, as outages make them: (length, lost, a late probe's place and delay).
RUNS = st.lists(st.tuples(st.integers(1, 40), st.booleans(), st.integers(0, 39), st.integers(0, 400)),
                max_size=10)


@st.composite
def streams(draw, jitter_ms: int = 0):
    """A random periodic stream (optionally with sender jitter) with outages, blips, late probes, a duplicate
    and arrivals out of order, an event time inside it, a window end, and a method."""
    chance = random.Random(draw(st.integers(0, 2**32)))
    base = draw(st.integers(0, 10 * NS))
    probes = DirectionProbes("a → b")
    for length, lost, late_at, late_ms in draw(RUNS):
        for i in range(length):
            seq = len(probes.sent)
            sent = base + seq * INTERVAL + chance.randint(0, jitter_ms * MS)
            probes.sent.append((seq, sent))
            if not lost:
                probes.received.append((seq, sent, sent + (late_ms * MS if i == late_at else LATENCY)))
    if probes.received and draw(st.booleans()):
        probes.received.append(chance.choice(probes.received))                 # a duplicate
    chance.shuffle(probes.received)
    count = len(probes.sent)
    event = base + draw(st.integers(0, max(1, count // 2))) * INTERVAL + draw(st.integers(0, INTERVAL - 1))
    end = base + count * INTERVAL + draw(st.integers(0, 10)) * INTERVAL
    sustained = draw(st.sampled_from([1, 3, 5, 10, 25])) * INTERVAL
    return probes, event, end, Method(INTERVAL, sustained, baseline_ns=draw(st.sampled_from([0, NS // 2])))


@PROPERTIES
@given(streams(), st.data())
def test_a_late_arrival_of_a_probe_not_lost_in_the_window_changes_no_loss_figure(case, data):
    """A late duplicate, or a probe in flight at the event arriving mid-gap, never reduces the loss-derived
    figure (nor changes any other loss figure): the bug where one late probe halved "the outage"."""
    probes, event, end, method = case
    before = analyse_direction(probes, event, end, method)
    candidates = [s for s in probes.sent if s[1] < event or any(r[0] == s[0] for r in probes.received)]
    if not candidates:
        return
    seq, sent = data.draw(st.sampled_from(candidates))
    late = DirectionProbes(probes.name, probes.sent, probes.received + [(seq, sent, sent + data.draw(st.integers(0, 3 * NS)))])
    after = analyse_direction(late, event, end, method)
    assert after.loss_derived_s == before.loss_derived_s
    assert (after.lost, after.loss_episodes, after.rate_derived_s, after.first_route_s) == \
        (before.lost, before.loss_episodes, before.rate_derived_s, before.first_route_s)


@PROPERTIES
@given(streams(), st.data())
def test_a_lost_probe_that_turns_up_late_is_delayed_and_makes_no_figure_worse(case, data):
    probes, event, end, method = case
    before = analyse_direction(probes, event, end, method)
    delivered = {r[0] for r in probes.received}
    lost = [s for s in probes.sent if s[0] not in delivered and event <= s[1] < end - method.delay_limit_ns]
    if not lost:
        return
    seq, sent = data.draw(st.sampled_from(lost))
    late = DirectionProbes(probes.name, probes.sent, probes.received + [(seq, sent, sent + 2 * NS)])
    after = analyse_direction(late, event, end, method)
    assert after.lost == before.lost - 1
    assert after.loss_derived_s <= before.loss_derived_s
    if before.rate_derived_s is not None:
        assert after.rate_derived_s is not None and after.rate_derived_s <= before.rate_derived_s


@PROPERTIES
@given(streams())
def test_loss_derived_is_at_most_rate_derived(case):
    result = analyse_direction(*case)
    if result.rate_derived_s is not None:
        assert result.loss_derived_s <= result.rate_derived_s + 1e-9


@PROPERTIES
@given(streams(jitter_ms=19))
def test_with_sender_jitter_loss_derived_exceeds_rate_derived_by_less_than_one_interval(case):
    result = analyse_direction(*case)
    if result.rate_derived_s is not None:
        assert result.loss_derived_s < result.rate_derived_s + INTERVAL / NS


@PROPERTIES
@given(streams(jitter_ms=5), st.integers(-10**18, 10**18))
def test_shifting_every_timestamp_changes_no_figure(case, shift):
    probes, event, end, method = case
    moved = DirectionProbes(probes.name, [(q, t + shift) for q, t in probes.sent],
                            [(q, t + shift, r + shift) for q, t, r in probes.received])
    assert analyse_direction(moved, event + shift, end + shift, method) == analyse_direction(probes, event, end, method)


@PROPERTIES
@given(streams())
def test_every_stream_gives_consistent_figures(case):
    probes, event, end, method = case
    result = analyse_direction(probes, event, end, method)
    assert result.sent == result.received + result.lost
    assert result.lost == sum(e.probes for e in result.loss_episodes) >= result.convergence_packet_loss
    assert result.loss_derived_s == pytest.approx(result.convergence_packet_loss * INTERVAL / NS)
    assert sum(e.open for e in result.loss_episodes) <= 1
    if result.rate_derived_s is not None:
        assert result.first_route_s is not None and result.first_route_s <= result.rate_derived_s


# --- one recorded real run ----------------------------------------------------------


def test_the_runner_reads_phases_on_the_default_scenario_s_handover():
    assert handover_of(load_plan("active-standby"), "azure-gw-0") == RECORDED_HANDOVER


def test_a_recorded_kill_run():
    """A real `lab failover --fault kill --profile fast` run, re-analysed.

    It was recorded with a 3 s settle, so a 2 s Sustained Convergence Validation Time validates it.
    """
    method = Method(int(DATA["interval_s"] * NS), 2 * NS, 2 * NS)
    probes = recorded_probes()
    results = [analyse_direction(p, DATA["fault_ns"], DATA["end_ns"], method) for p in probes]
    for p, r in zip(probes, results):
        assert r.invalid is None and r.converged
        (episode,) = r.loss_episodes                     # one clean outage each way
        assert episode.probes == r.lost == r.convergence_packet_loss > 0
        assert r.loss_derived_s <= r.rate_derived_s == r.first_route_s == episode.end_s
        assert 1.2 < r.rate_derived_s < 1.5
        assert r.max_delay_s < 0.005                     # one host: a few ms at most
    # Its own window is too short for the RFC's 5 s: not converged, rather than made up.
    assert analyse_direction(probes[0], DATA["fault_ns"], DATA["end_ns"], RFC_METHOD).rate_derived_s is None
    phases = breakdown(recorded_events(), DATA["fault_ns"], DATA["end_ns"], RECORDED_HANDOVER, results)
    assert None not in [p.at_s for p in phases] and not any(p.out_of_order for p in phases)
    evidence = {p.name: p.evidence.split(":")[0] for p in phases}
    assert evidence["public IP moved"] == "azure-gw-1"
    assert evidence["BGP Established"] in ("onprem-0", "azure-gw-1")
    assert phases[-1].at_s == max(r.rate_derived_s for r in results)


def test_share_lost_counts_the_flows_over_the_lost_path_over_at_least_one_round():
    method = dataclasses.replace(METHOD, flows=16)
    # Half the 16 flows (every other probe) lost for 3 s: half of what was sent until recovery.
    half = lambda t: 0 <= t < 3 and round(t / 0.02) % 2 == 0  # noqa: E731
    probes, end = stream(2, 8, lost=half)
    result = analyse_direction(probes, FAULT, end, method)
    assert result.converged and 0.45 <= result.loss_share <= 0.55, result
    # Three probes lost at once, then nothing: 3 of one round of the flows, not "100 %".
    probes, end = stream(2, 8, lost=between(0, 0.06))
    assert analyse_direction(probes, FAULT, end, method).loss_share == 3 / 16
    # One flow only: an outage that stops everything is 100 %.
    probes, end = stream(2, 8, lost=between(0, 1))
    assert analyse_direction(probes, FAULT, end, METHOD).loss_share == 1.0
