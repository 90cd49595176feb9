"""Parsing what the daemons report into events on the monotonic clock."""
from lab.events import (
    ClockOffset,
    container_log_events,
    docker_event,
    frr_log_events,
    vici_event,
)

# Wall clock 2026-11-26T10:15:59Z is monotonic 1000 s in these tests.
WALL_AT_1000 = 1795688159 * 10**9
CLOCK = ClockOffset(WALL_AT_1000 - 1000 * 10**9)


def test_frr_bgp_and_bfd_changes_as_logged_by_frr_8():
    log = "\n".join([
        "2026/11/26 10:15:53.658 BGP: [VTVCM-Y2NW3] Configuration Read in Took: 00:00:00",
        "2026/11/26 10:15:59.597 BFD: [SEY1D-NT8EQ] state-change: [mhop:yes peer:10.1.255.30 local:10.10.255.1 vrf:default] up -> down reason:control-expired",
        "2026/11/26 10:15:59.597 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 10.1.255.30(azure-gw-0) in vrf default Down BGP Notification send",
        "2026/11/26 10:16:00.920 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 10.1.255.30(azure-gw-1) in vrf default Up",
        "2026/11/26 10:16:01.922 BFD: [J1C6V-VMRW5] state-change: [mhop:yes peer:10.1.255.30 local:10.10.255.1 vrf:default] down -> init",
    ])
    events = frr_log_events(log, "onprem-0", CLOCK)
    assert [(e.kind, e.detail) for e in events] == [
        ("bfd-down", "10.1.255.30 up -> down"),
        ("bgp-down", "10.1.255.30 BGP Notification send"),
        ("bgp-up", "10.1.255.30"),
    ]
    assert events[0].t_ns == 1000_597_000_000
    assert events[2].t_ns == 1001_920_000_000
    assert all(e.node == "onprem-0" and e.source == "frr" for e in events)


def test_vrrp_transitions_from_docker_stamped_logs():
    log = "\n".join([
        "2026-11-26T10:15:59.861192684Z lab-notify: vrrp master",
        "2026-11-26T10:15:59.923643411Z lab-updown: onprem-0 up, restarting BGP with 10.10.255.1",
        "2026-11-26T10:16:03.000000001Z lab-notify: vrrp backup",
        "not stamped: lab-notify: vrrp fault",
    ])
    events = container_log_events(log, "azure-gw-1", CLOCK)
    assert [(e.kind, e.t_ns) for e in events] == [("vrrp-master", 1000_861_192_684), ("vrrp-backup", 1004_000_000_001)]


def test_docker_container_events():
    raw = {"Type": "container", "Action": "kill", "timeNano": WALL_AT_1000 + 5,
           "Actor": {"Attributes": {"name": "lab-x-azure-gw-0", "lab.node": "azure-gw-0", "signal": "9"}}}
    event = docker_event(raw, CLOCK)
    assert (event.t_ns, event.node, event.kind, event.detail) == (1000 * 10**9 + 5, "azure-gw-0", "container-kill", "signal 9")
    assert docker_event({**raw, "Action": "exec_start: lab-healthcheck"}, CLOCK) is None
    assert docker_event({**raw, "Type": "network"}, CLOCK) is None


def test_vici_messages_with_bytes_values():
    up = {"onprem-0": {"state": b"ESTABLISHED", "remote-host": b"198.51.100.100",
                       "child-sas": {"onprem-0-3": {"name": b"onprem-0", "state": b"INSTALLED"}}},
          "up": b"yes"}
    assert [(e.kind, e.detail) for e in vici_event("ike-updown", up, "onprem-0", 7)] == [("ike-up", "onprem-0 198.51.100.100")]
    assert [(e.kind, e.detail) for e in vici_event("child-updown", up, "onprem-0", 7)] == [("child-up", "onprem-0 via 198.51.100.100")]
    down = {k: v for k, v in up.items() if k != "up"}
    assert [e.kind for e in vici_event("ike-updown", down, "onprem-0", 7)] == ["ike-down"]
    assert [e.kind for e in vici_event("ike-rekey", down, "onprem-0", 7)] == ["ike-rekey"]
    assert vici_event("log", down, "onprem-0", 7) == []
