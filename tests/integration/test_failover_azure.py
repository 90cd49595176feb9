"""Azure's own targets on real containers, with the azure profile:
unplanned loss of the active instance within 90 s; planned maintenance judged against "a few
seconds" (5 s), and within Azure's other figure, 10 to 15 s, in every run."""
from lab.failover_report import write_outputs

from .failover_checks import assert_back_to_initial, assert_restored_in_order, run_fault


def test_azure_unplanned_kill_meets_90_s(running_lab, adapters, tmp_path):
    plan, _, _ = running_lab
    report, _ = run_fault(plan, adapters, "kill")
    write_outputs(report, tmp_path)
    run = report.runs[0]
    assert report.target_s == 90
    assert_restored_in_order(run)
    assert report.passed, [(c.name, c.measured) for c in run.checks]
    assert_back_to_initial(plan, adapters, run)


def test_azure_planned_maintenance_meets_15_s_and_is_judged_against_a_few_seconds(running_lab, adapters):
    plan, _, _ = running_lab
    report, _ = run_fault(plan, adapters, "maintenance")
    run = report.runs[0]
    assert report.target_s == 5
    assert [value for value, _ in report.also_documented] == [15]
    assert_restored_in_order(run)
    # The README's claim: every run within 15 s; "a few seconds" (5 s) in most, not all: a run whose
    # BGP comes back a connect retry later takes ~5.8 s, and its report says FAIL against 5 s.
    assert report.within(15) == 1, [(c.name, c.measured) for c in run.checks]
    assert report.passed == (report.within(5) == 1)
    assert_back_to_initial(plan, adapters, run)
