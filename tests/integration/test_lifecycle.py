"""Bringing labs up and down: nothing half-made, nothing left behind."""
import uuid
from ipaddress import IPv4Network

import pytest
import yaml
from typer.testing import CliRunner

from lab import lifecycle
from lab.cli import app
from lab.topology import load_plan

from .conftest import SESSION


def lab_objects(adapters, lab):
    client = adapters.runtime.client
    containers = client.containers.list(all=True, filters={"label": f"lab.name={lab}"})
    networks = client.networks.list(filters={"label": f"lab.name={lab}"})
    return containers, networks


def test_down_leaves_nothing_behind(adapters, state_dir):
    plan = load_plan("active-standby", lab=f"down-{uuid.uuid4().hex[:6]}")
    lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels={"lab.session": SESSION})
    containers, networks = lab_objects(adapters, plan.lab)
    assert len(containers) == len(plan.nodes) and len(networks) == len(plan.scenario.networks)
    assert (state_dir / plan.lab / "psk.json").stat().st_mode & 0o077 == 0
    lifecycle.down(plan.lab, adapters)
    assert lab_objects(adapters, plan.lab) == ([], [])
    assert not (state_dir / plan.lab).exists()


def test_psk_never_appears_in_status_or_logs(adapters, state_dir):
    plan = load_plan("active-standby", lab=f"psk-{uuid.uuid4().hex[:6]}")
    status = lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels={"lab.session": SESSION})
    try:
        import json

        keys = json.loads((state_dir / plan.lab / "psk.json").read_text()).values()
        text = json.dumps(status.to_dict())
        for node in plan.nodes.values():
            text += adapters.runtime.logs(node.container)
        assert keys and not any(k in text for k in keys)
    finally:
        lifecycle.down(plan.lab, adapters)


def test_overlapping_host_route_is_refused_before_anything_is_made(adapters, state_dir, tmp_path):
    host_prefix = next(p for p, _ in adapters.host_routes() if p.prefixlen >= 16)
    scenario = yaml.safe_load(open("lab/scenarios/active-standby.yaml"))
    scenario["networks"]["internet"]["subnet"] = str(host_prefix)
    path = tmp_path / "clash.yaml"
    # Moving the internet segment to the host's own network needs addresses there too.
    hosts = list(IPv4Network(host_prefix).hosts())
    for i, node in enumerate(("azure-gw-0", "azure-gw-1", "onprem-0")):
        scenario["nodes"][node]["links"]["internet"] = str(hosts[-2 - i])
    scenario["gateways"]["azure-gw"]["public_ip"]["address"] = str(hosts[-6])
    scenario["name"] = "clash"
    path.write_text(yaml.safe_dump(scenario))
    result = CliRunner().invoke(app, ["up", str(path), "--lab", "clash-test"])
    assert result.exit_code == 2, result.output
    assert f"overlaps the host route {host_prefix}" in result.output
    assert lab_objects(adapters, "clash-test") == ([], [])
    assert not (state_dir / "clash-test").exists()


def test_a_failed_start_removes_what_it_made(adapters, state_dir):
    plan = load_plan("active-standby", lab=f"fail-{uuid.uuid4().hex[:6]}")
    with pytest.raises(Exception):
        # Nothing converges in a tenth of a second: the wait runs out.
        lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels={"lab.session": SESSION},
                     converge_within_s=0.1)
    assert lab_objects(adapters, plan.lab) == ([], [])
    assert not (state_dir / plan.lab).exists()
