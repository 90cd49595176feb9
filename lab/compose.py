"""The default lab as a Docker Compose project (pure rendering).

`docker compose up -d` on its own then gives the same lab: same image, same
labels (so `lab status` and `lab down` recognise it), same configs, which
live under compose/<lab>/ in the repository. Only the pre-shared keys are
not in git: a one-shot service draws them from the kernel's CSPRNG into a
volume the VPN nodes read.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from .deploy import IMAGE, DeployPlan, plan_deploy
from .model import LabPlan
from .render import render_guard

PSK_VOLUME = "psk"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the key service's script) as readable literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_psk_init(plan: LabPlan) -> str:
    """Shell for the one-shot key service; keys never appear in the compose file."""
    lines = ["set -eu", "umask 077", "[ -s /secrets/psk.conf ] && exit 0", "{", "echo 'secrets {'"]
    for t in plan.tunnels:
        lines += [
            f"echo '  ike-{t.name} {{'",
            f"echo '    id-gateway = {t.gateway_public_ip}'",
            f"echo '    id-device = {t.device_public_ip}'",
            # Letters and digits, as `lab up` draws them: a key Azure takes.
            "echo \"    secret = \\\"$(tr -dc A-Za-z0-9 </dev/urandom | head -c 32)\\\"\"",
            "echo '  }'",
        ]
    lines += ["echo '}'", "} > /secrets/psk.conf"]
    return "\n".join(lines) + "\n"


def render_compose(plan: LabPlan, deploy: DeployPlan, config_root: str) -> str:
    networks = {
        net.labels["lab.network"]: {
            "name": net.name,
            "driver": "bridge",
            "driver_opts": dict(net.options),
            "ipam": {"config": [{"subnet": str(net.subnet), "gateway": net.bridge_address}]},
            "labels": net.labels,
        }
        for net in deploy.networks
    }
    first_image = deploy.nodes[0].image
    services: dict[str, dict] = {
        # The host's forwarding guard, as `lab up` installs it; `lab down` removes it.
        "guard": {
            "image": first_image,
            # $$: Compose would otherwise substitute it from the host's environment.
            "entrypoint": ["sh", "-c", 'printf "%s" "$$LAB_GUARD" | nft -f -'],
            "environment": {"LAB_GUARD": render_guard(plan)},
            "network_mode": "host",
            "cap_drop": ["ALL"],
            "cap_add": ["NET_ADMIN"],
            "labels": {"lab.helper": "host"},
        },
        "psk-init": {
            "image": first_image,
            "entrypoint": ["bash", "-c", render_psk_init(plan)],
            "network_mode": "none",
            "volumes": [f"{PSK_VOLUME}:/secrets"],
            "labels": {"lab.name": plan.lab, "lab.node": "psk-init"},
        }
    }
    for spec in deploy.nodes:
        service: dict = {
            "image": spec.image,
            "container_name": spec.name,
            "hostname": spec.hostname,
            "init": True,
            "cap_add": list(spec.capabilities),
            "sysctls": dict(spec.sysctls),
            "labels": {k: v for k, v in spec.labels.items() if k != "lab.config-hash"},
            "volumes": [f"{config_root}/{spec.hostname}:/lab:ro"],
            "networks": {
                net.removeprefix(f"lab-{plan.lab}-"): {"ipv4_address": address}
                for net, address in spec.addresses.items()
            },
            "depends_on": {"guard": {"condition": "service_completed_successfully"}},
        }
        if spec.needs_tun:
            service["devices"] = ["/dev/net/tun:/dev/net/tun"]
            service["volumes"].append(f"{PSK_VOLUME}:/lab-secrets:ro")
            service["depends_on"]["psk-init"] = {"condition": "service_completed_successfully"}
        services[spec.hostname] = service
    document = {
        "name": f"lab-{plan.lab}",
        "services": services,
        "networks": networks,
        "volumes": {PSK_VOLUME: {"labels": {"lab.name": plan.lab}}},
    }
    header = (
        "# The default lab (scenario active-standby) as a Compose project.\n"
        "# Rendered from lab/scenarios/active-standby.yaml by `lab compose`; a test keeps it in sync.\n"
        "# `docker compose up -d` gives the same lab as `lab up`; `lab status` and `lab down` work on it.\n"
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120)


def compose_files(plan: LabPlan, config_root: str, image: str = IMAGE) -> dict[str, str]:
    """Every file of the Compose project, relative to the repository root."""
    deploy = plan_deploy(plan, psks={}, image=image)
    files = {"docker-compose.yml": render_compose(plan, deploy, f"./{config_root}")}
    for spec in deploy.nodes:
        for f in spec.files:
            files[f"{config_root}/{spec.hostname}/{f.path}"] = f.text
    return files


def write_compose(plan: LabPlan, output: Path, config_root: Path) -> None:
    if config_root.exists():
        shutil.rmtree(config_root)
    for rel, text in compose_files(plan, str(config_root)).items():
        path = output if rel == "docker-compose.yml" else Path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            os.chmod(path, 0o755)
