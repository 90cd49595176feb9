"""Azure's own targets on real containers, with the azure profile:
unplanned loss of the active instance within 90 s, planned maintenance within "a few seconds"
(5 s; Azure's other page says 10 to 15 s, which the report carries beside it)."""
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


def test_azure_planned_maintenance_meets_a_few_seconds_and_15_s(running_lab, adapters):
    plan, _, _ = running_lab
    report, _ = run_fault(plan, adapters, "maintenance")
    run = report.runs[0]
    assert report.target_s == 5
    assert [value for value, _ in report.also_documented] == [15] and report.within(15) == 1
    assert_restored_in_order(run)
    assert report.passed, [(c.name, c.measured) for c in run.checks]
    assert_back_to_initial(plan, adapters, run)
