"""The console without a lab: its live state from reads and events, its API's rules, its stream."""
from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

import pytest

from lab.model import daemon_events as ev
from lab.model.errors import LabError
from lab.model.events import ControlEvent, EventStream, Note, ProbeTick, Stage, StageChanged
from lab.plan.load import load_plan
from lab.run.status import BgpRow, GatewayRow, LabStatus, NodeRow, TunnelRow, VrrpRow
from lab.session import LabSession
from lab.ui.console.live import LiveState
from lab.ui.console.monitor import DeliveryBins, DeliveryTick
from lab.ui.console.server import Console, ConsoleServer, event_json
from lab.ui.console_cli import check_host, read_token


@pytest.fixture(scope="module")
def plan():
    return load_plan("active-standby", "fast", "console-unit")


def _status(plan, packets: int, active: str = "azure-gw-0") -> LabStatus:
    status = LabStatus(plan.lab, "active-standby", "fast", "userspace", "none")
    status.nodes = [NodeRow(n, plan.nodes[n].kind, "running", "healthy") for n in plan.nodes]
    status.tunnels = [TunnelRow("onprem-0", plan.tunnels[0].name, "ESTABLISHED", "INSTALLED", "10.0.0.1",
                                packets, packets * 2, 0, 0)]
    status.bgp = [BgpRow("onprem-0", "169.254.21.1", "azure", "Established", 1)]
    status.gateways = [GatewayRow("azure-gw", "active-standby", {}, [active], ["azure-gw-0", "azure-gw-1"])]
    status.vrrp = [VrrpRow("azure-gw", "10.0.0.1", [active], ["azure-gw-0", "azure-gw-1"])]
    return status


def test_rates_come_from_the_counters_between_two_reads(plan):
    state = LiveState.of(plan)
    state.take_status(plan, _status(plan, 100), at=10.0)
    first = state.as_dict()["tunnels"][0]
    assert first["pps_in"] is None and first["up"] is True
    state.take_status(plan, _status(plan, 300), at=12.0)
    second = state.as_dict()["tunnels"][0]
    assert second["pps_in"] == pytest.approx(100.0) and second["pps_out"] == pytest.approx(200.0)


def test_events_change_the_piece_they_are_about_before_the_next_read(plan):
    state = LiveState.of(plan)
    state.take_status(plan, _status(plan, 100), at=1.0)
    tunnel = plan.tunnels[0].name
    assert state.take_event(plan, ev.Event(1, "vici", "onprem-0", ev.IKE_DOWN, f"{tunnel} 10.0.0.1"))
    assert state.as_dict()["tunnels"][0]["up"] is False
    assert state.take_event(plan, ev.Event(2, "frr", "onprem-0", ev.BFD_DOWN, "169.254.21.1 up -> down"))
    assert state.take_event(plan, ev.Event(3, "frr", "onprem-0", ev.BGP_DOWN, "169.254.21.1 vrf default Down"))
    session = state.as_dict()["sessions"][0]
    assert (session["state"], session["bfd"]) == ("Down", "down")
    # The standby takes the shared address: the gateway's active instance moves with it.
    assert state.take_event(plan, ev.Event(4, "vrrp", "azure-gw-1", ev.VRRP_MASTER, "keepalived"))
    assert state.take_event(plan, ev.Event(5, "vrrp", "azure-gw-0", ev.VRRP_FAULT, "keepalived"))
    assert state.active["azure-gw"] == ["azure-gw-1"]
    assert not state.take_event(plan, ev.Event(6, "docker", "azure-gw-0", "container-die"))
    assert state.events_since_read == 5


def test_every_event_the_page_reads_has_a_type():
    event = ev.Event(7, "vici", "onprem-0", ev.IKE_UP, "t 1.2.3.4")
    assert event_json(ControlEvent("x", event=event))["kind"] == ev.IKE_UP
    assert event_json(StageChanged("x", Stage.BREAKING, "kill on a"))["stage"] == "breaking"
    assert event_json(ProbeTick("x", 1, "a → b", 10, 2, None, 0.5))["type"] == "probe"
    tick = DeliveryTick("x", cycle=1, direction="a → b", at_ms=1000, width_ms=250, sent=5, delivered=4)
    assert event_json(tick)["type"] == "delivery" and event_json(tick)["at_ms"] == 1000
    assert event_json(Note("x", "hello"))["level"] == "info"


class Held(LabSession):
    """A session whose break waits until the test lets it go (no lab behind it)."""
    release: threading.Event

    def break_(self, fault, target=None):
        self.release.wait(10)
        return f"{fault} on {target}"


@pytest.fixture()
def served(plan, tmp_path):
    started = []

    def serve(token: str | None = None) -> tuple[ConsoleServer, Held]:
        session = Held.from_plan(plan, events=EventStream())
        session.release = threading.Event()
        console = Console(session, tmp_path, token=token, monitor=False)
        server = ConsoleServer(console, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append((server, session))
        return server, session

    yield serve
    for server, session in started:
        session.release.set()
        server.console.stop()
        server.shutdown()
        server.server_close()


def _request(server, method, path, body=None, headers=None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    sent = {"Host": f"{host}:{port}", **(headers or {})}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=sent)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


POST = {"X-Lab-Console": "1", "Content-Type": "application/json"}


def test_the_page_and_its_assets_come_from_the_console_alone(served):
    server, _ = served()
    response, data = _request(server, "GET", "/")
    assert response.status == 200 and b"/static/console.js" in data
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    for asset in ("/static/console.js", "/static/console.css"):
        assert _request(server, "GET", asset)[0].status == 200
    text = (Path(__file__).parents[2] / "lab/ui/console/static").glob("*")
    assert not any(b"http://" in f.read_bytes() or b"https://" in f.read_bytes() for f in text)
    assert _request(server, "GET", "/static/../../../etc/passwd")[0].status == 404
    assert _request(server, "GET", "/static/%2e%2e/server.py")[0].status == 404


def test_a_request_for_another_host_name_is_refused(served):
    server, _ = served()
    response, data = _request(server, "GET", "/api/lab", headers={"Host": "rebound.example:80"})
    assert response.status == 421


def test_a_post_needs_the_console_header_from_its_own_origin(served):
    server, _ = served()
    assert _request(server, "POST", "/api/repair", {})[0].status == 403
    response, _ = _request(server, "POST", "/api/repair", {}, {**POST, "Origin": "http://elsewhere.example"})
    assert response.status == 403


def test_a_bad_fault_or_target_is_a_400_that_names_the_choices(served):
    server, _ = served()
    response, data = _request(server, "POST", "/api/break", {"fault": "explode"}, POST)
    assert response.status == 400 and "choose from kill" in json.loads(data)["error"]
    response, data = _request(server, "POST", "/api/break", {"fault": "maintenance", "target": "onprem-0"}, POST)
    assert response.status == 400 and "azure-gw-0" in json.loads(data)["error"]
    response, data = _request(server, "POST", "/api/failover", {"fault": "kill", "runs": 0}, POST)
    assert response.status == 400 and "runs" in json.loads(data)["error"]
    response, data = _request(server, "POST", "/api/failover", {"fault": "kill", "profile": "azure"}, POST)
    assert response.status == 400 and "lab up" in json.loads(data)["error"]


def test_one_operation_at_a_time(served):
    server, session = served()
    response, data = _request(server, "POST", "/api/break", {"fault": "kill", "target": "azure-gw-0"}, POST)
    assert response.status == 202
    operation = json.loads(data)["id"]
    response, data = _request(server, "POST", "/api/repair", {}, POST)
    assert response.status == 409 and "break is running" in json.loads(data)["error"]
    session.release.set()
    assert server.console.wait_idle(10)
    response, data = _request(server, "GET", f"/api/operations/{operation}")
    assert json.loads(data)["state"] == "done" and json.loads(data)["result"]["done"] == "kill on azure-gw-0"


def test_the_stream_starts_with_the_state_and_carries_events(served):
    server, session = served()
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/api/events", headers={"Host": f"{host}:{port}"})
    response = conn.getresponse()
    assert response.getheader("Content-Type") == "text/event-stream"
    first = json.loads(response.fp.readline().removeprefix(b"data: "))
    assert first["type"] == "state" and first["state"]["lab"] == "console-unit"
    response.fp.readline()
    session.events.note("console-unit", "a trainer's note")
    second = json.loads(response.fp.readline().removeprefix(b"data: "))
    assert second == {"lab": "console-unit", "type": "note", "text": "a trainer's note", "level": "info"}
    conn.close()


def test_beyond_loopback_every_call_needs_the_token(served):
    token = "s3cret-token-of-enough-length"
    server, _ = served(token)
    assert _request(server, "GET", "/api/lab")[0].status == 401
    assert _request(server, "GET", "/api/lab", headers={"Authorization": f"Bearer {token}x"})[0].status == 401
    assert _request(server, "GET", "/api/lab", headers={"Authorization": f"Bearer {token}"})[0].status == 200
    assert _request(server, "POST", "/api/login", {"token": "wrong"}, POST)[0].status == 401
    response, _ = _request(server, "POST", "/api/login", {"token": token}, POST)
    cookie = response.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert _request(server, "GET", "/api/state", headers={"Cookie": cookie.split(";")[0]})[0].status == 200
    assert _request(server, "GET", "/")[0].status == 200    # the page itself asks for the token


def test_host_beyond_loopback_needs_a_token_file_only_its_owner_reads(tmp_path):
    assert check_host("127.0.0.1", None) is None
    with pytest.raises(LabError, match="--token-file"):
        check_host("0.0.0.0", None)
    with pytest.raises(LabError, match="an IP address"):
        check_host("my laptop", None)
    token = tmp_path / "token"
    token.write_text("abcdefghijklmnopqrstuvwxyz\n")
    token.chmod(0o644)
    with pytest.raises(LabError, match="readable by others"):
        read_token(token)
    token.chmod(0o600)
    assert check_host("0.0.0.0", token) == "abcdefghijklmnopqrstuvwxyz"
    token.write_text("short")
    with pytest.raises(LabError, match="16 to 256"):
        read_token(token)
    with pytest.raises(LabError, match="No such file"):
        read_token(tmp_path / "missing")


def test_lab_ui_beyond_loopback_without_a_token_is_one_line():
    from typer.testing import CliRunner

    from lab.ui import cli

    result = CliRunner().invoke(cli.app, ["ui", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--token-file" in lines[0], result.output


def test_delivery_is_counted_by_sending_time_once_a_bin_has_settled():
    ms = 1_000_000
    bins = DeliveryBins(start_ns=0)
    sent = [(slot, slot * 50 * ms) for slot in range(20)]            # 20 a second for a second
    received = [(slot, t, t + 5 * ms) for slot, t in sent if slot not in (6, 7)]
    # Receipts lag their sends: a bin is not counted until 0.4 s after it ends.
    assert bins.settled(sent, received[:3], now_ns=600 * ms) == []
    assert bins.settled(sent, received[:3], now_ns=650 * ms) == [(0, 5, 3)]
    # A receipt that came late, but before its bin settled, counts; slots 6 and 7 never came.
    assert bins.settled(sent, received, now_ns=1400 * ms) == [(250 * ms, 5, 3), (500 * ms, 5, 5), (750 * ms, 5, 5)]
    assert bins.settled(sent, received, now_ns=1400 * ms) == []


def _raw(server, data: bytes) -> bytes:
    """Bytes sent as they are on one connection; everything the console answers until it closes."""
    import socket

    with socket.create_connection(server.server_address[:2], timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_refused_post_ends_its_connection_so_its_body_is_never_a_request(served):
    server, session = served()
    host, port = server.server_address[:2]
    # What another site's page can send without a preflight: a text/plain POST whose body is a request.
    inner = (f"POST /api/repair HTTP/1.1\r\nHost: {host}:{port}\r\nX-Lab-Console: 1\r\n"
             "Content-Length: 0\r\n\r\n").encode()
    outer = (f"POST /api/repair HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: http://elsewhere.example\r\n"
             f"Content-Type: text/plain\r\nContent-Length: {len(inner)}\r\n\r\n").encode() + inner
    answer = _raw(server, outer)
    assert answer.startswith(b"HTTP/1.1 403") and answer.count(b"HTTP/1.1 ") == 1, answer
    assert server.console.running_operation() is None


@pytest.mark.parametrize("length", ["-1", "abc", "1e3"])
def test_a_content_length_that_is_not_a_number_of_bytes_is_a_400(served, length):
    server, _ = served()
    host, port = server.server_address[:2]
    answer = _raw(server, (f"POST /api/repair HTTP/1.1\r\nHost: {host}:{port}\r\nX-Lab-Console: 1\r\n"
                           f"Content-Length: {length}\r\n\r\n{{}}").encode())
    assert answer.startswith(b"HTTP/1.1 400") and b"Content-Length" in answer, answer


def test_a_capture_needs_the_console_header(served):
    server, _ = served()
    # An <img src> on another site's page can't add it: no tcpdump for it.
    response, data = _request(server, "GET", "/api/capture?node=onprem-0&seconds=1")
    assert response.status == 403 and "X-Lab-Console" in json.loads(data)["error"]
    response, data = _request(server, "GET", "/api/capture?node=nowhere", headers={"X-Lab-Console": "1"})
    assert response.status == 400 and "unknown node" in json.loads(data)["error"]


def test_with_a_token_any_host_name_and_its_own_origin_serve(served):
    token = "s3cret-token-of-enough-length"
    server, _ = served(token)
    named = {"Host": "lab-laptop.example:8080", "Authorization": f"Bearer {token}"}
    assert _request(server, "GET", "/api/lab", headers=named)[0].status == 200
    assert _request(server, "GET", "/api/lab", headers={"Host": "lab-laptop.example:8080"})[0].status == 401
    response, data = _request(server, "POST", "/api/break", {"fault": "explode"},
                              {**POST, **named, "Origin": "http://lab-laptop.example:8080"})
    assert response.status == 400 and "choose from" in json.loads(data)["error"]
    response, _ = _request(server, "POST", "/api/break", {"fault": "explode"},
                           {**POST, **named, "Origin": "http://elsewhere.example"})
    assert response.status == 403


def test_an_unexpected_failure_is_a_500_in_one_line(served, monkeypatch):
    server, _ = served()

    def broken() -> dict:
        raise RuntimeError("a bug")
    monkeypatch.setattr(server.console, "state_dict", broken)
    response, data = _request(server, "GET", "/api/state")
    assert response.status == 500 and json.loads(data) == {"error": "RuntimeError: see the console's log"}


def test_the_wait_at_ctrl_c_grows_with_the_runs_of_the_failover(served, monkeypatch):
    from lab.ui.console import server as console_server

    server, _ = served()
    waited = []

    class Held:
        def acquire(self, timeout):
            waited.append(timeout)
            return False
    monkeypatch.setattr(server.console, "_busy", Held())
    assert not server.console.wait_idle()
    monkeypatch.setattr(server.console, "running_operation",
                        lambda: console_server.Operation("x", "failover", {"fault": "kill", "runs": 4}))
    assert not server.console.wait_idle()
    assert waited == [console_server.OPERATION_WITHIN_S, 4 * console_server.OPERATION_WITHIN_S]


def test_a_results_folder_that_cannot_be_written_is_refused_when_the_console_starts(tmp_path):
    from lab.ui.console_cli import check_results_folder

    check_results_folder(tmp_path / "new" / "folder")
    assert (tmp_path / "new" / "folder").is_dir() and not list((tmp_path / "new" / "folder").iterdir())
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LabError, match="--results .*can't write there"):
        check_results_folder(blocker / "sub")
