"""The branch office's VPN failover, tested as its owners would: faults, timing and verdicts as values.

The lab plugin (installed with the lab) gives the fixtures: `lab` is the module's lab, up and
converged; `lab_failover` times a real failover on it and returns a FailoverResult.
"""
import time

import pytest

# The scenario for every test here (a YAML path is relative to this file); the profile comes from
# pytest.ini (`lab_profile`), so `--lab-profile fast` can try the same tests with another one.
pytestmark = pytest.mark.lab_scenario("../scenarios/branch-office.yaml")


def test_losing_the_active_instance_converges_within_ten_seconds(lab_failover):
    assert lab_failover(fault="kill").rate_derived_s < 10


@pytest.mark.demo
def test_a_target_no_gateway_meets_fails_and_shows_where_the_time_went(lab_failover):
    # 50 ms is less than one IKE exchange: this fails on purpose, and its report shows the
    # phase breakdown (detected, public IP moved, IKE, BGP, traffic) and each direction's figures.
    assert lab_failover(fault="kill", target_s=0.05).passed


def wait_until(read, done, within_s=90.0, every_s=1.0):
    """Reads until `done(value)`; every wait has a bound, and a miss says what was seen last."""
    deadline = time.monotonic() + within_s
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def test_the_standby_carries_the_tunnel_until_the_active_is_repaired(lab):
    before = lab.status()
    assert before.converged, before.unconverged_reasons()
    active = before.active_instances
    lab.break_("kill", active[0])
    assert lab.faults() == [f"kill on {active[0]}"]

    def standby_holds_the_tunnel(status):
        return (status.active_instances and status.active_instances != active
                and any(t.node in status.active_instances and t.child_state == "INSTALLED" for t in status.tunnels))

    broken = wait_until(lab.status, standby_holds_the_tunnel)
    assert standby_holds_the_tunnel(broken), (broken.active_instances, broken.unconverged_reasons())

    lab.repair()
    after = wait_until(lab.status, lambda s: s.converged and s.active_instances == active)
    assert after.converged and after.active_instances == active, after.unconverged_reasons()
    assert lab.faults() == []
