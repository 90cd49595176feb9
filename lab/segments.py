"""Where each lab network lives on the Docker host: bridge names and transport subnets (pure).

A lab network is a Docker bridge used as a plain L2 segment. Docker only
holds a small transport subnet per bridge, chosen here so that it overlaps
neither the engine host's routes nor any other Docker network (other labs
included). The scenario's addresses never reach Docker, so two labs of the
same scenario run side by side.
"""
from __future__ import annotations

import hashlib
import math
import os
from ipaddress import IPv4Network

from .errors import HostConflictError
from .model import Scenario, Segment

# Docker's default address pools start at 172.17.0.0/16; this corner of
# them is rarely used. LAB_TRANSPORT_POOL moves it where a site needs.
DEFAULT_TRANSPORT_POOL = IPv4Network("172.28.0.0/14")
SMALLEST_SEGMENT = 29


def transport_pool() -> IPv4Network:
    return IPv4Network(os.environ.get("LAB_TRANSPORT_POOL", str(DEFAULT_TRANSPORT_POOL)))


def bridge_prefix(lab: str) -> str:
    """A short, stable prefix for the lab's bridge names (Linux allows 15 characters)."""
    return "az" + hashlib.sha256(lab.encode()).hexdigest()[:7]


def _prefixlen_for(members: int) -> int:
    # network, broadcast and the host's bridge address, plus one per node
    return min(SMALLEST_SEGMENT, 32 - math.ceil(math.log2(members + 3)))


def _members(scenario: Scenario, network: str) -> list[str]:
    return [name for name, node in scenario.nodes.items() if network in node.links]


def plan_segments(
    scenario: Scenario,
    lab: str,
    taken: list[IPv4Network],
    reuse: dict[str, IPv4Network] | None = None,
    pool: IPv4Network | None = None,
) -> dict[str, Segment]:
    """One segment per scenario network.

    `reuse` holds the transport subnets of the lab's networks that already
    exist (a repeated `up` keeps them); every other subnet is the first free
    block of the pool that overlaps nothing in `taken`.
    """
    reuse = reuse or {}
    pool = pool or transport_pool()
    prefix = bridge_prefix(lab)
    used = list(taken) + list(reuse.values())
    segments: dict[str, Segment] = {}
    for index, network in enumerate(scenario.networks):
        members = _members(scenario, network)
        subnet = reuse.get(network)
        if subnet is None or subnet.num_addresses < len(members) + 3:
            subnet = _first_free(pool, _prefixlen_for(len(members)), used, network)
            used.append(subnet)
        hosts = subnet.hosts()
        next(hosts)  # the bridge's own
        segments[network] = Segment(
            network=network,
            bridge=f"{prefix}-{index}",
            subnet=subnet,
            attachments={name: next(hosts) for name in members},
        )
    return segments


def _first_free(pool: IPv4Network, prefixlen: int, used: list[IPv4Network], network: str) -> IPv4Network:
    for candidate in pool.subnets(new_prefix=max(prefixlen, pool.prefixlen)):
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise HostConflictError(
        f"networks.{network}: no free /{prefixlen} left in the transport pool {pool} "
        "(host routes and Docker networks use it): set LAB_TRANSPORT_POOL to a free range"
    )


def split_host_subnets(
    own_networks: dict[str, str],
    host_routes: list[tuple[IPv4Network, str]],
    docker_networks: dict[str, list[IPv4Network]],
) -> tuple[list[IPv4Network], dict[str, IPv4Network]]:
    """(subnets others hold, this lab's existing subnets by scenario network).

    `own_networks` maps the lab's Docker network names to scenario network
    names; the routes of its own bridges are not conflicts, which keeps a
    repeated `up` idempotent.
    """
    reuse = {own_networks[name]: subnets[0] for name, subnets in docker_networks.items()
             if name in own_networks and subnets}
    taken = [prefix for prefix, _ in host_routes if prefix not in reuse.values()]
    taken += [s for name, subnets in docker_networks.items() if name not in own_networks for s in subnets]
    return taken, reuse
