"""Bad or huge input gets one line, never a traceback or a stall: each case is written to a file here
(some are too large, or not even text, to keep in tests/errors/), then loaded and given to `lab up`."""
import copy
import importlib.util
import time
from importlib import resources
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lab.ui.cli import app
from lab.model.errors import TopologyError
from lab.model.limits import Limits, lab_limits
from lab.plan.load import load_profile, load_scenario

LIMITS = lab_limits()
DEPTH = LIMITS.yaml_depth.value
# The benchmark's branch sites, to show that 100 of them fit.
_spec = importlib.util.spec_from_file_location("bench_plan", Path(__file__).parents[2] / "scripts" / "bench_plan.py")
BENCH = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(BENCH)


def default_scenario() -> dict:
    return yaml.safe_load((resources.files("lab") / "scenarios" / "active-standby.yaml").read_text())


def lan(i: int) -> str:
    """The first three octets of extra LAN i: a /24 clear of the default scenario's networks."""
    return f"10.{100 + i // 256}.{i % 256}"


def dumped(scenario: dict) -> bytes:
    return yaml.safe_dump(scenario, sort_keys=False).encode()


def too_large() -> bytes:
    text = dumped(default_scenario())
    return text + b"#" * (LIMITS.file_bytes.value + 1 - len(text))


def nested(levels: int) -> bytes:
    # Before the limit, PyYAML's recursive composer raised RecursionError near 500 levels.
    return b"description: " + b"[" * levels + b"]" * levels + b"\n"


def alias_bomb() -> bytes:
    """Nine anchors, each alias nine times the one before: 9^9 nodes in 10 short lines."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines + ["probes: *a8", ""]).encode()


def more_nodes() -> bytes:
    scenario = default_scenario()
    for i in range(LIMITS.nodes.value + 1 - len(scenario["nodes"])):
        scenario["nodes"][f"extra-host-{i}"] = copy.deepcopy(scenario["nodes"]["onprem-host"])  # no YAML aliases
    return dumped(scenario)


def more_networks() -> bytes:
    scenario = default_scenario()
    for i in range(LIMITS.networks.value + 1 - len(scenario["networks"])):
        scenario["networks"][f"extra-{i}"] = {"subnet": f"{lan(i)}.0/24"}
    return dumped(scenario)


def more_tunnels() -> bytes:
    scenario = default_scenario()
    (tunnel,) = scenario["tunnels"]
    scenario["tunnels"] = [dict(tunnel, name=f"t{i}") for i in range(LIMITS.tunnels.value + 1)]
    return dumped(scenario)


def more_vrrp_groups() -> bytes:
    """Two devices sharing the first hop of 205 LANs: with the gateway's group (ID 51), IDs run to 256."""
    scenario = default_scenario()
    scenario["nodes"]["onprem-1"] = dict(scenario["nodes"]["onprem-0"], asn=65020, bgp_peer_ip="10.20.255.1",
                                         links={"internet": "198.51.100.21"})
    for i in range(205):
        name = f"lan-{i}"
        scenario["networks"][name] = {"subnet": f"{lan(i)}.0/24"}
        for device, address in (("onprem-0", 2), ("onprem-1", 3)):
            scenario["nodes"][device]["links"][name] = f"{lan(i)}.{address}"
        scenario.setdefault("first_hop", {})[name] = {"network": name, "address": f"{lan(i)}.1",
                                                      "routers": ["onprem-0", "onprem-1"]}
    return dumped(scenario)


# name -> (file bytes, the one line's text)
CASES = {
    "file-too-large": (too_large, f"bytes; the lab takes at most {LIMITS.file_bytes.value:,} (limits.yaml file_bytes:"),
    # The top-level mapping is the first level.
    "nesting-too-deep": (lambda: nested(1000), f"line 1: nested {DEPTH + 1} levels deep; the lab takes at most {DEPTH} "
                         "(limits.yaml yaml_depth:"),
    "nesting-one-too-deep": (lambda: nested(DEPTH), f"nested {DEPTH + 1} levels deep"),
    "alias-bomb": (alias_bomb, f"YAML nodes so far, aliases expanded; the lab takes at most {LIMITS.yaml_nodes.value:,} "
                   "(limits.yaml yaml_nodes:"),
    "alias-inside-its-anchor": (lambda: b"probes: &p [[onprem-host, *p]]\n",
                                "line 1: *p lies inside its own anchor, so it expands without end"),
    "not-utf-8": (lambda: dumped(default_scenario()).replace(b"active/standby", b"active\xff"),
                  "(0xff): not UTF-8 text (invalid start byte)"),
    "latin-1": (lambda: b"name: x\ndescription: caf\xe9 au lait\n", "line 2, byte 24 (0xe9): not UTF-8 text"),
    "impossible-date": (lambda: b"name: 2024-13-01\n", "not valid YAML (month must be in 1..12)"),
    "too-many-nodes": (more_nodes, f"nodes: {LIMITS.nodes.value + 1} nodes; the lab takes at most {LIMITS.nodes.value} "
                       "(limits.yaml nodes: 100 branch sites"),
    "too-many-networks": (more_networks, f"networks: {LIMITS.networks.value + 1} networks; the lab takes at most "
                          f"{LIMITS.networks.value} (limits.yaml networks:"),
    "too-many-tunnels": (more_tunnels, f"tunnels: {LIMITS.tunnels.value + 1} planned tunnels; the lab takes at most "
                         f"{LIMITS.tunnels.value} (limits.yaml tunnels:"),
    "too-many-vrrp-groups": (more_vrrp_groups, "first_hop: 206 VRRP groups (first-hop groups and active-standby "
                             "gateways) would need router IDs 51 to 256; VRRP's end at 255 (RFC 5798)"),
}


@pytest.fixture(params=sorted(CASES))
def case(request, tmp_path) -> tuple[Path, str]:
    content, message = CASES[request.param]
    path = tmp_path / f"{request.param}.yaml"
    path.write_bytes(content())
    return path, message


def test_load_refuses_with_the_limit_named(case):
    path, message = case
    start = time.monotonic()
    with pytest.raises(TopologyError) as caught:
        load_scenario(str(path))
    assert caught.value.source == path.name
    assert len(caught.value.problems) == 1 and message in caught.value.problems[0]
    assert time.monotonic() - start < 5  # refused, not planned


def test_up_prints_one_line_and_creates_nothing(case):
    path, message = case
    # No engine: `up` would fail differently if it got as far as asking for one.
    result = CliRunner().invoke(app, ["up", str(path)], env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith(f"error: {path.name}: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


def test_a_profile_gets_the_same_checks(tmp_path):
    path = tmp_path / "deep-profile.yaml"
    path.write_bytes(nested(1000))
    with pytest.raises(TopologyError, match="deep-profile.yaml: line 1: nested 17 levels deep"):
        load_profile(str(path))


@pytest.mark.parametrize("devices", [1, 2])
def test_100_branch_sites_fit(devices, tmp_path):
    # The benchmark's sites: a LAN, a host and one or two VPN devices each (two share the first hop), hubs of 100 tunnels.
    path = tmp_path / "branches.yaml"
    path.write_bytes(dumped(BENCH.branch_scenario(100, devices)))
    _, scenario = load_scenario(str(path))
    assert len(scenario.nodes) == 100 * (devices + 1) + 4 * devices
    assert all(getattr(LIMITS, name).reason for name in Limits.model_fields)


def test_a_scenario_just_inside_the_limits_loads(tmp_path):
    scenario = default_scenario()
    for i in range(LIMITS.networks.value - len(scenario["networks"])):
        scenario["networks"][f"extra-{i}"] = {"subnet": f"{lan(i)}.0/24"}
        scenario["nodes"][f"extra-host-{i}"] = {"kind": "workload-host", "links": {f"extra-{i}": f"{lan(i)}.10"},
                                                "router": f"{lan(i)}.1"}
    path = tmp_path / "inside.yaml"
    path.write_bytes(dumped(scenario))
    _, loaded = load_scenario(str(path))
    assert len(loaded.networks) == LIMITS.networks.value
