"""The Compose project, brought up by Compose itself (Debian's docker-compose 1.29), not by `lab up`.

docker-compose.yml is the default lab rendered by lab/render/compose.py (tests/unit/test_compose.py
holds the committed file to it). Its containers, networks and volumes have fixed names (lab
active-standby, the transport subnets of an empty engine), so bringing that very file up here would
take the name of a user's own `make lab-up` lab. The test renders the same project, through the same
`write_compose` as `lab compose`, for a lab of its own placed on free subnets; then `lab status`, one
kill failover and `lab down` run on it as a user runs them, and nothing is left.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from lab.failover.published import published
from lab.plan.load import load_plan
from lab.render.compose import write_compose
from lab.render.configs import guard_table
from lab.run import lifecycle
from lab.render.deploy_plan import IMAGE, plan_deploy

from .conftest import SESSION_LABELS
from .failover_checks import bound

COMPOSE_WITHIN_S = 180
COMPOSE_PROJECT = "com.docker.compose.project"


def compose(file, project: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker-compose", "-f", str(file), "-p", project, *args], capture_output=True, text=True,
                          timeout=COMPOSE_WITHIN_S)


def lab_cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """`lab ARGS...` as a user runs it: its own process, the test session's state folder."""
    return subprocess.run([sys.executable, "-m", "lab.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def project_objects(adapters, project: str) -> list[str]:
    """Whatever Compose made for the project, labelled by the lab or not."""
    client = adapters.runtime.client
    filters = {"label": f"{COMPOSE_PROJECT}={project}"}
    return ([c.name for c in client.containers.list(all=True, filters=filters)]
            + [n.name for n in client.networks.list(filters=filters)]
            + [v.name for v in client.volumes.list(filters=filters)])


def mounts(adapters, container: str) -> dict[str, list[tuple[str, str, bool]]]:
    found: dict[str, list[tuple[str, str, bool]]] = {"bind": [], "volume": []}
    for m in adapters.runtime.client.containers.get(container).attrs["Mounts"]:
        found.setdefault(m["Type"], []).append((m.get("Name") or m["Source"], m["Destination"], m["RW"]))
    return found


# About 75 s (and Debian's docker-compose installed): in make test-all.
@pytest.mark.sweep
def test_compose_lab_converges_fails_over_and_goes_with_lab_down(adapters, state_dir, tmp_path):
    assert shutil.which("docker-compose"), "docker-compose is not installed: `bash scripts/ensure-engine.sh` installs Debian's"
    plan = lifecycle.place_segments(load_plan("active-standby", lab=f"it-compose-{uuid.uuid4().hex[:6]}"), adapters)
    lab, project, file = plan.lab, f"lab-{plan.lab}", tmp_path / "docker-compose.yml"
    write_compose(plan, file, tmp_path / "compose" / plan.lab, image=IMAGE, extra_labels=SESSION_LABELS)
    try:
        up = compose(file, project, "up", "-d")
        assert up.returncode == 0, up.stderr[-2000:]
        lifecycle.wait_for("convergence", lambda: lifecycle.read_status(lab, adapters).unconverged_reasons(),
                           lifecycle.CONVERGED_WITHIN_S)

        # `lab status` sees the lab's nodes (not Compose's two one-shot services) and the host's guard.
        shown = lab_cli("status", "--lab", lab, "--json", "--window", "0", timeout=120)
        assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
        status = json.loads(shown.stdout)
        assert status["converged"] and sorted(n["node"] for n in status["nodes"]) == sorted(plan.nodes)
        assert status["guard"]["forwarded out of the lab"] == 0, status["guard"]

        # Each node mounts its own configs and, a VPN node, its own key volume, holding its own tunnels' keys only.
        keys = set()
        for spec in plan_deploy(plan, psks={}).nodes:
            found = mounts(adapters, spec.name)
            assert found["bind"] == [(str(tmp_path / "compose" / lab / spec.hostname), "/lab", False)], found
            own = [(f"{project}-psk-{spec.hostname}", "/lab-secrets", False)] if spec.needs_tun else []
            assert found["volume"] == own, (spec.hostname, found)
            if spec.needs_tun:
                code, text = adapters.runtime.exec(spec.name, ["cat", "/lab-secrets/psk.conf"])
                assert code == 0, text
                assert set(re.findall(r"ike-(\S+) \{", text)) == {t.name for t in plan.tunnels_of(spec.hostname)}
                code, mode = adapters.runtime.exec(spec.name, ["stat", "-c", "%a", "/lab-secrets/psk.conf"])
                assert mode.strip() == "600", mode
                keys |= set(re.findall(r'secret = "([A-Za-z0-9]+)"', text))
        assert len(keys) == len(plan.tunnels) and all(len(k) == 32 for k in keys)
        assert not any(k in file.read_text() for k in keys)

        # One unplanned loss of the active instance, with the lab's own (azure) profile: `--profile fast`
        # would have `lab failover` re-create it with `lab up`, and it would no longer be Compose's.
        results = tmp_path / "results"
        done = lab_cli("failover", "--lab", lab, "--fault", "kill", "--runs", "1", "--out", str(results))
        report = json.loads((results / "report.json").read_text())
        assert done.returncode != 3, [r["invalid"] for r in report["runs"]] + report["unmeasured"]
        run = report["runs"][0]
        assert report["profile"] == "azure" and run["invalid"] is None
        # Back by the lab's own failback, not by re-creating the lab.
        assert run["returned_by"] == "failback", run["returned_by"]
        claim = published("as-azure-kill")
        for d in run["directions"]:
            allowed = bound(claim.failover[d["direction"]].median, report["target_s"])
            assert d["converged"] and d["full_convergence_s"] <= allowed, (d["direction"], d["full_convergence_s"])
        after = lifecycle.read_status(lab, adapters)
        assert after.converged, after.unconverged_reasons()
        assert after.gateways[0].active == ["azure-gw-0"]
        nodes = {c.name for c in adapters.runtime.containers({"lab.name": lab})}
        assert nodes == {n.container for n in plan.nodes.values()}
        assert all(c.labels.get(COMPOSE_PROJECT) == project for c in adapters.runtime.containers({"lab.name": lab}))
        printed = shown.stdout + shown.stderr + done.stdout + done.stderr
        assert not any(k in printed + (results / "report.json").read_text() for k in keys)

        # `lab down` removes what Compose made (one-shot services and key volumes included) and the guard.
        down = lab_cli("down", "--lab", lab, timeout=120)
        assert down.returncode == 0, down.stderr[-2000:]
        assert adapters.runtime.lab_objects({"lab.name": lab}) == []
        assert project_objects(adapters, project) == []
        assert guard_table(lab) not in adapters.host.guards()
        assert not (state_dir / lab).exists()
    finally:
        compose(file, project, "down", "-v", "--timeout", "5")
        lifecycle.teardown(lab, adapters)
