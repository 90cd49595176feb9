"""Running one fault through the real runner, and what every run must show."""
from lab.run import lifecycle
from lab.model.events import EventStream, StageChanged
from lab.failover.runner import FailoverRunner, FailoverSettings
from lab.failover.published import published
from lab.failover.statistics import summarize

from .conftest import start_lab


def run_fault(plan, adapters, fault, events=None, **overrides):
    def recreate():
        lifecycle.down(plan.lab, adapters)
        start_lab(adapters, plan=plan)

    settings = FailoverSettings(fault=fault, target="azure-gw-0", **overrides)
    stages = []
    events = events or EventStream()
    events.subscribe(lambda e: stages.append(e.stage) if isinstance(e, StageChanged) else None)
    report = FailoverRunner(plan, adapters, settings, recreate, events).run_all()
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
    # The way back is measured too, and it converged: the failback's hand-over (the reversion), or,
    # where nothing had moved and nothing was handed back (blackhole), the restore itself.
    back = run.reversion if run.failback_ns is not None else run.restore
    assert back and all(d.converged for d in back), (run.failback_ns, back)


# Each phase, the node it must be observed on (the instance taking over, or the device).
PHASE_NODES = {"public IP moved": {"azure-gw-1"}, "IKE re-established": {"azure-gw-1", "onprem-0"},
               "BGP Established": {"azure-gw-1", "onprem-0"}}


def assert_restored_in_order(run):
    """A valid run that lost traffic, converged, with every phase observed on the right node, in order."""
    assert run.invalid is None, run.invalid
    for d in run.directions:
        assert d.interrupted and d.converged, d
        assert d.convergence_packet_loss > 0 and d.rate_derived_s > 0 and d.loss_derived_s > 0
        # Probes in flight when the fault hit and lost by it are its loss too, sent before its instant.
        assert d.loss_derived_s <= d.rate_derived_s + (d.before_event + 1) * run.interval_s
    for p in run.phases:
        assert p.at_s is not None, run.phases
        assert not p.out_of_order, run.phases
        if p.name in PHASE_NODES:
            assert p.evidence.split(":")[0] in PHASE_NODES[p.name], p


# The margin a re-measured median must keep to the README's published one: twice it, at least one
# Forwarding Delay Threshold (100 ms) above it, and never past the target. Series on this 2-core
# machine move between batches (BGP's 1 s connect retry): fast kill's median has been 0.98 s in a
# quiet series and 1.50 s in `make test` beside a running lab, so 1.5 x was too tight for the latter.
MARGIN = 2.0
FLOOR_S = 0.1


def bound(published_s: float, target_s: float) -> float:
    return min(target_s, max(MARGIN * published_s, published_s + FLOOR_S))


def assert_within_published(report, name: str) -> None:
    """The README's claim for the row `name`: each direction's median Full Convergence Time over these
    runs within the margin of the median the committed report docs/figures/NAME/ gives."""
    assert report.measured, f"could not measure: {report.unmeasured} {[r.invalid for r in report.runs]}"
    claim = published(name)
    valid = [r for r in report.runs if r.invalid is None]
    for i, d in enumerate(valid[0].directions):
        median = summarize([r.directions[i].full_convergence_s for r in valid]).median
        allowed = bound(claim.failover[d.direction].median, report.target_s)
        assert median is not None and median <= allowed, (d.direction, median, allowed, claim.failover[d.direction])


def fault_checks_passed(run) -> bool:
    """The fault's own checks (not the restore's): a restarted instance's return can cost a probe or
    two seconds later (README), which fails the run's verdict but is no failover figure."""
    return all(c.passed for c in run.checks if not c.name.startswith("restore "))


def first_valid(report):
    """The report's first valid run (invalid ones were repeated); fails with the reasons when there is none."""
    valid = [r for r in report.runs if r.invalid is None]
    assert valid, f"could not measure: {[r.invalid for r in report.runs] + report.unmeasured}"
    return valid[0]
