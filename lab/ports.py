"""The small interfaces the core uses to reach the outside world.

The CLI and the test fixtures wire real adapters (lab/adapters) into these;
unit tests use fakes. Only adapters import docker, vici or pyroute2.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Iterator, Protocol


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    node: str
    kind: str
    status: str          # Docker's: created, running, exited, paused, ...
    health: str | None   # starting, healthy, unhealthy, or None without a healthcheck
    pid: int             # 0 when not running
    config_hash: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet: IPv4Network
    bridge_address: str
    labels: dict[str, str]


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    hostname: str
    image: str
    labels: dict[str, str]
    config_dir: str
    # network name -> address; the first one is attached at create time
    addresses: dict[str, str]
    capabilities: tuple[str, ...]
    needs_tun: bool
    sysctls: dict[str, str] = field(default_factory=dict)


class ContainerRuntime(Protocol):
    def ping(self) -> None: ...
    def image_exists(self, image: str) -> bool: ...
    def network_subnets(self) -> dict[str, list[IPv4Network]]: ...
    def create_network(self, spec: NetworkSpec) -> None: ...
    def create_container(self, spec: ContainerSpec) -> None: ...
    def start(self, name: str) -> None: ...
    def containers(self, labels: dict[str, str]) -> list[ContainerInfo]: ...
    def remove_lab(self, labels: dict[str, str]) -> list[str]: ...
    def exec(self, name: str, argv: list[str], timeout_s: float = 10.0) -> tuple[int, str]: ...
    def logs(self, name: str, tail: int | None = None) -> str: ...


@dataclass(frozen=True)
class ChildSaState:
    name: str
    state: str
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int
    local_ts: list[str]
    remote_ts: list[str]


@dataclass(frozen=True)
class IkeSaState:
    name: str
    state: str
    local_host: str
    remote_host: str
    established_s: int | None
    children: list[ChildSaState]


class IkeControl(Protocol):
    def list_sas(self) -> list[IkeSaState]: ...
    def initiate(self, ike: str, child: str, timeout_s: float) -> None: ...
    def terminate(self, ike: str, timeout_s: float) -> None: ...
    def events(self, names: list[str]) -> Iterator[tuple[str, dict]]: ...


@dataclass(frozen=True)
class BgpPeerState:
    peer: str
    remote_as: int
    state: str
    prefixes_received: int
    uptime_ms: int | None
    description: str


class RouteControl(Protocol):
    def bgp_peers(self) -> list[BgpPeerState]: ...
    def routes(self) -> dict[str, list[str]]: ...


class LinkControl(Protocol):
    def addresses(self) -> dict[str, list[str]]: ...
    def link_kinds(self) -> dict[str, str]: ...
    def set_link(self, name: str, up: bool) -> None: ...
    def route_lookup(self, destination: str) -> str | None: ...
