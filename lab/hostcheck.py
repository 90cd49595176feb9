"""Checks of the host before anything is created (pure, fed by adapters)."""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from .model import LabPlan


@dataclass(frozen=True)
class KernelSupport:
    esp: bool | None          # None: the kernel's config can't be read
    source: str

    @property
    def summary(self) -> str:
        if self.esp is None:
            return f"unknown ({self.source})"
        return f"{'yes' if self.esp else 'no'} ({self.source})"


def find_conflicts(
    plan: LabPlan,
    host_routes: list[tuple[IPv4Network, str]],
    docker_networks: dict[str, list[IPv4Network]],
) -> list[str]:
    """Every lab subnet that overlaps a host route or another Docker network.

    The lab's own networks from an earlier `up` (and their bridges' routes)
    are not conflicts: that is what makes `up` idempotent.
    """
    own_names = {plan.network_name(n) for n in plan.scenario.networks}
    own_existing = {s for name in own_names & set(docker_networks) for s in docker_networks[name]}
    problems = []
    for name, net in plan.scenario.networks.items():
        for prefix, dev in host_routes:
            if prefix not in own_existing and net.subnet.overlaps(prefix):
                problems.append(f"networks.{name}: {net.subnet} overlaps the host route {prefix} dev {dev}")
        for other, subnets in docker_networks.items():
            if other in own_names:
                continue
            for subnet in subnets:
                if net.subnet.overlaps(subnet):
                    problems.append(f"networks.{name}: {net.subnet} overlaps Docker network {other} ({subnet})")
    return problems


def kernel_esp_support(config_paths: tuple[str, ...] = ("/proc/config.gz",)) -> KernelSupport:
    """Whether the host kernel can carry ESP itself (CONFIG_INET_ESP)."""
    for path in config_paths:
        p = Path(path)
        if not p.exists():
            continue
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt") as f:  # type: ignore[operator]
            for line in f:
                if line.startswith("CONFIG_INET_ESP="):
                    return KernelSupport(True, f"{path}: {line.strip()}")
        return KernelSupport(False, f"{path}: CONFIG_INET_ESP is not set")
    return KernelSupport(None, "no kernel config to read")
