"""The one place where real adapters are built and handed to the core."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .adapters.docker_host import DockerHost
from .adapters.docker_runtime import DockerRuntime
from .adapters.frr_route import FrrRoute
from .adapters.netlink_link import NetlinkLink
from .adapters.vici_ike import ViciIke
from .deploy import IMAGE
from .ports import ContainerInfo, HostNet, IkeControl, LinkControl, RouteControl


@dataclass
class Adapters:
    runtime: DockerRuntime
    ike_for: Callable[[ContainerInfo], IkeControl]
    routes_for: Callable[[ContainerInfo], RouteControl]
    links_for: Callable[[ContainerInfo], LinkControl]
    host: HostNet


def real_adapters() -> Adapters:
    runtime = DockerRuntime()
    return Adapters(
        runtime=runtime,
        ike_for=lambda c: ViciIke(c.node, c.pid),
        routes_for=lambda c: FrrRoute(c.node, c.name, runtime),
        links_for=lambda c: NetlinkLink(c.node, c.pid),
        host=DockerHost(runtime, IMAGE),
    )
