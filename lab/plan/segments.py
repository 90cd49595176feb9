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
from bisect import bisect_left
from ipaddress import IPv4Network

from lab.model.errors import HostConflictError
from lab.model.schema import Scenario, Segment

# Docker's default address pools start at 172.17.0.0/16; this corner of
# them is rarely used. LAB_TRANSPORT_POOL moves it where a site needs.
DEFAULT_TRANSPORT_POOL = IPv4Network("172.28.0.0/14")
SMALLEST_SEGMENT = 29


def transport_pool() -> IPv4Network:
    """LAB_TRANSPORT_POOL (checked where it enters: a private IPv4 block of /8 to /24), else the default."""
    value = os.environ.get("LAB_TRANSPORT_POOL")
    if value is None:
        return DEFAULT_TRANSPORT_POOL
    try:
        pool = IPv4Network(value)
    except ValueError:
        raise HostConflictError(f"LAB_TRANSPORT_POOL={value!r}: not an IPv4 network such as 172.28.0.0/14") from None
    if not pool.is_private or not 8 <= pool.prefixlen <= 24:
        raise HostConflictError(f"LAB_TRANSPORT_POOL={value!r}: must be a private IPv4 block from /8 to /24")
    return pool


def bridge_prefix(lab: str) -> str:
    """A short, stable prefix for the lab's bridge names (Linux allows 15 characters)."""
    return "az" + hashlib.sha256(lab.encode()).hexdigest()[:7]


def _prefixlen_for(members: int) -> int:
    # network, broadcast and the host's bridge address, plus one per node
    return min(SMALLEST_SEGMENT, 32 - math.ceil(math.log2(members + 3)))


def _members(scenario: Scenario) -> dict[str, list[str]]:
    """Each network's nodes, in the scenario's order (one pass, not one per network)."""
    members: dict[str, list[str]] = {network: [] for network in scenario.networks}
    for name, node in scenario.nodes.items():
        for network in node.links:
            members.setdefault(network, []).append(name)
    return members


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
    free = _FreeSpace(pool, list(taken) + list(reuse.values()))
    members_of = _members(scenario)
    segments: dict[str, Segment] = {}
    for index, network in enumerate(scenario.networks):
        members = members_of[network]
        subnet = reuse.get(network)
        if subnet is None or subnet.num_addresses < len(members) + 3:
            subnet = free.take_first(_prefixlen_for(len(members)), network)
        hosts = subnet.hosts()
        next(hosts)  # the bridge's own
        segments[network] = Segment(
            network=network,
            bridge=f"{prefix}-{index}",
            subnet=subnet,
            attachments={name: next(hosts) for name in members},
        )
    return segments


class _FreeSpace:
    """First-fit placement of aligned blocks in a pool, around used address ranges.

    Used space is kept as sorted, merged [first, last] ranges; a block that
    meets one jumps past its end (bisect), not block by block. Used space only
    grows while planning, so the first fit of a size never moves backwards:
    each size's search resumes where its last one ended. Placing n blocks
    costs O(n log n), and each block is the one a scan of every candidate
    against every used subnet would pick.
    """

    def __init__(self, pool: IPv4Network, used: list[IPv4Network]):
        self.pool = pool
        self.firsts: list[int] = []
        self.lasts: list[int] = []
        for first, last in sorted((int(u.network_address), int(u.broadcast_address)) for u in used):
            if self.lasts and first <= self.lasts[-1] + 1:
                self.lasts[-1] = max(self.lasts[-1], last)
            else:
                self.firsts.append(first)
                self.lasts.append(last)
        self.resume_at: dict[int, int] = {}   # block size -> where its next search starts

    def take_first(self, prefixlen: int, network: str) -> IPv4Network:
        size = 2 ** (32 - prefixlen)
        start, end = int(self.pool.network_address), int(self.pool.broadcast_address)
        candidate = self.resume_at.get(size, start)
        # A pool smaller than the block holds none (it used to crash on the missing host addresses).
        while prefixlen >= self.pool.prefixlen and candidate + size - 1 <= end:
            i = bisect_left(self.lasts, candidate)  # the first used range that doesn't end before it
            if i == len(self.lasts) or self.firsts[i] > candidate + size - 1:
                self.resume_at[size] = candidate + size
                self._add(i, candidate, candidate + size - 1)
                return IPv4Network((candidate, prefixlen))
            candidate = start + -(-(self.lasts[i] + 1 - start) // size) * size  # the first block past it
        raise HostConflictError(
            f"networks.{network}: no free /{prefixlen} left in the transport pool {self.pool} "
            "(host routes and Docker networks use it): set LAB_TRANSPORT_POOL to a free range"
        )

    def _add(self, i: int, first: int, last: int) -> None:
        """Marks a free block used: range i is the first after it; neighbours that touch it merge."""
        if i < len(self.firsts) and self.firsts[i] == last + 1:
            self.firsts[i] = first
        else:
            self.firsts.insert(i, first)
            self.lasts.insert(i, last)
        if i > 0 and self.lasts[i - 1] + 1 == self.firsts[i]:
            self.lasts[i - 1] = self.lasts.pop(i)
            self.firsts.pop(i)


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
