"""wait_healthy runs each node's readiness check itself, only while it waits (issue 18: Docker's
healthcheck every 2 s kept an idle lab at a fifth of a core)."""
import threading

import pytest

from lab.model.errors import DeployError, WaitTimeout
from lab.model.kinds import KINDS, READY_CHECK, ready_check
from lab.run.lifecycle import wait_healthy
from lab.run.ports import ContainerInfo


class Nodes:
    """A runtime fake: containers whose readiness check answers from a script of (code, output)s."""

    def __init__(self, answers: dict[str, list[tuple[int, str]]], status: dict[str, str] | None = None):
        self.answers = answers
        self.status = status or {}
        self.pids = {node: 100 for node in answers}
        self.checks: list[tuple[str, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def containers(self, labels):
        assert labels == {"lab.name": "t"}
        return [ContainerInfo(f"lab-t-{node}", node, "onprem-vpn-device", self.status.get(node, "running"), None,
                              self.pids[node], "h") for node in sorted(self.answers)]

    def exec(self, name, argv, timeout_s=10.0):
        node = name.removeprefix("lab-t-")
        with self._lock:
            self.checks.append((node, tuple(argv)))
            script = self.answers[node]
            return script.pop(0) if len(script) > 1 else script[0]

    def logs(self, name, tail=None):
        return "charon did not open its VICI socket\n"

    def checked(self, node: str) -> int:
        return sum(1 for n, _ in self.checks if n == node)


def test_every_kind_declares_a_readiness_check():
    assert all(kind.ready_check for kind in KINDS.values())
    assert ready_check("onprem-vpn-device") == READY_CHECK and ready_check("someone-elses") == READY_CHECK


def test_a_node_is_checked_until_it_passes_and_then_no_more():
    nodes = Nodes({"slow": [(1, "its entrypoint is still starting the daemons\n"), (1, "FRR's bgpd is not running\n"),
                            (0, "")],
                   "quick": [(0, "")]})
    wait_healthy("t", nodes, within_s=10)
    assert nodes.checked("slow") == 3 and nodes.checked("quick") == 1
    assert {argv for _, argv in nodes.checks} == {READY_CHECK}


def test_the_timeout_names_each_node_with_what_its_check_said():
    nodes = Nodes({"onprem-0": [(1, "starting\nFRR's bgpd is not running\n")], "vnet": [(0, "")],
                   "hung": [(124, "")], "mute": [(1, "")]})
    with pytest.raises(WaitTimeout) as raised:
        wait_healthy("t", nodes, within_s=0.6)
    message = str(raised.value)
    assert message.startswith("healthy nodes not reached within 1 s: ")
    assert "hung: its readiness check did not answer within 5 s" in message
    assert "mute: not ready (its check exited 1)" in message
    assert "onprem-0: FRR's bgpd is not running" in message
    assert "vnet" not in message


def test_a_node_that_is_not_running_yet_is_not_checked():
    nodes = Nodes({"paused": [(0, "")]}, status={"paused": "paused"})
    with pytest.raises(WaitTimeout, match=r"paused is paused$"):
        wait_healthy("t", nodes, within_s=0.6)
    assert nodes.checks == []


def test_an_exited_node_fails_at_once_with_its_log():
    nodes = Nodes({"onprem-0": [(1, "")]}, status={"onprem-0": "exited"})
    with pytest.raises(DeployError, match="onprem-0.*container exited: charon did not open its VICI socket"):
        wait_healthy("t", nodes, within_s=30)


def test_a_node_restarted_while_the_wait_goes_on_is_checked_again():
    nodes = Nodes({"gw": [(0, "")], "other": [(1, "charon does not answer on VICI\n"), (0, "")]})
    exec_once = nodes.exec

    def exec_and_restart_gw(name, argv, timeout_s=10.0):
        nodes.pids["gw"] = 200   # killed and started again meanwhile: a new process
        return exec_once(name, argv, timeout_s)

    nodes.exec = exec_and_restart_gw
    wait_healthy("t", nodes, within_s=10)
    assert nodes.checked("gw") == 2 and nodes.checked("other") == 2
