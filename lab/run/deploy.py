"""Bringing a lab up and down: a pure plan, then named stages through ports.

Stages of `up`: check engine → check image → allocate segments → keys →
forwarding guard → create networks → create nodes → wait healthy → wait
converged. Any failure or Ctrl-C after something was created tears the lab
down again, so nothing is left half-made.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from lab import __version__

from lab.model import names
from lab.model.azure import azure_rules
from lab.model.errors import DeployError, LabError
from lab.model.events import EventStream, Stage
from lab.model.kinds import KINDS
from lab.model.schema import LabPlan, Profile, Scenario
from lab.plan.redundancy import strategy_for
from lab.model.specs import ConfigFile, ContainerSpec, NetworkSpec
from lab.run.ports import ContainerRuntime
from lab.render.configs import render_node, render_psk_secrets
from lab.run.state import read_private, write_private

IMAGE = os.environ.get("LAB_IMAGE", f"azlab-node:{__version__}")
SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    # Tunnel traffic comes back on ipsec0/vti interfaces, not the route's.
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
    # ECMP hashes each flow by its ports too (L4), so flows between one pair of
    # hosts spread over every tunnel, as on the routers Azure documents.
    "net.ipv4.fib_multipath_hash_policy": "1",
}


# Docker's embedded DNS forwards a node's lookups to this list from the node's own namespace:
# its loopback, where nothing answers. Without it, a host whose resolv.conf names a loopback
# resolver (127.0.0.53) would have dockerd forward them from the host's namespace, off the
# machine, where no forwarding guard sees them.
NO_NAME_SERVICE = ("127.0.0.1",)


# Not `internal`: Docker's internal-network rules drop every routed packet.
# No NAT; what keeps packets in the lab is the host's forwarding guard
# (render_guard), which matches the lab's bridges by name.
BRIDGE_OPTIONS = {
    "com.docker.network.bridge.enable_ip_masquerade": "false",
    "com.docker.network.bridge.enable_icc": "true",
}
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"

# The image's lab-agent (images/node/agent.py) speaks this version of its commands.
AGENT_PROTOCOL_LABEL = "azlab.agent-protocol"
AGENT_PROTOCOL = "2"

def lab_labels(lab: str) -> dict[str, str]:
    return {"lab.name": lab}


@dataclass(frozen=True)
class DeployPlan:
    lab: str
    networks: list[NetworkSpec]
    nodes: list[ContainerSpec]


def node_labels(plan: LabPlan, node: str) -> dict[str, str]:
    spec = plan.scenario.nodes[node]
    labels = {
        "lab.name": plan.lab,
        "lab.scenario": plan.scenario.name,
        "lab.profile": plan.profile.name,
        # Where the profile departs from Azure: status says so next to the figures.
        "lab.departures": json.dumps(list(azure_rules().departures(plan.profile).values())),
        "lab.node": node,
        "lab.kind": spec.kind,
    }
    if spec.zone is not None:
        labels["lab.zone"] = str(spec.zone)
    owner = plan.instance_gateway(node)
    if owner:
        gateway = owner[1]
        labels["lab.gateway"] = owner[0]
        labels["lab.redundancy"] = gateway.mode
        labels["lab.sku"] = gateway.sku
        # The address that makes this instance active: the shared one, or its own.
        labels["lab.public-ip"] = str(strategy_for(gateway.mode).addresses(plan.scenario, gateway)[node].public_ip)
    tunnels = plan.tunnels_of(node)
    if tunnels:
        # What status expects this node to hold once the lab has settled.
        labels["lab.tunnels"] = ",".join(t.name for t in tunnels)
    groups = plan.groups_of(node)
    if groups:
        labels["lab.vrrp"] = ",".join(f"{g.name}={g.addresses[0][0]}" for g in groups)
    return labels


def plan_deploy(
    plan: LabPlan,
    psks: dict[str, str],
    image: str = IMAGE,
    extra_labels: dict[str, str] | None = None,
    image_id: str = "",
    config_key: bytes | None = None,
) -> DeployPlan:
    """Everything `up` will create, as values; no side effects.

    Each node's config hash (a label anyone with the engine can read) is an
    HMAC under the lab's own key: without the state folder it tells nothing
    about the node's pre-shared keys, which may be short ones set by hand.
    Without the lab's key, a throwaway one: such hashes match no running node.
    """
    extra = extra_labels or {}
    key = config_key or secrets.token_bytes(32)
    networks = [
        NetworkSpec(
            name=plan.network_name(name),
            subnet=segment.subnet,
            bridge_address=str(segment.bridge_address),
            labels={"lab.name": plan.lab, "lab.network": name, **extra},
            options={**BRIDGE_OPTIONS, BRIDGE_NAME_OPTION: segment.bridge},
        )
        for name, segment in plan.segments.items()
    ]
    nodes = []
    for name, node in plan.nodes.items():
        kind = KINDS[node.kind]
        files = render_node(plan, name, kind.renderers)
        secret_files = render_psk_secrets(plan, name, psks) if kind.needs_tun else {}
        digest = hmac.new(key, json.dumps(
            [image, image_id, sorted(files.items()), sorted(secret_files.items())]).encode(), hashlib.sha256
        ).hexdigest()[:16]
        labels = {**node_labels(plan, name), "lab.config-hash": digest, **extra}
        nodes.append(ContainerSpec(
            name=node.container,
            hostname=name,
            image=image,
            labels=labels,
            files=tuple(ConfigFile(rel, text, 0o755 if rel.endswith(".sh") else 0o644) for rel, text in files.items())
            + tuple(ConfigFile(rel, text, 0o600) for rel, text in secret_files.items()),
            addresses={plan.network_name(n): str(plan.segments[n].attachments[name]) for n in node.links},
            capabilities=kind.capabilities,
            needs_tun=kind.needs_tun,
            sysctls=SYSCTLS,
            memory_bytes=kind.memory_mib * 2**20,
            pids=kind.pids,
            groups=kind.groups,
            dns=NO_NAME_SERVICE,
        ))
    return DeployPlan(lab=plan.lab, networks=networks, nodes=nodes)


# --- side effects ------------------------------------------------------------------


# Generated keys: letters and digits only, so a person can type one into an Azure
# connection (which takes printable ASCII without space, '-' or '~').
PSK_ALPHABET = string.ascii_letters + string.digits
PSK_LENGTH = 32


def new_psk() -> str:
    return "".join(secrets.choice(PSK_ALPHABET) for _ in range(PSK_LENGTH))


PLAN_SOURCE = "plan-source.json"
PSK_FILE = "psk.json"
CONFIG_KEY_FILE = "config.key"


def save_plan_source(state_dir: Path, plan: LabPlan) -> None:
    """The validated scenario and profile a lab was built from: a lab from a YAML file is
    rebuilt from these, not from a built-in of the same name."""
    source = {"scenario": plan.scenario.model_dump(mode="json"), "profile": plan.profile.model_dump(mode="json")}
    write_private(state_dir / PLAN_SOURCE, json.dumps(source))


def load_plan_source(state_dir: Path) -> tuple[Scenario, Profile] | None:
    """What save_plan_source kept, checked as a scenario file is; None when there is none, or none
    this version can read."""
    text = read_private(state_dir / PLAN_SOURCE)
    if text is None:
        return None
    try:
        source = json.loads(text)
        return Scenario.model_validate(source["scenario"]), Profile.model_validate(source["profile"])
    except (ValueError, KeyError, TypeError, RecursionError):
        # Written by another version of the lab (pydantic's errors are ValueErrors): use the labels.
        return None


def load_or_create_psks(state_dir: Path, tunnels: list[str]) -> dict[str, str]:
    """One CSPRNG key per tunnel, kept 0600 so a repeated `up` keeps the same keys. A key put
    in psk.json by hand (to match an Azure connection's) is kept if Azure would take it."""
    path = state_dir / PSK_FILE
    text = read_private(path)
    keys = _parse_psks(path, text) if text is not None else {}
    changed = False
    for tunnel in tunnels:
        if tunnel not in keys:
            keys[tunnel] = new_psk()
            changed = True
    if changed or text is None:
        write_private(path, json.dumps(keys))
    return keys


def _parse_psks(path: Path, text: str) -> dict[str, str]:
    """psk.json as a user may have edited it: one line naming what is wrong, never a traceback."""
    try:
        keys = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise LabError(f"{path}: not valid JSON ({exc.__class__.__name__}): fix it or remove it "
                       "(new keys are drawn)") from None
    if not isinstance(keys, dict):
        raise LabError(f"{path}: expected an object of tunnel name to key")
    rule = azure_rules().psk
    for tunnel, key in keys.items():
        if names.SHORT.problem(tunnel):
            raise LabError(f"{path}: {names.SHORT.problem(tunnel)}")
        problem = rule.problem(key) if isinstance(key, str) else "not a string"
        if problem:
            raise LabError(f"{path}: the key of tunnel {tunnel} is not one Azure takes ({problem})")
    return keys


def load_or_create_config_key(state_dir: Path) -> bytes:
    """The lab's own HMAC key for config hashes (plan_deploy), drawn once and kept 0600."""
    path = state_dir / CONFIG_KEY_FILE
    text = read_private(path)
    if text is not None and len(text.strip()) == 64:
        try:
            return bytes.fromhex(text.strip())
        except ValueError:
            pass
    key = secrets.token_bytes(32)
    write_private(path, key.hex())
    return key


def create_networks(deploy: DeployPlan, runtime: ContainerRuntime, events: EventStream) -> None:
    for net in deploy.networks:
        events.stage(deploy.lab, Stage.CREATING_NETWORKS, f"{net.name} ({net.subnet})")
        runtime.create_network(net)


def create_nodes(deploy: DeployPlan, runtime: ContainerRuntime, events: EventStream) -> None:
    """Idempotent: a running node with the same config is kept; others are recreated."""
    existing = {c.name: c for c in runtime.containers({"lab.name": deploy.lab})}
    for spec in deploy.nodes:
        current = existing.get(spec.name)
        same = current is not None and current.config_hash == spec.labels["lab.config-hash"]
        if same and current.status == "running":
            events.stage(deploy.lab, Stage.CREATING_NODES, f"{spec.hostname}: unchanged")
            continue
        if current is not None and not same:
            runtime.remove_lab({"lab.name": deploy.lab, "lab.node": spec.hostname})
            current = None
        if current is None:
            events.stage(deploy.lab, Stage.CREATING_NODES, f"{spec.hostname}: creating")
            runtime.create_container(spec)
        events.stage(deploy.lab, Stage.CREATING_NODES, f"{spec.hostname}: starting")
        runtime.start(spec.name)


# A Docker image reference: [registry/]name[:tag][@digest], nothing a shell or a log could misread.
IMAGE_REFERENCE = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]{1,128})?(@sha256:[0-9a-f]{64})?")


def check_image(image: str) -> str:
    """The image to run (LAB_IMAGE or an option), checked where it enters."""
    if len(image) > 255 or not IMAGE_REFERENCE.fullmatch(image):
        raise LabError(f"image {image!r} (LAB_IMAGE or --tag): not a Docker image reference")
    return image


def ensure_image(runtime: ContainerRuntime, image: str) -> str:
    """The image's ID; a lab's containers are re-created when it changes."""
    image_id = runtime.image_id(check_image(image))
    if image_id is None:
        raise DeployError("image", f"{image} is not built: run `make images`")
    found = runtime.image_labels(image).get(AGENT_PROTOCOL_LABEL)
    if found != AGENT_PROTOCOL:
        raise DeployError("image", f"{image} has lab-agent protocol {found or 'none'}, this lab needs "
                                   f"{AGENT_PROTOCOL}: rebuild it with `make images`")
    return image_id


def raise_if_dead(lab: str, runtime: ContainerRuntime) -> None:
    for c in runtime.containers(lab_labels(lab)):
        if c.status in ("exited", "dead"):
            tail = runtime.logs(c.name, tail=15).strip().replace("\n", " | ")
            raise DeployError(c.node, f"container exited: {tail[-400:]}")
