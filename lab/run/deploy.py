"""Bringing a lab up: keys and state files, then named stages through ports.

Stages of `up`: check engine → check image → allocate segments → keys →
forwarding guard → create networks → create nodes → wait healthy → wait
converged (lab/run/lifecycle.py runs them). Any failure or Ctrl-C after
something was created tears the lab down again, so nothing is left
half-made. What they create is planned as values first, with no side
effects (lab/render/deploy_plan.py).
"""
from __future__ import annotations

import json
import re
import secrets
import string
from pathlib import Path

from lab.model import names
from lab.model.azure import azure_rules
from lab.model.errors import DeployError, LabError
from lab.model.events import EventStream, Stage
from lab.model.schema import LabPlan, Profile, Scenario
from lab.render.deploy_plan import DeployPlan
from lab.run.ports import ContainerRuntime
from lab.run.state import read_private, write_private

# The image's lab-agent (images/node/agent.py) speaks this version of its commands.
AGENT_PROTOCOL_LABEL = "azlab.agent-protocol"
AGENT_PROTOCOL = "4"


def lab_labels(lab: str) -> dict[str, str]:
    return {"lab.name": lab}


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
