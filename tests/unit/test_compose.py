"""docker-compose.yml is the default lab rendered; it must not drift from the scenario."""
from pathlib import Path

import yaml

from lab import __version__
from lab.render.compose import compose_files
from lab.render.deploy_plan import plan_deploy
from lab.plan.load import load_plan

ROOT = Path(__file__).resolve().parents[2]
CONFIG_ROOT = "compose/active-standby"
# The committed project names the default image, whatever LAB_IMAGE says here.
DEFAULT_IMAGE = f"azlab-node:{__version__}"


def test_compose_project_matches_the_default_scenario():
    expected = compose_files(load_plan("active-standby"), CONFIG_ROOT, image=DEFAULT_IMAGE)
    committed = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / CONFIG_ROOT).rglob("*") if p.is_file()}
    committed["docker-compose.yml"] = (ROOT / "docker-compose.yml").read_text()
    stale = sorted(rel for rel in set(expected) | set(committed) if expected.get(rel) != committed.get(rel))
    assert not stale, f"out of date (run `lab compose`): {stale}"


def test_compose_nodes_match_what_lab_up_creates():
    plan = load_plan("active-standby")
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    deploy = plan_deploy(plan, psks={})
    for spec in deploy.nodes:
        service = document["services"][spec.hostname]
        assert service["container_name"] == spec.name
        assert service["labels"]["lab.name"] == plan.lab
        assert set(service["cap_add"]) == set(spec.capabilities)
        addresses = {plan.network_name(net): v["ipv4_address"] for net, v in service["networks"].items()}
        assert addresses == spec.addresses
    for net in deploy.networks:
        assert document["networks"][net.labels["lab.network"]]["driver_opts"] == net.options
    guard = document["services"]["guard"]
    assert guard["network_mode"] == "host" and "$$LAB_GUARD" in guard["entrypoint"][-1]


def test_no_key_is_committed():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "tr -dc A-Za-z0-9 </dev/urandom | head -c 32" in text  # drawn at start-up, never stored in git
    assert not list((ROOT / CONFIG_ROOT).rglob("psk.conf"))
