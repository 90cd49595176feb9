"""The small interfaces the core uses to reach the outside world.

The CLI and the test fixtures wire real adapters (lab/adapters) into these;
unit tests use fakes. Only adapters import docker, vici or pyroute2.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Callable, Iterator, Protocol


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
    # Resolvers for Docker's embedded DNS to forward to (deploy.NO_NAME_SERVICE).
    dns: tuple[str, ...] = ()


class ContainerRuntime(Protocol):
    def ping(self) -> None: ...
    def image_id(self, image: str) -> str | None: ...
    def image_labels(self, image: str) -> dict[str, str]: ...
    def network_subnets(self) -> dict[str, list[IPv4Network]]: ...
    def create_network(self, spec: NetworkSpec) -> None: ...
    def create_container(self, spec: ContainerSpec) -> None: ...
    def start(self, name: str) -> None: ...
    def restart(self, name: str) -> None: ...
    def containers(self, labels: dict[str, str]) -> list[ContainerInfo]: ...
    def remove_lab(self, labels: dict[str, str]) -> list[str]: ...
    def lab_objects(self, labels: dict[str, str]) -> list[str]: ...
    def exec(self, name: str, argv: list[str], timeout_s: float = 10.0) -> tuple[int, str]: ...
    def exec_split(self, name: str, argv: list[str], timeout_s: float = 10.0) -> tuple[int, str, str]: ...
    def clock_samples(self, name: str, count: int) -> list[tuple[int, int, int, int]]: ...
    def engine_summary(self) -> str: ...
    def logs(self, name: str, tail: int | None = None, since_ns: int | None = None,
             until_ns: int | None = None, timestamps: bool = False) -> str: ...
    def kill(self, name: str, signal_name: str = "SIGKILL") -> None: ...
    def pause(self, name: str) -> None: ...
    def unpause(self, name: str) -> None: ...
    def read_file(self, name: str, path: str) -> str: ...
    def events(self, labels: dict[str, str], since_ns: int, until_ns: int) -> list[dict]: ...
    def stream_exec(self, name: str, argv: list[str]) -> "ExecStream": ...
    def build_image(self, context: str, tag: str, progress: Callable[[str], None]) -> None: ...


class HostNet(Protocol):
    """The engine host's own network namespace, reached through the engine (not from this machine)."""
    def routes(self) -> list[tuple[IPv4Network, str]]: ...
    def apply_guard(self, table: str, script: str) -> None: ...
    def remove_guard(self, table: str) -> None: ...
    def guards(self) -> list[str]: ...
    def counters(self, table: str) -> dict[str, int]: ...
    def detach_stale_ports(self, bridge_prefix: str, live: set[int], keep: set[str]) -> list[str]: ...


class ExecStream(Protocol):
    def lines(self) -> Iterator[str]: ...
    def stop(self) -> None: ...


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
    algorithms: str = ""    # as negotiated, e.g. AES_GCM_16-256 or AES_CBC-128/HMAC_SHA1_96/MODP_2048


@dataclass(frozen=True)
class IkeSaState:
    name: str
    state: str
    local_host: str
    remote_host: str
    established_s: int | None
    children: list[ChildSaState]
    algorithms: str = ""    # as negotiated, e.g. AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024


class IkeControl(Protocol):
    def list_sas(self) -> list[IkeSaState]: ...
    def terminate(self, ike: str, timeout_s: float) -> None: ...
    def watch(self, names: list[str], within_s: float) -> "EventWatch": ...


class EventWatch(Protocol):
    """(engine-monotonic ns, event name, message) as the node sees each event."""
    def wait_ready(self, within_s: float) -> None: ...
    def __iter__(self) -> Iterator[tuple[int, str, dict]]: ...
    def close(self) -> None: ...


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
    def bgp_next_hops(self) -> dict[str, list[str]]: ...
    def shut_down_peer(self, asn: int, peer: str, bfd_local: str | None) -> None: ...
    def bring_up_peer(self, asn: int, peer: str, bfd_local: str | None) -> None: ...


class LinkControl(Protocol):
    def addresses(self) -> dict[str, list[str]]: ...
    def link_kinds(self) -> dict[str, str]: ...
    def link_indexes(self) -> dict[str, int]: ...
    # Both return when the change took effect, on the lab's clock (None if unknown).
    def set_link(self, name: str, up: bool) -> int | None: ...
    def block_udp_ports(self, ports: list[int], blocked: bool) -> int | None: ...
    def fence(self, on: bool) -> int | None: ...
    def route_lookup(self, destination: str) -> str | None: ...
    def kernel_option(self, option: str) -> tuple[str | None, str]: ...


@dataclass
class Adapters:
    """Everything the core reaches the outside world through, typed by the ports: importing the core
    loads no adapter. lab/adapters/wiring.py builds the real ones; unit tests pass fakes."""
    runtime: ContainerRuntime
    ike_for: Callable[[ContainerInfo], IkeControl]
    routes_for: Callable[[ContainerInfo], RouteControl]
    links_for: Callable[[ContainerInfo], LinkControl]
    host: HostNet
