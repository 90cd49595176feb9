"""Bringing a lab up and down: a pure plan, then named stages through ports.

Stages of `up`: check engine → check image → check host → write configs →
create networks → create nodes → wait healthy → wait converged. Any failure
or Ctrl-C after something was created tears the lab down again, so nothing
is left half-made.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import DeployError, HostConflictError
from .hostcheck import find_conflicts
from .kinds import KINDS
from .model import LabPlan
from .ports import ContainerRuntime, ContainerSpec, NetworkSpec
from .render import render_node, render_psk_secrets

IMAGE = os.environ.get("LAB_IMAGE", f"azlab-node:{__version__}")
SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    # Tunnel traffic comes back on ipsec0/vti interfaces, not the route's.
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
}

Progress = Callable[[str], None]


# Not `internal`: Docker's internal-network rules drop every routed packet.
# Instead no NAT, and nodes keep no default route, so nothing can leave the machine.
BRIDGE_OPTIONS = {
    "com.docker.network.bridge.enable_ip_masquerade": "false",
    "com.docker.network.bridge.enable_icc": "true",
}


def state_root() -> Path:
    if "LAB_STATE_DIR" in os.environ:
        return Path(os.environ["LAB_STATE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/azlab")
    return Path.home() / ".local" / "state" / "azlab"


def lab_labels(lab: str) -> dict[str, str]:
    return {"lab.name": lab}


@dataclass(frozen=True)
class NodeDeploy:
    spec: ContainerSpec
    files: dict[str, str]
    secret_files: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class DeployPlan:
    lab: str
    state_dir: Path
    networks: list[NetworkSpec]
    nodes: list[NodeDeploy]


def node_labels(plan: LabPlan, node: str) -> dict[str, str]:
    spec = plan.scenario.nodes[node]
    labels = {
        "lab.name": plan.lab,
        "lab.scenario": plan.scenario.name,
        "lab.profile": plan.profile.name,
        "lab.node": node,
        "lab.kind": spec.kind,
    }
    if spec.zone is not None:
        labels["lab.zone"] = str(spec.zone)
    owner = plan.instance_gateway(node)
    if owner:
        labels["lab.gateway"] = owner[0]
        labels["lab.public-ip"] = str(owner[1].public_ip.address)
        labels["lab.public-network"] = owner[1].public_ip.network
    return labels


def plan_deploy(
    plan: LabPlan,
    state_dir: Path,
    psks: dict[str, str],
    image: str = IMAGE,
    extra_labels: dict[str, str] | None = None,
    image_id: str = "",
) -> DeployPlan:
    """Everything `up` will create, as values; no side effects."""
    extra = extra_labels or {}
    networks = [
        NetworkSpec(
            name=plan.network_name(name),
            subnet=net.subnet,
            bridge_address=str(net.bridge_address),
            labels={"lab.name": plan.lab, "lab.network": name, **extra},
            options=dict(BRIDGE_OPTIONS),
        )
        for name, net in plan.scenario.networks.items()
    ]
    nodes = []
    for name, node in plan.nodes.items():
        kind = KINDS[node.kind]
        files = render_node(plan, name, kind.renderers)
        secret_files = render_psk_secrets(plan, name, psks) if kind.needs_tun else {}
        digest = hashlib.sha256(
            json.dumps([image, image_id, sorted(files.items()), sorted(secret_files.items())]).encode()
        ).hexdigest()[:16]
        labels = {**node_labels(plan, name), "lab.config-hash": digest, **extra}
        spec = ContainerSpec(
            name=node.container,
            hostname=name,
            image=image,
            labels=labels,
            config_dir=str(state_dir / "nodes" / name),
            addresses={plan.network_name(n): str(a) for n, a in node.links.items()},
            capabilities=kind.capabilities,
            needs_tun=kind.needs_tun,
            sysctls=SYSCTLS,
        )
        nodes.append(NodeDeploy(spec=spec, files=files, secret_files=secret_files))
    return DeployPlan(lab=plan.lab, state_dir=state_dir, networks=networks, nodes=nodes)


# --- side effects ------------------------------------------------------------------


def load_or_create_psks(state_dir: Path, tunnels: list[str]) -> dict[str, str]:
    """One CSPRNG key per tunnel, kept 0600 so a repeated `up` keeps the same keys."""
    path = state_dir / "psk.json"
    keys: dict[str, str] = {}
    if path.exists():
        keys = json.loads(path.read_text())
    changed = False
    for tunnel in tunnels:
        if tunnel not in keys:
            keys[tunnel] = base64.b64encode(secrets.token_bytes(32)).decode()
            changed = True
    if changed or not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(path, json.dumps(keys), 0o600)
    return keys


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def write_configs(deploy: DeployPlan) -> None:
    deploy.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(deploy.state_dir, 0o700)
    for node in deploy.nodes:
        folder = Path(node.spec.config_dir)
        if folder.exists():
            shutil.rmtree(folder)
        for rel, text in node.files.items():
            _write(folder / rel, text, 0o755 if rel.endswith(".sh") else 0o644)
        for rel, text in node.secret_files.items():
            _write(folder / rel, text, 0o600)


def check_host(plan: LabPlan, runtime: ContainerRuntime, host_routes: list[tuple[IPv4Network, str]]) -> None:
    problems = find_conflicts(plan, host_routes, runtime.network_subnets())
    if problems:
        raise HostConflictError("; ".join(problems))


def create_networks(deploy: DeployPlan, runtime: ContainerRuntime, progress: Progress) -> None:
    for net in deploy.networks:
        progress(f"network {net.name} ({net.subnet})")
        runtime.create_network(net)


def create_nodes(deploy: DeployPlan, runtime: ContainerRuntime, progress: Progress) -> None:
    """Idempotent: a running node with the same config is kept; others are recreated."""
    existing = {c.name: c for c in runtime.containers({"lab.name": deploy.lab})}
    for node in deploy.nodes:
        spec = node.spec
        current = existing.get(spec.name)
        same = current is not None and current.config_hash == spec.labels["lab.config-hash"]
        if same and current.status == "running":
            progress(f"node {spec.hostname}: unchanged")
            continue
        if current is not None and not same:
            runtime.remove_lab({"lab.name": deploy.lab, "lab.node": spec.hostname})
            current = None
        if current is None:
            progress(f"node {spec.hostname}: creating")
            runtime.create_container(spec)
        progress(f"node {spec.hostname}: starting")
        runtime.start(spec.name)


def remove_lab(lab: str, runtime: ContainerRuntime, state_dir: Path | None = None) -> list[str]:
    removed = runtime.remove_lab(lab_labels(lab))
    if state_dir is not None and state_dir.exists():
        shutil.rmtree(state_dir)
        removed.append(str(state_dir))
    return removed


def ensure_image(runtime: ContainerRuntime, image: str) -> str:
    """The image's ID; a lab's containers are re-created when it changes."""
    image_id = runtime.image_id(image)
    if image_id is None:
        raise DeployError("image", f"{image} is not built: run `make images`")
    return image_id


def raise_if_dead(lab: str, runtime: ContainerRuntime) -> None:
    for c in runtime.containers(lab_labels(lab)):
        if c.status in ("exited", "dead"):
            tail = runtime.logs(c.name, tail=15).strip().replace("\n", " | ")
            raise DeployError(c.node, f"container exited: {tail[-400:]}")
