"""Running one fault through the real runner, and what every run must show."""
from lab import lifecycle
from lab.experiment import FailoverRunner, FailoverSettings

from .conftest import start_lab


def run_fault(plan, adapters, fault, **overrides):
    def recreate():
        lifecycle.down(plan.lab, adapters)
        start_lab(adapters, plan=plan)

    settings = FailoverSettings(fault=fault, target="azure-gw-0", **overrides)
    stages = []
    report = FailoverRunner(plan, adapters, settings, lambda live: stages.append(live.stage), recreate).run_all()
    return report, stages


def phase_times(run):
    return {p.name: p.at_s for p in run.phases}


def kinds(run, node=None):
    return [e.kind for e in run.events if node is None or e.node == node]


def assert_back_to_initial(plan, adapters, run):
    assert run.returned_by == "failback"
    status = lifecycle.read_status(plan.lab, adapters)
    assert status.converged, status.unconverged_reasons()
    assert status.gateways[0].active == ["azure-gw-0"]


def assert_restored_in_order(run):
    for d in run.directions:
        assert d.interrupted and d.restored, d
        assert d.lost > 0 and d.outage_s > 0
    times = [p.at_s for p in run.phases]
    assert None not in times, run.phases
    assert times == sorted(times), run.phases
