"""ExpressRoute with the VPN as its failover path, on real containers (fast profile): the circuit
carries while healthy with the VPN up and ready; the whole circuit lost moves traffic to the VPN
within Azure's figure and back once it returns; one link lost keeps traffic on the circuit."""
import pytest

from lab.failover.runner import FailoverRunner, FailoverSettings
from lab.run import lifecycle
from lab.run.paths import route_paths

from .conftest import forwarded_out, start_lab


@pytest.fixture(scope="module")
def er_lab(adapters, state_dir):
    plan, status, _ = start_lab(adapters, "fast", scenario="expressroute-failover")
    yield plan, status
    assert forwarded_out(adapters, plan) == 0
    lifecycle.down(plan.lab, adapters)


def timed(plan, adapters, fault, target=None):
    def recreate():
        lifecycle.down(plan.lab, adapters)
        start_lab(adapters, plan=plan)

    from lab.failover.faults import get_fault
    settings = FailoverSettings(fault=fault, target=target or get_fault(fault).default_target(plan))
    return FailoverRunner(plan, adapters, settings, recreate).run_all()


def carried(rows, node, prefix):
    return next(r for r in rows if r["node"] == node and r["prefix"] == prefix)


def test_the_circuit_carries_and_the_vpn_is_ready(er_lab, adapters):
    plan, status = er_lab
    assert status.converged, status.unconverged_reasons()
    paths = {(p.node, p.prefix): p for p in route_paths(plan, status.routes)}
    assert paths[("onprem-ce", "10.1.0.0/16")].carrier == "expressroute"
    assert sorted(paths[("onprem-ce", "10.1.0.0/16")].via) == ["ExpressRoute, primary link",
                                                               "ExpressRoute, secondary link"]
    assert paths[("vnet-router", "192.168.10.0/24")].carrier == "expressroute"
    # The VPN stands by: its tunnel up, its BGP sessions Established with routes at both ends.
    assert any(t.node == "onprem-0" and t.ike_state == "ESTABLISHED" for t in status.tunnels)
    up = {(b.node, b.peer): b for b in status.bgp if b.state == "Established"}
    assert up[("onprem-0", "10.1.255.30")].prefixes_received > 0
    active = status.gateways[[g.gateway for g in status.gateways].index("vpn-gw")].active[0]
    address = str(plan.scenario.nodes[active].links["gateway-subnet"])
    assert up[("vnet-router", address)].prefixes_received > 0
    # ...and the VPN's paths are in the tables as the backup (the CE's from the device, over iBGP).
    assert up[("onprem-ce", "192.168.10.2")].prefixes_received > 0


def test_losing_the_circuit_moves_traffic_to_the_vpn_within_target_and_back(er_lab, adapters):
    plan, _ = er_lab
    report = timed(plan, adapters, "circuit-down")
    run = report.runs[0]
    assert report.passed, [c for c in run.checks if not c.passed]
    assert report.target_s == 10
    phases = {p.name: p.at_s for p in run.phases}
    assert phases["circuit detected down"] is not None and phases["circuit detected down"] < 2
    assert phases["best path changed on-premises"] is not None and phases["best path changed in Azure"] is not None
    assert carried(run.paths["before"], "onprem-ce", "10.1.0.0/16")["carrier"] == "expressroute"
    assert carried(run.paths["during"], "onprem-ce", "10.1.0.0/16")["carrier"] == "vpn"
    assert carried(run.paths["during"], "vnet-router", "192.168.10.0/24")["carrier"] == "vpn"
    # The failback: the circuit carries again, and how long its return cost traffic is measured.
    assert carried(run.paths["after"], "vnet-router", "192.168.10.0/24")["carrier"] == "expressroute"
    assert run.restore and all(d.converged for d in run.restore)


@pytest.mark.sweep
def test_one_link_lost_keeps_traffic_on_the_circuit(er_lab, adapters):
    plan, _ = er_lab
    report = timed(plan, adapters, "circuit-down", "peering:er-primary")
    run = report.runs[0]
    assert report.passed, [c for c in run.checks if not c.passed]
    during = carried(run.paths["during"], "onprem-ce", "10.1.0.0/16")
    assert during["carrier"] == "expressroute" and during["via"] == ["ExpressRoute, secondary link"]
    assert carried(run.paths["during"], "vnet-router", "192.168.10.0/24")["carrier"] == "expressroute"
