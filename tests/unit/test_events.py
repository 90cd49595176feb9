"""Parsing what the daemons report into events on the monotonic clock."""
import time
from pathlib import Path

import pytest
from recorded import HANDOVER

from lab.model.daemon_events import (
    ClockOffset,
    container_log_events,
    docker_event,
    frr_log_events,
    vici_event,
)
from lab.failover.metrics import breakdown

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


# --- one clock, whatever the offset; FRR's stamps in the container's time zone -------------

FRR_LOG = "\n".join([
    "2026/11/26 10:15:59.597 BFD: [SEY1D-NT8EQ] state-change: [mhop:yes peer:10.1.255.30 local:10.10.255.1 vrf:default] up -> down reason:control-expired",
    "2026/11/26 10:16:00.920 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 10.1.255.30(azure-gw-1) in vrf default Up",
])
DOCKER_LOG = "2026-11-26T10:15:59.861192684Z lab-notify: vrrp master"
FAULT_WALL = WALL_AT_1000 + 100_000_000          # the fault at 10:15:59.100Z


@pytest.mark.parametrize("offset_ns", [0, WALL_AT_1000 - 1000 * 10**9, -7 * 10**9, 1_234_567_891_234_567])
def test_timelines_are_the_same_whatever_the_clock_offset(offset_ns):
    clock = ClockOffset(offset_ns)
    assert clock.to_realtime(clock.to_monotonic(FAULT_WALL)) == FAULT_WALL
    fault_ns = clock.to_monotonic(FAULT_WALL)
    events = frr_log_events(FRR_LOG, "onprem-0", clock) + container_log_events(DOCKER_LOG, "azure-gw-1", clock)
    docker = docker_event({"Type": "container", "Action": "kill", "timeNano": FAULT_WALL + 13_000_000,
                           "Actor": {"Attributes": {"lab.node": "azure-gw-0", "signal": "9"}}}, clock)
    events.append(docker)
    assert all(e.t_ns == clock.to_monotonic(clock.to_realtime(e.t_ns)) for e in events)
    phases = {p.name: p.at_s for p in breakdown(events, fault_ns, fault_ns + 5 * 10**9, HANDOVER, [])}
    assert phases == {"fault injected": 0.0, "detected": 0.497, "public IP moved": 0.7612,
                      "IKE re-established": None, "BGP Established": 1.82, "traffic restored": None}
    assert round((docker.t_ns - fault_ns) / 1e9, 3) == 0.013


@pytest.fixture
def local_time_zone(monkeypatch):
    """Runs the test with this process in a time zone far from UTC."""
    def use(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()
    yield use
    monkeypatch.undo()
    time.tzset()


# POSIX zone strings: they need no time zone database on the test machine.
@pytest.mark.parametrize("zone", ["UTC0", "EST5EDT,M3.2.0,M11.1.0", "IST-5:30", "<+14>-14"])
def test_frr_stamps_are_read_as_utc_whatever_the_host_time_zone(local_time_zone, zone):
    # FRR stamps its log in the container's local time; the image sets no time zone, so that is UTC.
    local_time_zone(zone)
    assert time.timezone == {"UTC0": 0, "EST5EDT,M3.2.0,M11.1.0": 5 * 3600, "IST-5:30": -19800, "<+14>-14": -14 * 3600}[zone]
    events = frr_log_events(FRR_LOG, "onprem-0", CLOCK)
    assert [e.t_ns for e in events] == [1000_597_000_000, 1001_920_000_000]


def test_the_image_keeps_its_containers_on_utc():
    # The UTC reading above holds only while nothing gives the containers another zone.
    dockerfile = (Path(__file__).resolve().parents[2] / "images" / "node" / "Dockerfile").read_text()
    assert "TZ=" not in dockerfile and "tzdata" not in dockerfile and "localtime" not in dockerfile
