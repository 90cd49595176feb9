"""Reaching a lab through the Docker API only: the clock, the agent's answers, engine errors."""
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.adapters.docker_runtime import engine_address, engine_error
from lab.adapters.node_agent import ike_sas
from lab.run.clock import estimate

AGENT_PATH = Path(__file__).resolve().parents[2] / "images" / "node" / "agent.py"


def load_agent():
    spec = importlib.util.spec_from_file_location("lab_agent", AGENT_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def samples_for(offset_ns, round_trips, answer_at=0.5, wall_minus_mono=10**18):
    """Round trips starting every millisecond; the engine reads its clock `answer_at` of the way through."""
    found = []
    for i, rtt in enumerate(round_trips):
        asked = 5_000_000_000 + i * 1_000_000
        engine = asked + int(rtt * answer_at) + offset_ns
        found.append((asked, engine, engine + wall_minus_mono, asked + rtt))
    return found


@given(offset=st.integers(min_value=10**9, max_value=10**15) | st.integers(min_value=-10**15, max_value=-10**9),
       rtts=st.lists(st.integers(min_value=50_000, max_value=50_000_000), min_size=1, max_size=20),
       answer_at=st.floats(min_value=0.0, max_value=1.0))
def test_a_remote_engines_offset_is_found_within_half_the_shortest_round_trip(offset, rtts, answer_at):
    clock = estimate(samples_for(offset, rtts, answer_at))
    assert not clock.shared
    assert clock.uncertainty_ns == min(rtts) // 2
    assert abs(clock.engine_minus_client_ns - offset) <= clock.uncertainty_ns + 1


def test_one_machines_clock_is_used_as_read():
    clock = estimate(samples_for(0, [300_000, 200_000, 900_000]))
    assert clock.shared and clock.engine_minus_client_ns == 0
    assert clock.from_client(123) == 123
    assert "one clock" in clock.summary


def test_the_engines_wall_clock_comes_with_the_samples():
    clock = estimate(samples_for(7 * 10**12, [400_000], wall_minus_mono=42))
    assert clock.wall.realtime_minus_monotonic_ns == 42
    assert "±0.20 ms" in clock.summary


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        estimate([])


def test_sas_as_the_agent_prints_them_become_typed_states():
    answers = [{"onprem-0": {"state": "ESTABLISHED", "local-host": "198.51.100.20", "remote-host": "198.51.100.100",
                             "established": "12", "child-sas": {"onprem-0-3": {
                                 "name": "onprem-0", "state": "INSTALLED", "packets-in": "5", "packets-out": "7",
                                 "bytes-in": "500", "bytes-out": "700", "local-ts": ["100.64.0.2/32"],
                                 "remote-ts": ["100.64.0.1/32"]}}}},
               {"onprem-0": {"state": "CONNECTING", "remote-host": "198.51.100.100"}}]
    first, second = ike_sas(answers)
    assert (first.state, first.established_s, first.remote_host) == ("ESTABLISHED", 12, "198.51.100.100")
    child = first.children[0]
    assert (child.name, child.packets_in, child.bytes_out, child.remote_ts) == ("onprem-0", 5, 700, ["100.64.0.1/32"])
    assert second.established_s is None and second.children == []


def test_the_agent_turns_vici_bytes_into_json_ready_values():
    agent = load_agent()
    assert agent.plain({b"child-sas": {b"c": {b"local-ts": [b"10.0.0.0/8"]}}, b"up": b"yes"}) == \
        {"child-sas": {"c": {"local-ts": ["10.0.0.0/8"]}}, "up": "yes"}


def test_the_agent_refuses_an_unknown_command_and_a_bad_link_state(capsys):
    agent = load_agent()
    assert agent.main(["frobnicate"]) == 2
    assert agent.main(["set-link", "eth0", "sideways"]) == 1
    assert "up or down" in capsys.readouterr().err


def test_engine_address_follows_docker_host(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert engine_address() == "tcp://127.0.0.1:2375"


def test_a_socket_we_may_not_open_says_how_to_get_access(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    error = engine_error(PermissionError(13, "Permission denied"))
    assert "permission denied" in str(error) and "sudo usermod -aG docker" in str(error)
    assert "\n" not in str(error)


def test_an_engine_that_does_not_answer_names_where_it_was_looked_for(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.255.255.1:2375")
    error = engine_error(ConnectionRefusedError(111, "Connection refused"))
    assert "tcp://10.255.255.1:2375" in str(error) and "DOCKER_HOST" in str(error)


class FakeStream:
    def __init__(self, lines):
        self._lines = lines
        self.stopped = False

    def lines(self):
        yield from self._lines

    def stop(self):
        self.stopped = True


def test_a_watch_is_ready_once_subscribed_and_yields_events_stamped_in_the_node():
    from lab.adapters.node_agent import AgentEventWatch

    stream = FakeStream(['{"ready":100}', '{"t":250,"label":"ike-updown","message":{"up":"yes"}}', '{"t":2'])
    watch = AgentEventWatch("onprem-0", stream)
    events = list(watch)
    watch.wait_ready(0.1)
    assert events == [(250, "ike-updown", {"up": "yes"})]
    watch.close()
    assert stream.stopped


def test_a_watch_that_ends_before_it_was_ready_says_why_at_once():
    from lab.adapters.node_agent import AgentEventWatch
    from lab.model.errors import LabError

    watch = AgentEventWatch("onprem-0", FakeStream(["watch: charon's VICI socket does not answer"]))
    assert list(watch) == []
    with pytest.raises(LabError, match="ended at once .watch: charon's VICI socket does not answer"):
        watch.wait_ready(10)


class DribblingSocket:
    """Hands out at most a few bytes per recv, as a slow transport does."""

    def __init__(self, data: bytes, step: int):
        self.data, self.step = data, step

    def recv(self, size):
        chunk, self.data = self.data[:min(size, self.step)], self.data[min(size, self.step):]
        return chunk


def test_exec_frames_are_read_whole_however_the_transport_splits_them():
    from lab.adapters.docker_runtime import _frame

    payload = b'{"monotonic":1,"realtime":2}\n'
    framed = bytes([1, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload
    for step in (1, 3, 8, 1000):
        assert _frame(DribblingSocket(framed * 2, step)) == payload
    with pytest.raises(OSError):
        _frame(DribblingSocket(framed[:10], 4))


def test_an_offset_just_inside_half_the_round_trip_is_one_clock_and_just_outside_is_not():
    inside = estimate(samples_for(0, [400_000], answer_at=1.0))      # read at the very end: +200 us from the middle
    assert inside.shared
    outside = estimate(samples_for(200_001, [400_000], answer_at=1.0))
    assert not outside.shared and outside.uncertainty_ns == 200_000


def test_docker_sdk_permission_text_is_recognised(monkeypatch):
    from docker.errors import DockerException

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    raw = DockerException("Error while fetching server API version: ('Connection aborted.', "
                          "PermissionError(13, 'Permission denied'))")
    assert "docker group" in str(engine_error(raw))


def test_one_node_failing_to_answer_does_not_hide_the_others():
    from lab.model.errors import LabError
    from lab.model.names import container_name
    from lab.run.ports import BgpPeerState, ContainerInfo
    from lab.run.status import read_node

    class Routes:
        def bgp_peers(self):
            return [BgpPeerState("10.1.255.4", 65515, "Established", 1, 1000, "gateway instance azure-gw-0")]

        def bgp_next_hops(self):
            return {"192.168.10.0/24": ["10.1.255.4 (gateway-subnet)"]}

        def bgp_paths(self, prefix):
            return []

    class Broken:
        def list_sas(self):
            raise LabError("onprem-0: lab-agent sas did not answer within 10 s")

    class Links:
        def kernel_option(self, option):
            return "not set", "/proc/config.gz"

        def link_kinds(self):
            return {"ipsec0": "tun"}

        def addresses(self):
            return {}

    def node(name, kind):
        return ContainerInfo(container_name("t", name), name, kind, "running", "healthy", 1, "h")

    router = read_node(node("vnet-router", "vnet-router"), lambda c: Broken(), lambda c: Routes(), lambda c: Links(),
                       with_kernel=False)
    device = read_node(node("onprem-0", "onprem-vpn-device"), lambda c: Broken(), lambda c: Routes(),
                       lambda c: Links(), with_kernel=True)
    assert router.problem is None and router.bgp[0].state == "Established"
    assert "did not answer" in device.problem and device.kernel_esp.startswith("no")


def test_an_ssh_engine_is_refused_with_the_tunnel_that_works(monkeypatch):
    from lab.adapters.docker_runtime import DockerRuntime
    from lab.model.errors import EngineError

    monkeypatch.setenv("DOCKER_HOST", "ssh://lab@engine.example")
    with pytest.raises(EngineError, match=r"ssh -NL \$XDG_RUNTIME_DIR/azlab-docker.sock:/var/run/docker.sock") as raised:
        DockerRuntime().ping()
    # Never a TCP port: one on 127.0.0.1 is a root-equivalent engine for every local user.
    assert "\n" not in str(raised.value) and "tcp://" not in str(raised.value)
