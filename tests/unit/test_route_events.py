"""Best-path changes from bgpd's `debug bgp zebra` lines, whole or one line at a time, kept once.

The lines are FRR 8.4.4's, recorded from azlab-node:0.1.0: node a (AS 65001, maximum-paths 4) peered
over eBGP with b and c (AS 65002, 10.77.0.3 and .4), which announced and withdrew 10.1.0.0/16 and
10.2.0.0/16; data/frr-route-changes.log is a's whole log across a's shutdown of its session to b.
"""
from pathlib import Path

from test_live_events import FakeEngine, observation

from lab.model.daemon_events import ROUTE, ClockOffset, Event, FrrLogReader, frr_log_events, not_yet_seen
from lab.plan.load import load_plan
from lab.run.clock import LabClock
from lab.run.observe import FRR_LOG

RECORDED = (Path(__file__).parent / "data" / "frr-route-changes.log").read_text()
# Wall clock 2026-12-01T23:01:00Z is monotonic 1000 s here.
CLOCK = ClockOffset(1796166060 * 10**9 - 1000 * 10**9)
MS = 1_000_000

ECMP = [
    "2026/12/01 23:01:20.254 BGP: [KR6T7-EW7AS] bgp_zebra_announce: p=10.1.0.0/16, extra is NULL, no label",
    "2026/12/01 23:01:20.254 BGP: [V15FP-4CPVK] Tx route add VRF 0 10.1.0.0/16 metric 0 tag 0 count 2 nhg 0",
    "2026/12/01 23:01:20.254 BGP: [JQXM8-V0CKB]   nhop [1]: 10.77.0.3 if 0 VRF 0 wt 0   ",
    "2026/12/01 23:01:20.254 BGP: [JQXM8-V0CKB]   nhop [2]: 10.77.0.4 if 0 VRF 0 wt 0   ",
    "2026/12/01 23:01:20.254 BGP: [JMVGR-VQ1M1] bgp_zebra_announce: 10.1.0.0/16: announcing to zebra (recursion NOT set)",
]
SINGLE = [
    "2026/12/01 23:01:22.465 BGP: [V15FP-4CPVK] Tx route add VRF 0 10.1.0.0/16 metric 0 tag 0 count 1 nhg 0",
    "2026/12/01 23:01:22.465 BGP: [JQXM8-V0CKB]   nhop [1]: 10.77.0.3 if 0 VRF 0 wt 0   ",
]
DELETE = "2026/12/01 23:01:24.584 BGP: [G7K80-KF0HM] Tx route delete VRF 0 10.1.0.0/16"


def at(stamp_s: float) -> int:
    """Monotonic ns of a stamp 23:01:SS.mmm on the test's clock."""
    return 1000 * 10**9 + round(stamp_s * 1000) * MS


def test_a_header_and_its_next_hops_are_one_event_stamped_as_the_header():
    assert frr_log_events("\n".join(ECMP), "a", CLOCK) == [
        Event(at(20.254), "frr", "a", ROUTE, "10.1.0.0/16 via 10.77.0.3,10.77.0.4")]
    assert frr_log_events("\n".join(SINGLE), "a", CLOCK) == [
        Event(at(22.465), "frr", "a", ROUTE, "10.1.0.0/16 via 10.77.0.3")]
    assert frr_log_events(DELETE, "a", CLOCK) == [Event(at(24.584), "frr", "a", ROUTE, "10.1.0.0/16 withdrawn")]


def test_the_recorded_log_reads_as_sessions_and_best_paths_in_order():
    found = [(e.t_ns, e.kind, e.detail) for e in frr_log_events(RECORDED, "a", CLOCK)]
    assert found == [
        (at(49.567), ROUTE, "10.1.0.0/16 via 10.77.0.3"),
        (at(49.710), ROUTE, "10.2.0.0/16 via 10.77.0.3"),
        (at(49.800), ROUTE, "10.1.0.0/16 via 10.77.0.3,10.77.0.4"),
        (at(52.795), "bgp-down", "10.77.0.3 Admin. shutdown"),
        (at(52.856), ROUTE, "10.1.0.0/16 via 10.77.0.4"),
        (at(52.856), ROUTE, "10.2.0.0/16 withdrawn"),
        (at(55.905), "bgp-up", "10.77.0.3"),
        # bgpd listed this set as 10.77.0.4, 10.77.0.3: one set, one text.
        (at(57.056), ROUTE, "10.1.0.0/16 via 10.77.0.3,10.77.0.4"),
        (at(57.056), ROUTE, "10.2.0.0/16 via 10.77.0.3"),
    ]


def test_line_at_a_time_gives_what_the_whole_text_gives():
    reader = FrrLogReader("a", CLOCK)
    one_by_one = [e for line in RECORDED.splitlines() for e in reader.feed(line)]
    assert one_by_one == frr_log_events(RECORDED, "a", CLOCK)
    # The event comes with the header's last next hop, not before.
    reader = FrrLogReader("a", CLOCK)
    assert [reader.feed(line) for line in ECMP[:3]] == [[], [], []]
    assert [e.detail for e in reader.feed(ECMP[3])] == ["10.1.0.0/16 via 10.77.0.3,10.77.0.4"]


def test_a_header_cut_by_the_end_of_the_text_gives_nothing_and_cuts_no_later_line():
    assert frr_log_events("\n".join(ECMP[:3]), "a", CLOCK) == []
    assert frr_log_events("\n".join(ECMP[:3] + ["2026/12/01 23:01:20.2"]), "a", CLOCK) == []
    # A header whose next hops never came, then another header: the second alone.
    assert [e.detail for e in frr_log_events("\n".join(ECMP[1:3] + SINGLE), "a", CLOCK)] == \
        ["10.1.0.0/16 via 10.77.0.3"]
    # Next hops with no header before them (a tail that began between them), or out of turn: nothing.
    assert frr_log_events("\n".join(ECMP[2:] + [DELETE]), "a", CLOCK)[0].detail == "10.1.0.0/16 withdrawn"
    assert frr_log_events("\n".join([ECMP[1], ECMP[3], ECMP[2]]), "a", CLOCK) == []


def test_other_daemons_lines_between_a_header_and_its_next_hops_are_let_by():
    zebra = "2026/12/01 23:01:20.254 ZEBRA: [VTVCM-Y2NW3] something of zebra's own"
    adj = ("2026/12/01 23:01:20.254 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 10.77.0.4(2a4ae7bebf37) in vrf "
           "default Up")
    found = frr_log_events("\n".join([ECMP[1], zebra, ECMP[2], adj, ECMP[3]]), "a", CLOCK)
    assert [(e.kind, e.detail) for e in found] == [("bgp-up", "10.77.0.4"),
                                                   (ROUTE, "10.1.0.0/16 via 10.77.0.3,10.77.0.4")]


def test_next_hops_with_no_address_and_routes_outside_the_default_vrf_still_read():
    # Not recorded: the forms of bgp_zebra.c (FRR 8.4) for an interface-only next hop and a VRF.
    lines = ["2026/12/01 23:01:30.000 BGP: [V15FP-4CPVK] Tx route add VRF 3 10.9.0.0/16 metric 0 tag 0 count 2 nhg 0",
             "2026/12/01 23:01:30.000 BGP: [JQXM8-V0CKB]   nhop [1]:  if 5 VRF 3 wt 0   ",
             "2026/12/01 23:01:30.000 BGP: [JQXM8-V0CKB]   nhop [2]: 10.9.255.1 if 0 VRF 3 wt 0   ",
             "2026/12/01 23:01:31.000 BGP: [G7K80-KF0HM] Tx route delete VRF 3 10.9.0.0/16"]
    assert [e.detail for e in frr_log_events("\n".join(lines), "a", CLOCK)] == [
        "10.9.0.0/16 vrf 3 via 10.9.255.1,ifindex 5", "10.9.0.0/16 vrf 3 withdrawn"]


def test_a_route_read_live_and_again_in_the_record_is_kept_once():
    plan = load_plan("active-standby", "fast", lab="t")
    engine = FakeEngine(plan)
    obs = observation(plan, engine)
    obs.clock = LabClock(0, 0, CLOCK, 1000)
    obs.started_ns = at(0)
    lines = RECORDED.splitlines()
    # The tail began after the first announcement's header: what it read came in one line at a time.
    live = [e for line in lines[2:16] for e in obs.take_line("onprem-0", FRR_LOG, line, at(59))]
    assert [e.detail for e in live] == ["10.2.0.0/16 via 10.77.0.3", "10.1.0.0/16 via 10.77.0.3,10.77.0.4",
                                        "10.77.0.3 Admin. shutdown"]
    engine.frr_text[plan.nodes["onprem-0"].container] = RECORDED
    recorded = obs.recorded_events(at(59))
    assert [(e.t_ns, e.detail) for e in recorded if e.kind == ROUTE] == [
        (at(49.567), "10.1.0.0/16 via 10.77.0.3"), (at(52.856), "10.1.0.0/16 via 10.77.0.4"),
        (at(52.856), "10.2.0.0/16 withdrawn"), (at(57.056), "10.1.0.0/16 via 10.77.0.3,10.77.0.4"),
        (at(57.056), "10.2.0.0/16 via 10.77.0.3")]
    # The rest of the log, read live after the record gave it, adds nothing.
    assert [e for line in lines[16:] for e in obs.take_line("onprem-0", FRR_LOG, line, at(59))] == []
    # bgpd sending one route twice in a millisecond: two events; one read live stands for one of them.
    twice = frr_log_events("\n".join(SINGLE + SINGLE), "a", CLOCK)
    assert len(twice) == 2 and len(not_yet_seen(twice, twice[:1])) == 1
