"""A silent path cut: the agent's command, its client, and the image's protocol that carries it.
(Run for real on azlab-node: pings across a cut interface fail while it stays UP, LOWER_UP.)"""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.adapters.node_agent import AgentLink, NodeAgent
from lab.model.errors import LabError
from lab.run.deploy import AGENT_PROTOCOL, AGENT_PROTOCOL_LABEL

NODE_IMAGE = Path(__file__).resolve().parents[2] / "images" / "node"


def load_agent():
    spec = importlib.util.spec_from_file_location("lab_agent", NODE_IMAGE / "agent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeExec:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def exec_split(self, name, argv, timeout_s=10.0):
        self.calls.append((name, argv))
        return self.answer


def test_the_client_asks_the_agent_for_a_cut_and_returns_its_stamp():
    runtime = FakeExec((0, '{"t":35878993207536}\n', ""))
    link = AgentLink(NodeAgent("er-edge-0", "lab-t-er-edge-0", runtime))
    assert link.cut("er0", True) == 35878993207536
    assert link.cut("er0", False) == 35878993207536
    assert runtime.calls == [("lab-t-er-edge-0", ["lab-agent", "cut", "er0", "on"]),
                             ("lab-t-er-edge-0", ["lab-agent", "cut", "er0", "off"])]


def test_an_agent_refusal_is_one_line_naming_the_node():
    runtime = FakeExec((1, "", "cut: no link named nope0\n"))
    with pytest.raises(LabError, match=r"^er-edge-0: cut: no link named nope0$"):
        AgentLink(NodeAgent("er-edge-0", "c", runtime)).cut("nope0", True)


def test_each_interface_has_a_table_of_its_own_with_an_nft_safe_name():
    agent = load_agent()
    assert agent.cut_table("eth0") == "lab_cut_eth0"
    assert agent.cut_table("er-0.100") == "lab_cut_er_0_100"
    assert agent.cut_table("eth0") != agent.FENCE_TABLE


@pytest.mark.parametrize("args, said", [
    (["eth0"], "cut: name one interface, then on or off"),
    (["eth0", "maybe"], "cut: state must be on or off, not 'maybe'"),
])
def test_a_bad_cut_is_refused_before_anything_is_touched(args, said):
    done = subprocess.run([sys.executable, str(NODE_IMAGE / "agent.py"), "cut", *args], capture_output=True,
                          text=True, timeout=30)
    assert (done.returncode, done.stderr.strip()) == (1, said)


def test_the_image_declares_the_protocol_lab_needs():
    label = re.search(rf'LABEL {re.escape(AGENT_PROTOCOL_LABEL)}="([^"]*)"', (NODE_IMAGE / "Dockerfile").read_text())
    assert label and label.group(1) == AGENT_PROTOCOL
    assert "cut" in load_agent().COMMANDS
