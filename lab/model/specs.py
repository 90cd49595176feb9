"""What a lab asks an engine to create, as values: networks, and containers with their config files.
Planned from a LabPlan (lab/render/deploy_plan.py), created through the runtime port (lab/run/ports.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet: IPv4Network
    bridge_address: str
    labels: dict[str, str]
    # Bridge driver options (no NAT); `lab up` and the Compose file use the same.
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigFile:
    path: str            # under the node's /lab
    text: str = field(repr=False)
    mode: int = 0o644


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    hostname: str
    image: str
    labels: dict[str, str]
    # Copied into the container before its first start, never shared with the
    # host: a repeated `up` can't change what a running node sees.
    files: tuple[ConfigFile, ...]
    # network name -> address; the first one is attached at create time
    addresses: dict[str, str]
    capabilities: tuple[str, ...]
    needs_tun: bool
    sysctls: dict[str, str] = field(default_factory=dict)
    # Limits sized from measured use (lab/model/kinds.py); 0: none.
    memory_bytes: int = 0
    pids: int = 0
    groups: tuple[str, ...] = ()
    # Resolvers for Docker's embedded DNS to forward to (lab/render/deploy_plan.py: NO_NAME_SERVICE).
    dns: tuple[str, ...] = ()
