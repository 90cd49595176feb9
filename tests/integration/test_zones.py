"""A zone lost on real containers (fast profile), through the lab's pytest plugin: a zone-redundant
gateway rides it out on its other zone's instance, an empty zone is a non-event, and a zonal
deployment is down until the zone comes back."""
import pytest

pytestmark = pytest.mark.lab_profile("fast")


def only_run(result):
    runs = [r for r in result.report.runs if r.invalid is None]
    assert result.report.measured and len(runs) == 1, (result.report.unmeasured, [r.invalid for r in result.report.runs])
    return runs[0]


@pytest.mark.lab_scenario("zone-redundant")
def test_an_empty_zone_going_down_is_a_non_event(lab_failover):
    result = lab_failover(fault="zone-down", target="zone:3")
    run = only_run(result)
    assert run.fault_detail == "zone 3 holds no node of this lab: nothing went down"
    assert result.passed, result.verdict
    for d in run.directions:
        assert d.sent > 0 and d.lost == 0 and not d.interrupted, d


@pytest.mark.lab_scenario("zone-redundant")
def test_a_zone_redundant_gateway_survives_losing_a_zone(lab_failover):
    result = lab_failover(fault="zone-down", target="zone:1")
    run = only_run(result)
    assert run.fault_detail == "azure-gw-0: cut off on every link, then SIGKILLed"
    # The claim is the zone's loss within Azure's minute. The zone's return is judged in the report
    # against the lab's own 1 s goal for a planned hand-back, which a restarting instance sometimes
    # misses by a few tenths on a loaded machine; here it must only come back within that minute.
    failover_checks = [c for c in run.checks if not c.name.startswith("restore")]
    assert failover_checks and all(c.passed for c in failover_checks), (result.verdict, run.directions)
    assert run.restore and all(d.converged and d.full_convergence_s <= result.target_s for d in run.restore), run.restore
    for d in run.directions:
        assert d.converged and d.full_convergence_s <= result.target_s, d
        # The other zone's instance carried its flows throughout: only zone 1's were lost.
        assert d.loss_share is not None and d.loss_share < 0.9, d
    assert run.returned_by == "failback", run.returned_by


# A zonal deployment never converges before the restore: the failover window runs to its end
# (Azure's 60 s and the validation time), so the test takes over two minutes.
@pytest.mark.sweep
@pytest.mark.lab_scenario("zonal")
def test_a_zonal_deployment_is_down_until_its_zone_comes_back(lab_failover):
    result = lab_failover(fault="zone-down", target="zone:1")
    run = only_run(result)
    assert run.fault_detail.startswith("azure-gw-0: cut off on every link, then SIGKILLed; azure-gw-1: cut off on every link, then SIGKILLed; "
                                       "azure-vm: cut off on every link"), run.fault_detail
    assert not result.passed and result.verdict == "FAIL", result.verdict
    for d in run.directions:
        # Every flow stopped, and none came back while the zone was down: what arrived was in flight
        # at the fault's instant (7 of 4777 probes in a run here).
        assert not d.converged and d.lost > 0 and d.received <= 0.01 * d.sent, d
    # The restore (the zone back, its VMs started again) brought traffic back.
    assert run.restore and all(d.converged for d in run.restore), run.restore
