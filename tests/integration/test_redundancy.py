"""Active/active and dual redundancy on real containers (fast profile): every tunnel and
session up, traffic over every tunnel, each instance (and a device) lost in turn and back."""
import threading

import pytest

from lab.run import lifecycle
from lab.failover.runner import FailoverRunner, FailoverSettings

from .conftest import forwarded_out, start_lab
from .failover_checks import fault_checks_passed, first_valid


def failover(plan, adapters, fault, target):
    def recreate():
        lifecycle.down(plan.lab, adapters)
        start_lab(adapters, plan=plan)

    settings = FailoverSettings(fault=fault, target=target)
    return FailoverRunner(plan, adapters, settings, recreate).run_all()


@pytest.fixture(scope="module", params=["active-active", "dual-redundancy"])
def mesh_lab(request, adapters, state_dir):
    plan, status, _ = start_lab(adapters, "fast", scenario=request.param)
    yield plan, status
    assert forwarded_out(adapters, plan) == 0
    lifecycle.down(plan.lab, adapters)


def assert_full_mesh(plan, status):
    """Every planned tunnel up at both ends, every tunnel's BGP session Established with routes."""
    assert status.converged, status.unconverged_reasons()
    assert {g.gateway: sorted(g.active) for g in status.gateways} == {"azure-gw": ["azure-gw-0", "azure-gw-1"]}
    up = {(t.node, t.tunnel) for t in status.tunnels if t.ike_state == "ESTABLISHED" and t.child_state == "INSTALLED"}
    for t in plan.tunnels:
        assert (t.device, t.name) in up
        assert (t.instances[0], t.name) in up
    sessions = {(b.node, b.peer): b for b in status.bgp}
    for b in plan.bgp_sessions:
        seen = sessions[(b.node, str(b.peer_address))]
        assert seen.state == "Established" and seen.prefixes_received > 0, seen


def test_every_tunnel_and_session_comes_up_and_both_sides_use_ecmp(mesh_lab):
    plan, status = mesh_lab
    assert_full_mesh(plan, status)
    assert len(plan.tunnels) == {"active-active": 2, "dual-redundancy": 4}[plan.scenario.name]
    hops = {(r.node, r.prefix): r.next_hops for r in status.routes}
    # The VNet spreads over both instances, and each device over its tunnel to each.
    assert len(hops[("vnet-router", "192.168.10.0/24")]) == 2
    for device in {t.device for t in plan.tunnels}:
        assert len(hops[(device, "10.1.0.0/16")]) == 2, hops


def test_both_tunnels_of_a_device_carry_traffic_in_steady_state(mesh_lab, adapters):
    plan, _ = mesh_lab
    host, vm = plan.scenario.probes[0]
    flows = str(plan.scenario.probe_flows)
    probes = [threading.Thread(target=adapters.runtime.exec, args=(
        plan.nodes[a].container, ["lab-probe", "--peer", str(next(iter(plan.nodes[b].links.values()))),
                                  "--duration", "6", "--flows", flows, "--port", "47100"]),
        kwargs={"timeout_s": 20}) for a, b in ((host, vm), (vm, host))]
    for p in probes:
        p.start()
    status = lifecycle.read_status(plan.lab, adapters, rate_window_s=2.0)
    for p in probes:
        p.join(20)
    device = plan.tunnels[0].device
    mine = [t for t in status.tunnels if t.node == device]
    assert len(mine) == 2 and all(t.carrying for t in mine), mine
    # Traffic both ways on each: the VNet side spreads too.
    assert all(t.pps_in >= 1 and t.pps_out >= 1 for t in mine), mine


# The second instance in `make test-all` (marker sweep): the first shows the same claim.
@pytest.mark.parametrize("instance", ["azure-gw-0", pytest.param("azure-gw-1", marks=pytest.mark.sweep)])
def test_losing_each_instance_in_turn_costs_only_its_flows(mesh_lab, adapters, instance):
    plan, _ = mesh_lab
    report = failover(plan, adapters, "kill", instance)
    run = first_valid(report)
    assert report.measured and run.invalid is None and fault_checks_passed(run), (run.invalid, run.directions)
    for d in run.directions:
        assert d.converged and d.rate_derived_s <= report.target_s
        # Flows on the surviving instance's tunnels never stopped.
        assert d.loss_share is not None and d.loss_share < 0.9, d
    # Nothing to hand back in active/active: the restored instance's return is the way back, and converged.
    back = run.reversion if run.failback_ns is not None else run.restore
    assert run.returned_by == "failback" and back and all(d.converged for d in back), back
    assert_full_mesh(plan, lifecycle.read_status(plan.lab, adapters))


def test_a_dual_redundant_site_survives_losing_a_device(mesh_lab, adapters):
    plan, _ = mesh_lab
    if plan.scenario.name != "dual-redundancy":
        pytest.skip("one device only")
    report = failover(plan, adapters, "kill", "onprem-0")
    run = first_valid(report)
    assert report.measured and run.invalid is None and fault_checks_passed(run), (run.invalid, run.directions)
    phases = {p.name: p for p in run.phases}
    # The LAN's gateway address moved to the other device, whose routes carried on.
    assert phases["LAN address moved"].evidence.startswith("onprem-1:"), phases
    assert run.returned_by == "failback"
    status = lifecycle.read_status(plan.lab, adapters)
    assert_full_mesh(plan, status)
    assert [g.holders for g in status.vrrp] == [["onprem-0"]]
