"""Transport subnet placement: the fast first fit picks what a scan of every candidate picks."""
from ipaddress import IPv4Network
from itertools import islice

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.model.errors import HostConflictError
from lab.model.schema import Scenario
from lab.plan.segments import _prefixlen_for, plan_segments

BASE = int(IPv4Network("172.28.0.0/16").network_address)


def reference_placement(scenario: Scenario, taken, reuse, pool) -> dict | None:
    """The placement as it was first written: every candidate against every used subnet;
    None when the pool has no room (the real one raises HostConflictError)."""
    used = list(taken) + list(reuse.values())
    placed = {}
    for network in scenario.networks:
        members = [name for name, node in scenario.nodes.items() if network in node.links]
        subnet = reuse.get(network)
        if subnet is None or subnet.num_addresses < len(members) + 3:
            prefixlen = _prefixlen_for(len(members))
            if prefixlen < pool.prefixlen:
                return None
            subnet = next((c for c in pool.subnets(new_prefix=prefixlen) if not any(c.overlaps(u) for u in used)), None)
            if subnet is None:
                return None
            used.append(subnet)
        placed[network] = (subnet, dict(zip(members, islice(subnet.hosts(), 1, None))))
    return placed


def near_the_pool(draw, pool: IPv4Network) -> IPv4Network:
    """A subnet of any size that may sit inside the pool, around it, or hold all of it."""
    prefixlen = draw(st.integers(pool.prefixlen - 2, 32))
    start = draw(st.integers(int(pool.network_address) - pool.num_addresses,
                             int(pool.broadcast_address) + pool.num_addresses))
    return IPv4Network((start, prefixlen), strict=False)


@st.composite
def placements(draw):
    pool = IPv4Network((BASE + 1024 * draw(st.integers(0, 15)), draw(st.integers(21, 29))), strict=False)
    networks = [f"net{i}" for i in range(draw(st.integers(1, 10)))]
    nodes = {f"n{i}": {"kind": "workload-host",
                       "links": {n: "10.0.0.1" for n in draw(st.lists(st.sampled_from(networks), min_size=1,
                                                                         max_size=4, unique=True))}}
             for i in range(draw(st.integers(1, 40)))}
    scenario = Scenario.model_validate({"name": "prop", "description": "-", "nodes": nodes,
                                        "networks": {n: {"subnet": "10.0.0.0/24"} for n in networks}})
    taken = [near_the_pool(draw, pool) for _ in range(draw(st.integers(0, 8)))]
    reuse = {n: near_the_pool(draw, pool) for n in draw(st.lists(st.sampled_from(networks), unique=True))}
    return scenario, taken, reuse, pool


@settings(max_examples=400, deadline=None)
@given(placements())
def test_first_fit_matches_a_scan_of_every_candidate(case):
    scenario, taken, reuse, pool = case
    expected = reference_placement(scenario, taken, reuse, pool)
    try:
        segments = plan_segments(scenario, "prop", taken, reuse, pool)
    except HostConflictError:
        assert expected is None
        return
    assert {n: (s.subnet, s.attachments) for n, s in segments.items()} == expected
