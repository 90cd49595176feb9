"""The default lab as a Docker Compose project (pure rendering).

`docker compose up -d` on its own then gives the same lab: same image, same
labels (so `lab status` and `lab down` recognise it), same configs, which
live under compose/<lab>/ in the repository. Only the pre-shared keys are
not in git: a one-shot service draws them from the kernel's CSPRNG into a
volume the VPN nodes read.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import yaml

from lab.render.deploy_plan import IMAGE, NO_NAME_SERVICE, DeployPlan, plan_deploy
from lab.model.names import engine_prefix
from lab.model.schema import LabPlan
from lab.render.configs import render_guard

PSK_VOLUME = "psk"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the key service's script) as readable literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _key_volume(node: str) -> str:
    return f"{PSK_VOLUME}-{node}"


def _key_variable(tunnel: str) -> str:
    return "key_" + "".join(c if c.isalnum() else "_" for c in tunnel)


def render_psk_init(plan: LabPlan) -> str:
    """Shell for the one-shot key service: one key per tunnel, and each VPN node's volume gets only
    its own tunnels' keys. Keys never appear in the compose file; every name is one shell word."""
    q = shlex.quote
    vpn_nodes = sorted({n for t in plan.tunnels for n in (t.device, *t.instances)})
    # Drawn once: a restart keeps the keys (all of them, or none are kept).
    done = " && ".join(f"[ -s {q(f'/secrets/{n}/psk.conf')} ]" for n in vpn_nodes) or "true"
    lines = ["set -eu", "umask 077", f"if {done}; then exit 0; fi"]
    for t in plan.tunnels:
        # Letters and digits, as `lab up` draws them: a key Azure takes.
        lines.append(f"{_key_variable(t.name)}=$(tr -dc A-Za-z0-9 </dev/urandom | head -c 32)")
    for node in vpn_nodes:
        lines += ["{", "echo 'secrets {'"]
        for t in plan.tunnels_of(node):
            lines += [
                f"echo {q(f'  ike-{t.name} {{')}",
                f"echo {q(f'    id-gateway = {t.gateway_public_ip}')}",
                f"echo {q(f'    id-device = {t.device_public_ip}')}",
                f"echo \"    secret = \\\"${_key_variable(t.name)}\\\"\"",
                "echo '  }'",
            ]
        lines += ["echo '}'", f"}} > {q(f'/secrets/{node}/psk.conf')}"]
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
    key_nodes = [spec.hostname for spec in deploy.nodes if spec.needs_tun]
    services: dict[str, dict] = {
        # The host's forwarding guard, as `lab up` installs it; `lab down` removes it.
        "guard": {
            "image": first_image,
            # $$: Compose would otherwise substitute it from the host's environment.
            "entrypoint": ["sh", "-c", 'printf "%s" "$$LAB_GUARD" | nft -f -'],
            "environment": {"LAB_GUARD": render_guard(plan.lab)},
            "network_mode": "host",
            "cap_drop": ["ALL"],
            "cap_add": ["NET_ADMIN"],
            "labels": {"lab.helper": "host"},
        },
        "psk-init": {
            "image": first_image,
            "entrypoint": ["bash", "-c", render_psk_init(plan)],
            "network_mode": "none",
            "volumes": [f"{_key_volume(n)}:/secrets/{n}" for n in key_nodes],
            "labels": {"lab.name": plan.lab, "lab.node": "psk-init"},
        }
    }
    for spec in deploy.nodes:
        service: dict = {
            "image": spec.image,
            "container_name": spec.name,
            "hostname": spec.hostname,
            "init": True,
            "cap_drop": ["ALL"],
            "cap_add": list(spec.capabilities),
            "security_opt": ["no-new-privileges:true"],
            "mem_limit": spec.memory_bytes,
            "memswap_limit": spec.memory_bytes,
            "pids_limit": spec.pids,
            "dns": list(NO_NAME_SERVICE),
            "dns_opt": ["timeout:1", "attempts:1"],
            "sysctls": dict(spec.sysctls),
            "labels": {k: v for k, v in spec.labels.items() if k != "lab.config-hash"},
            "volumes": [f"{config_root}/{spec.hostname}:/lab:ro"],
            "networks": {
                net.removeprefix(engine_prefix(plan.lab)): {"ipv4_address": address}
                for net, address in spec.addresses.items()
            },
            "depends_on": {"guard": {"condition": "service_completed_successfully"}},
        }
        if spec.groups:
            service["group_add"] = list(spec.groups)
        if spec.needs_tun:
            service["devices"] = ["/dev/net/tun:/dev/net/tun"]
            service["volumes"].append(f"{_key_volume(spec.hostname)}:/lab-secrets:ro")
            service["depends_on"]["psk-init"] = {"condition": "service_completed_successfully"}
        services[spec.hostname] = service
    document = {
        "name": f"lab-{plan.lab}",
        "services": services,
        "networks": networks,
        "volumes": {_key_volume(n): {"labels": {"lab.name": plan.lab}} for n in key_nodes},
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
    """Writes the project; of what config_root held, only the files of node folders this plan
    renders are replaced or removed (never a whole tree: the folder is the user's choice)."""
    files = compose_files(plan, str(config_root))
    for node in plan.nodes:
        folder = config_root / node
        if folder.is_dir() and not folder.is_symlink():
            for path in sorted(folder.rglob("*"), reverse=True):
                if path.is_symlink() or path.is_file():
                    if str(path) not in files:
                        path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
    for rel, text in files.items():
        path = output if rel == "docker-compose.yml" else Path(rel)
        if path.is_symlink():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            os.chmod(path, 0o755)
