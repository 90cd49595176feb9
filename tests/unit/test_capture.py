"""`lab capture`: the request checked where it enters, tcpdump's argv, the pcap reader, the CLI's --out."""
import stat
import struct

import pytest
from typer.testing import CliRunner

from lab.model.errors import LabError
from lab.model.names import container_name
from lab.plan.load import load_plan
from lab.run import capture as cap
from lab.run.capture import ANY, PACKET_CAP, SNAPLEN, capture, capture_request, ipsec_packets, read_pcap
from lab.run.ports import Adapters, ContainerInfo
from lab.session import LabSession
from lab.ui import capture_cli
from lab.ui.cli import app

PLAN = load_plan("active-standby", "fast", lab="t")
DOCKER_DOWN = {"DOCKER_HOST": "unix:///nonexistent.sock"}


# -- a pcap as tcpdump writes one -------------------------------------------------------------------
def pcap(linktype, frames):
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype)
    return head + b"".join(struct.pack("<IIII", 1700000000 + i, 0, len(f), len(f)) + f for i, f in enumerate(frames))


def udp(src, dst, sport, dport, payload):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 1, 0, 64, 17, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return ip + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def sll2(packet, index=17432):
    return struct.pack("!HHIHBB8s", 0x0800, 0, index, 1, 4, 6, b"\x02" * 6 + b"\0\0") + packet


def ethernet(packet):
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + packet


def payload(kind, following, body=b""):
    return struct.pack("!BBH", following, 0, 4 + len(body)) + body


def ike(exchange, first, payloads, response=False, message_id=0):
    body = b"".join(payloads)
    return (b"\x11" * 8 + b"\0" * 8 + struct.pack("!BBBBII", first, 0x20, exchange, 0x20 if response else 0x08,
                                                   message_id, 28 + len(body)) + body)


SA_INIT = ike(34, 33, [payload("SA", 34, b"s" * 40), payload("KE", 40, b"k" * 132), payload("No", 41, b"n" * 32),
                       payload("N", 0, b"\0\0\x40\x04" + b"h" * 20)])
AUTH = ike(35, 46, [payload("SK", 35, b"ciphertext" * 20)], message_id=1)
ESP = struct.pack("!II", 0xF421F4DF, 7) + b"encrypted" * 10
GW, DEVICE = "198.51.100.100", "198.51.100.20"
FRAMES = [udp(DEVICE, GW, 500, 500, SA_INIT), udp(DEVICE, GW, 4500, 4500, b"\0\0\0\0" + AUTH),
          udp(DEVICE, GW, 4500, 4500, ESP), udp(DEVICE, GW, 4500, 4500, b"\xff"),
          udp("10.10.255.1", "10.1.255.30", 49152, 4784, b"bfd" * 8)]


# -- fakes of the engine ----------------------------------------------------------------------------
class FakeRuntime:
    """The two execs a capture makes, answered as given; every call kept."""

    def __init__(self, captured=(0, b"", ""), checked=(0, "(000) ret #262144\n", "")):
        self.captured = captured if captured[1] else (captured[0], pcap(276, [sll2(f) for f in FRAMES]), captured[2])
        self.checked = checked
        self.calls = []

    def containers(self, labels):
        node = labels["lab.node"]
        return [ContainerInfo(container_name(labels["lab.name"], node), node, PLAN.nodes[node].kind, "running",
                              None, 42, "h")]

    def exec_split(self, name, argv, timeout_s=10.0):
        self.calls.append(("check", name, argv, timeout_s))
        return self.checked

    def exec_bytes(self, name, argv, timeout_s=10.0):
        self.calls.append(("capture", name, argv, timeout_s))
        return self.captured


def adapters(runtime):
    return Adapters(runtime=runtime, ike_for=None, routes_for=None, links_for=None, host=None)


# -- the request ------------------------------------------------------------------------------------
def test_defaults_are_every_interface_for_ten_seconds_without_a_filter():
    request = capture_request(PLAN, "onprem-0")
    assert (request.node, request.link, request.interface, request.seconds, request.bpf) == ("onprem-0", ANY, ANY, 10, None)


def test_an_unknown_node_is_refused_naming_the_labs_nodes():
    with pytest.raises(LabError) as e:
        capture_request(PLAN, "onprem-9")
    assert str(e.value) == ("unknown node 'onprem-9': lab t's nodes are azure-gw-0, azure-gw-1, vnet-router, "
                            "azure-vm, onprem-0, onprem-host")


def test_a_link_is_one_of_the_nodes_networks_or_its_tunnels_routed_link():
    assert cap.capture_links(PLAN, "onprem-0") == {"internet": "internet", "onprem-lan": "onprem-lan", "vti0": "vti0"}
    assert capture_request(PLAN, "onprem-0", "internet").interface == "internet"
    assert capture_request(PLAN, "vnet-router", "gateway-subnet").interface == "gateway-subnet"
    with pytest.raises(LabError, match=r"^vnet-router has no link 'internet': its links are any, gateway-subnet, "
                                       r"vnet-workload$"):
        capture_request(PLAN, "vnet-router", "internet")


def test_a_node_whose_container_cant_run_tcpdump_is_refused_with_where_to_capture_instead():
    with pytest.raises(LabError) as e:
        capture_request(PLAN, "onprem-host")
    assert str(e.value) == ("onprem-host (workload-host) can't run tcpdump: its container has no SETGID; "
                            "its network onprem-lan can be captured at onprem-0:onprem-lan")


@pytest.mark.parametrize("seconds", [0, 0.5, 121, -1, True, "10"])
def test_seconds_out_of_range_are_refused(seconds):
    with pytest.raises(LabError, match=r"a capture lasts 1 to 120 s$"):
        capture_request(PLAN, "onprem-0", seconds=seconds)


@pytest.mark.parametrize("seconds", [1, 2.5, 120])
def test_seconds_in_range_are_taken(seconds):
    assert capture_request(PLAN, "onprem-0", seconds=seconds).seconds == seconds


@pytest.mark.parametrize("bpf", ["udp\nport 500", "a\x00b", "x" * 1001])
def test_a_filter_is_one_line_of_at_most_1000_characters(bpf):
    with pytest.raises(LabError, match="one line without control characters, at most 1000 characters"):
        capture_request(PLAN, "onprem-0", bpf=bpf)


def test_every_problem_is_told_at_once():
    with pytest.raises(LabError) as e:
        capture_request(PLAN, "onprem-0", "nope", bpf="a\nb", seconds=0)
    assert str(e.value).count("; ") == 2


def test_a_blank_filter_is_no_filter():
    assert capture_request(PLAN, "onprem-0", bpf="  ").bpf is None


# -- tcpdump's argv -----------------------------------------------------------------------------------
NASTY = "udp port 500 and not host 1.2.3.4; rm -rf / $(id) `id` | cat > /lab/x && echo '\"'"


def test_a_filter_with_shell_metacharacters_is_one_argv_element_after_the_end_of_options():
    runtime = FakeRuntime()
    capture(PLAN, adapters(runtime), capture_request(PLAN, "onprem-0", "internet", NASTY, 5))
    (check, name, check_argv, _), (kind, _, argv, timeout_s) = runtime.calls
    assert (check, kind, name) == ("check", "capture", "lab-t-onprem-0")
    assert check_argv == ["tcpdump", "-i", "internet", "-d", "--", NASTY]
    assert argv[-2:] == ["--", NASTY] and argv.count(NASTY) == 1
    assert argv[:5] == ["timeout", "--preserve-status", "--kill-after=2", "5", "tcpdump"]
    # Bounded: in time, packets and bytes per packet; stoppable (root, not user tcpdump).
    assert argv[argv.index("-c") + 1] == str(PACKET_CAP) and argv[argv.index("-s") + 1] == str(SNAPLEN)
    assert argv[argv.index("-Z") + 1] == "root" and argv[argv.index("-i") + 1] == "internet"
    assert timeout_s == 5 + cap.EXEC_MARGIN_S


def test_a_filter_that_looks_like_an_option_is_still_the_filter():
    runtime = FakeRuntime()
    capture(PLAN, adapters(runtime), capture_request(PLAN, "onprem-0", bpf="-w /lab/network.sh"))
    argv = runtime.calls[1][2]
    assert argv[argv.index("--") + 1:] == ["-w /lab/network.sh"] and argv.index("-w") < argv.index("--")


def test_without_a_filter_nothing_is_compiled_and_nothing_follows_the_end_of_options():
    runtime = FakeRuntime()
    data = capture(PLAN, adapters(runtime), capture_request(PLAN, "azure-gw-0"))
    assert [c[0] for c in runtime.calls] == ["capture"] and runtime.calls[0][2][-1] == "--"
    assert data == runtime.captured[1]


def test_a_bad_filter_gets_tcpdumps_own_reason_and_nothing_is_captured():
    runtime = FakeRuntime(checked=(1, "", "tcpdump: data link type LINUX_SLL2\n"
                                          "tcpdump: can't parse filter expression: syntax error\n"))
    with pytest.raises(LabError) as e:
        capture(PLAN, adapters(runtime), capture_request(PLAN, "onprem-0", bpf="udp port and"))
    assert str(e.value) == "filter 'udp port and' on onprem-0:any: can't parse filter expression: syntax error"
    assert [c[0] for c in runtime.calls] == ["check"]


def test_a_failed_capture_is_one_line_with_tcpdumps_reason():
    runtime = FakeRuntime(captured=(1, b"", "tcpdump: vti0: No such device exists\n(SIOCGIFHWADDR: No such device)\n"))
    runtime.captured = (1, b"", runtime.captured[2])
    with pytest.raises(LabError, match=r"^capture on onprem-0:vti0: vti0: No such device exists$"):
        capture(PLAN, adapters(runtime), capture_request(PLAN, "onprem-0", "vti0"))


def test_a_node_that_is_not_running_is_refused_before_any_exec():
    runtime = FakeRuntime()
    runtime.containers = lambda labels: []
    with pytest.raises(LabError, match="^onprem-0 is not running$"):
        capture(PLAN, adapters(runtime), capture_request(PLAN, "onprem-0"))
    assert runtime.calls == []


def test_the_session_checks_before_it_reaches_the_engine():
    runtime = FakeRuntime()
    session = LabSession.from_plan(PLAN, adapters=adapters(runtime))
    with pytest.raises(LabError, match="seconds 500"):
        session.capture("onprem-0", seconds=500)
    assert runtime.calls == []
    assert session.capture("onprem-0", "internet", "udp", 3) == runtime.captured[1]


# -- the reader ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("linktype,frame", [(276, sll2), (1, ethernet), (101, lambda p: p)], ids=["sll2", "eth", "raw"])
def test_the_reader_finds_ike_esp_and_keepalives(linktype, frame):
    found = ipsec_packets(read_pcap(pcap(linktype, [frame(f) for f in FRAMES])))
    assert [p.kind for p in found] == ["IKE", "IKE", "ESP", "keepalive"]
    init, auth, esp, _ = found
    assert (init.exchange, init.payloads, init.response, init.encrypted_first) == (
        "IKE_SA_INIT", ("SA", "KE", "No", "N"), False, "")
    assert (auth.exchange, auth.payloads, auth.encrypted_first, auth.message_id) == ("IKE_AUTH", ("SK",), "IDi", 1)
    assert (esp.spi, esp.sequence, esp.datagram.destination_port) == (0xF421F4DF, 7, 4500)
    assert str(init.datagram.source) == DEVICE
    assert init.datagram.interface_index == (17432 if linktype == 276 else None)


def test_a_last_record_cut_short_is_left_out_and_a_non_pcap_is_refused():
    data = pcap(276, [sll2(f) for f in FRAMES])
    assert len(read_pcap(data[:-3]).records) == len(FRAMES) - 1
    assert cap.packet_count(data) == len(FRAMES)
    with pytest.raises(LabError, match="not a pcap file"):
        read_pcap(b"tcpdump: oops\n" * 3)


def test_a_capture_whose_output_is_no_pcap_is_an_error():
    runtime = FakeRuntime()
    runtime.captured = (0, b"garbage" * 10, "")
    with pytest.raises(LabError, match="^capture on onprem-0:any: tcpdump exit code 0$"):
        capture(PLAN, adapters(runtime), capture_request(PLAN, "onprem-0"))


# -- the CLI ----------------------------------------------------------------------------------------
@pytest.fixture
def fake_lab(monkeypatch):
    runtime = FakeRuntime()
    monkeypatch.setattr(capture_cli, "attach", lambda lab: LabSession.from_plan(PLAN, adapters=adapters(runtime)))
    return runtime


def run(*args, env=None):
    return CliRunner().invoke(app, ["capture", *args], env=env)


def one_line_error(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.mark.parametrize("name,says", [("x.pcapng", "a capture is written to a .pcap file"),
                                       ("x", "a capture is written to a .pcap file"),
                                       ("missing/x.pcap", "does not exist"),
                                       ("folder.pcap", "is a folder")])
def test_out_is_checked_before_any_engine_call(tmp_path, name, says):
    (tmp_path / "folder.pcap").mkdir()
    before = sorted(tmp_path.rglob("*"))
    result = run("onprem-0", "--out", str(tmp_path / name), env=DOCKER_DOWN)   # no engine answers: none is asked
    assert says in one_line_error(result)
    assert sorted(tmp_path.rglob("*")) == before


def test_out_is_required(tmp_path):
    result = run("onprem-0", env=DOCKER_DOWN)
    assert result.exit_code == 2 and "--out" in result.output


def test_a_capture_is_written_whole_0644_and_counted(tmp_path, fake_lab):
    out = tmp_path / "takeover.pcap"
    out.write_bytes(b"an older capture")
    result = run("onprem-0:internet", "--out", str(out), "--seconds", "3", "--filter", "udp port 4500")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == fake_lab.captured[1]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert list(tmp_path.iterdir()) == [out]   # no temporary file left beside it
    assert f"{len(FRAMES)} packets captured" in result.output and str(out) in result.output
    assert fake_lab.calls[1][2][-2:] == ["--", "udp port 4500"]


@pytest.mark.parametrize("args,says", [(["onprem-9"], "unknown node 'onprem-9'"),
                                       (["onprem-0:eth0"], "onprem-0 has no link 'eth0'"),
                                       (["onprem-0", "--seconds", "0"], "seconds 0: a capture lasts 1 to 120 s"),
                                       (["onprem-0", "--filter", "a\nb"], "one line without control characters")])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, fake_lab, args, says):
    out = tmp_path / "x.pcap"
    result = run(*args, "--out", str(out))
    assert says in one_line_error(result)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert fake_lab.calls == []


def test_a_bad_filter_in_the_node_writes_nothing(tmp_path, fake_lab):
    fake_lab.checked = (1, "", "tcpdump: can't parse filter expression: syntax error\n")
    out = tmp_path / "x.pcap"
    assert "can't parse filter expression" in one_line_error(run("onprem-0", "--filter", "port and", "--out", str(out)))
    assert list(tmp_path.iterdir()) == []
