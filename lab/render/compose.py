"""The default lab as a Docker Compose project (pure rendering).

`docker compose up -d` (or Debian's docker-compose 1.29) on its own then gives
the same lab: same image, same labels (so `lab status`, `lab failover` and
`lab down` recognise it), same configs, which live under compose/<lab>/ in the
repository. Only the pre-shared keys are not in git: a one-shot service draws
them from the kernel's CSPRNG into one volume per VPN node, which mounts only
its own.

Written for docker-compose 1.29 as much as for the Compose plugin: no top-level
`name` (1.29 refuses it), and every `$` of a shell script doubled (both
substitute `$VAR` and `$(...)` from the host's environment otherwise).
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import yaml

from lab.render.deploy_plan import IMAGE, NO_NAME_SERVICE, DeployPlan, plan_deploy
from lab.run.ports import HELPER_LABEL
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


def _compose_script(script: str) -> str:
    """A shell script as a Compose value: `$$` is Compose's escape for a literal `$`."""
    return script.replace("$", "$$")


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


def render_compose(plan: LabPlan, deploy: DeployPlan, config_root: str,
                   extra_labels: dict[str, str] | None = None) -> str:
    """The compose file; `config_root` as the file's folder sees it, `extra_labels` on every object
    (as on the nodes and networks, through `deploy`)."""
    extra = extra_labels or {}
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
            "entrypoint": ["sh", "-c", _compose_script('printf "%s" "$LAB_GUARD" | nft -f -')],
            "environment": {"LAB_GUARD": render_guard(plan.lab)},
            "network_mode": "host",
            "cap_drop": ["ALL"],
            "cap_add": ["NET_ADMIN"],
            "labels": {"lab.name": plan.lab, HELPER_LABEL: "host", **extra},
            "healthcheck": {"disable": True},
        },
        "psk-init": {
            "image": first_image,
            "entrypoint": ["bash", "-c", _compose_script(render_psk_init(plan))],
            "network_mode": "none",
            "volumes": [f"{_key_volume(n)}:/secrets/{n}" for n in key_nodes],
            "labels": {"lab.name": plan.lab, HELPER_LABEL: "keys", **extra},
            "healthcheck": {"disable": True},
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
            # As on `lab up`'s nodes: the lab judges the daemons itself. The image's 30 s check would hold
            # each node at "starting" (so the lab unconverged) for 30 s after every start and restart.
            "healthcheck": {"disable": True},
        }
        if spec.groups:
            service["group_add"] = list(spec.groups)
        if spec.needs_tun:
            service["devices"] = ["/dev/net/tun:/dev/net/tun"]
            service["volumes"].append(f"{_key_volume(spec.hostname)}:/lab-secrets:ro")
            service["depends_on"]["psk-init"] = {"condition": "service_completed_successfully"}
        services[spec.hostname] = service
    document = {
        "services": services,
        "networks": networks,
        # Named like the networks, whatever the project is called: `lab down` finds them by label.
        "volumes": {_key_volume(n): {"name": engine_prefix(plan.lab) + _key_volume(n),
                                     "labels": {"lab.name": plan.lab, **extra}} for n in key_nodes},
    }
    header = (
        f"# Lab {plan.lab} (scenario {plan.scenario.name}, profile {plan.profile.name}) as a Compose project.\n"
        "# Rendered by `lab compose`; a test keeps it in sync. `docker compose up -d` (or docker-compose 1.29)\n"
        "# gives the same lab as `lab up`; `lab status`, `lab failover` and `lab down` work on it.\n"
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120)


def compose_files(plan: LabPlan, config_root: str, image: str = IMAGE, extra_labels: dict[str, str] | None = None,
                  mounted_as: str | None = None) -> dict[str, str]:
    """Every file of the Compose project, relative to the repository root; the compose file finds the
    configs at `mounted_as` (config_root as its folder sees it; default: config_root)."""
    deploy = plan_deploy(plan, psks={}, image=image, extra_labels=extra_labels)
    files = {"docker-compose.yml": render_compose(plan, deploy, f"./{mounted_as or config_root}", extra_labels)}
    for spec in deploy.nodes:
        for f in spec.files:
            files[f"{config_root}/{spec.hostname}/{f.path}"] = f.text
    return files


def write_compose(plan: LabPlan, output: Path, config_root: Path, image: str = IMAGE,
                  extra_labels: dict[str, str] | None = None) -> None:
    """Writes the project; of what config_root held, only the files of node folders this plan
    renders are replaced or removed (never a whole tree: the folder is the user's choice)."""
    # Compose resolves a relative mount from the compose file's folder, not from where `lab` ran.
    mounted_as = os.path.relpath(config_root.absolute(), output.absolute().parent)
    files = compose_files(plan, str(config_root), image, extra_labels, mounted_as)
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
