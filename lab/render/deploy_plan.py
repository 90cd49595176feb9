"""Everything `up` creates, as values: the lab's networks and containers, with their labels and
rendered config files (lab/model/specs.py). Pure: lab/run/deploy.py applies it, lab/render/compose.py
writes it as a Compose project."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass

from lab import __version__
from lab.model.azure import azure_rules
from lab.model.kinds import KINDS
from lab.model.schema import LabPlan
from lab.model.specs import ConfigFile, ContainerSpec, NetworkSpec
from lab.plan.gateway_types import type_of
from lab.render.configs import render_node, render_psk_secrets

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
    # No ICMP redirects: a router that sends a LAN host to a neighbour on the same LAN (a CE whose
    # circuit is down, passing traffic to the VPN device) would have the host bypass it for as
    # long as the redirect lasts, past the failback. Sent if `all` or the interface says so.
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.accept_redirects": "0",
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
        # Its gateway, type, mode and SKU; a VPN instance's public IP (holding it makes it active).
        labels.update(type_of(owner[1]).labels(plan.scenario, owner[0], owner[1], node))
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
