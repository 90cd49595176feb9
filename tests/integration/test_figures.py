"""The README's published failover figures, re-measured: each row's median of 3 runs within the margin
of its committed report (tests/integration/failover_checks.py: 1.5 x, at least +100 ms, never past the
target). Long (about 40 minutes): `make test-figures`, not part of `make test`."""
import pytest

from lab.run import lifecycle
from lab.failover.runner import FailoverRunner, FailoverSettings
from lab.failover.published import published

from .conftest import forwarded_out, start_lab
from .failover_checks import assert_within_published, first_valid

pytestmark = pytest.mark.figures

ROWS = [
    # README row, scenario, profile, fault, target
    ("as-azure-maintenance", "active-standby", "azure", "maintenance", "azure-gw-0"),
    ("as-fast-maintenance", "active-standby", "fast", "maintenance", "azure-gw-0"),
    ("as-fast-link-down", "active-standby", "fast", "link-down", "azure-gw-0"),
    ("aa-fast-kill-gw0", "active-active", "fast", "kill", "azure-gw-0"),
    ("dr-fast-kill-onprem0", "dual-redundancy", "fast", "kill", "onprem-0"),
    ("aa-azure-kill-gw0", "active-active", "azure", "kill", "azure-gw-0"),
    ("dr-azure-kill-onprem0", "dual-redundancy", "azure", "kill", "onprem-0"),
]


@pytest.fixture(scope="module")
def labs(adapters, state_dir):
    """One lab per scenario and profile, brought up when a row first needs it."""
    running = {}

    def lab_for(scenario: str, profile: str):
        key = (scenario, profile)
        if key not in running:
            for plan in running.values():
                lifecycle.down(plan.lab, adapters)
            running.clear()
            running[key] = start_lab(adapters, profile, scenario=scenario)[0]
        return running[key]

    yield lab_for
    for plan in running.values():
        assert forwarded_out(adapters, plan) == 0
        lifecycle.down(plan.lab, adapters)


@pytest.mark.parametrize("name, scenario, profile, fault, target", ROWS, ids=[r[0] for r in ROWS])
def test_published_figure(labs, adapters, name, scenario, profile, fault, target):
    plan = labs(scenario, profile)

    def recreate():
        lifecycle.down(plan.lab, adapters)
        start_lab(adapters, plan=plan)

    report = FailoverRunner(plan, adapters, FailoverSettings(fault=fault, target=target, runs=3),
                            recreate).run_all()
    assert_within_published(report, name)


def test_published_dead_peer_detection_with_azure_s_timers(labs, adapters):
    # blackhole: nothing moves the public IP, so both ends declare the peer dead after DPD's 10 s
    # interval and the 45 s retransmission sequence (docs/figures/as-azure-blackhole): a FAIL, rightly.
    plan = labs("active-standby", "azure")
    report = FailoverRunner(plan, adapters, FailoverSettings(fault="blackhole", target="azure-gw-0"),
                            lambda: None).run_all()
    run = first_valid(report)
    assert report.verdict == "FAIL" and all(not d.converged for d in run.directions)
    dead = [e.t_ns - run.fault_ns for e in run.events if e.kind == "ike-down" and e.node in ("onprem-0", "azure-gw-0")]
    assert dead and 53e9 <= min(dead) <= 57e9, dead
    assert published("as-azure-blackhole").verdicts == ["FAIL"]
