"""The resiliency report of a failover, in the spirit of Azure's ExpressRoute site-failover simulation
(Start-AzVirtualNetworkGatewaySiteFailoverTest: its results list the redundant and non-redundant routes,
whether the simulation succeeded, and its start and end times).

Per run and per prefix at each router that chooses between paths (lab/run/paths.py: the on-premises
prefixes at the VNet's routers, the VNet's at the CE and the VPN devices): whether it had a redundant
path before the fault, what carried it before, during and after, the outage measured toward it, and
whether traffic converged within target. Pure: a report (and the plan its probes came from) in.

Redundant is read from the run's "before" paths, the routes forwarded on: more than one carrier or
more than one next hop. A backup BGP holds but does not forward on (the CE's VPN path behind the
circuit) is not in them, so a prefix whose only spare is such a backup reads as not redundant; its
"during" column shows whether the backup took over.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Address, IPv4Network

from lab.failover.metrics import NS, DirectionResult
from lab.failover.runner import FailoverReport, RunResult
from lab.model.schema import LabPlan
from lab.run.paths import EXPRESSROUTE, VPN

CARRIER_NAMES = {EXPRESSROUTE: "ExpressRoute", VPN: "VPN"}
# When a run read no paths at that moment (it ended before, or an older report).
NOT_READ = "not read"


@dataclass(frozen=True)
class ResiliencyRow:
    run: int
    prefix: str
    router: str
    redundant: bool
    redundancy: str              # what made it so, or not: "2 next hops", "2 carriers", "1 next hop"
    before: str                  # what carried it: "ExpressRoute, 2 next hops", "VPN, 1 next hop", "none"
    during: str
    after: str
    direction: str | None        # the probe direction toward the prefix; None: no probe reaches it
    outage_s: float | None       # that direction's Full Convergence Time; None: not converged, or no direction
    succeeded: bool | None       # converged within the run's target; None: the run is invalid
    start: str                   # the fault, wall clock (UTC, ISO 8601); "" when the report's start is unknown
    end: str                     # the end of the run's probes (after the failback)

    def to_dict(self) -> dict:
        return asdict(self)


def path_text(row: dict | None) -> str:
    """A recorded PathRow, for people: what carried the prefix, over how many next hops."""
    if row is None:
        return NOT_READ
    hops = len(row["next_hops"])
    if not hops:
        return "none"
    carrier = " + ".join(CARRIER_NAMES.get(c, c) for c in row["carrier"].split("+")) if row["carrier"] else "?"
    return f"{carrier}, {hops} next hop{'s' if hops > 1 else ''}"


def _redundancy(row: dict) -> tuple[bool, str]:
    carriers = [c for c in row["carrier"].split("+") if c]
    hops = len(row["next_hops"])
    if len(carriers) > 1:
        return True, f"{len(carriers)} carriers"
    return hops > 1, f"{hops} next hop{'s' if hops != 1 else ''}"


def toward(plan: LabPlan | None, prefix: str) -> str | None:
    """The probe direction whose receiving host sits in `prefix`, named as the probes name it."""
    if plan is None:
        return None
    network = IPv4Network(prefix)
    for a, b in plan.scenario.probes:
        for src, dst in ((a, b), (b, a)):
            if any(IPv4Address(str(addr)) in network for addr in plan.scenario.nodes[dst].links.values()):
                return f"{src} → {dst}"
    return None


def wall_clock(report: FailoverReport, t_ns: int | None) -> str:
    """A run's stamp on the wall clock: the report's start is taken as its first run's probe start.
    The runs' stamps are on one clock, so the offsets are exact; the anchor is to the second, and
    the probes start a second or two after it."""
    if t_ns is None or not report.runs:
        return ""
    try:
        anchor = datetime.fromisoformat(report.started_at)
    except ValueError:
        return ""
    at = anchor + timedelta(seconds=(t_ns - report.runs[0].started_ns) / NS)
    return at.isoformat(timespec="seconds")


def _direction(run: RunResult, name: str | None) -> DirectionResult | None:
    return next((d for d in run.directions if d.direction == name), None)


def resiliency_rows(report: FailoverReport, plan: LabPlan | None) -> list[ResiliencyRow]:
    """Every run's rows, in the order its "before" paths were read; none for a run without paths.
    Without the plan, no direction is known: the outage is not given, and success is the run's verdict."""
    rows = []
    for run in report.runs:
        during = {(p["node"], p["prefix"]): p for p in run.paths.get("during", [])}
        after = {(p["node"], p["prefix"]): p for p in run.paths.get("after", [])}
        start, end = wall_clock(report, run.fault_ns), wall_clock(report, run.stopped_ns or run.end_ns)
        for before in run.paths.get("before", []):
            key = (before["node"], before["prefix"])
            redundant, why = _redundancy(before)
            direction = toward(plan, before["prefix"])
            measured = _direction(run, direction)
            outage = None if measured is None else measured.full_convergence_s
            if run.invalid is not None:
                succeeded = None
            elif measured is None:
                succeeded = run.passed
            else:
                succeeded = outage is not None and outage <= run.target_s
            rows.append(ResiliencyRow(
                run=run.index, prefix=before["prefix"], router=before["node"], redundant=redundant,
                redundancy=why, before=path_text(before), during=path_text(during.get(key)),
                after=path_text(after.get(key)), direction=direction, outage_s=outage, succeeded=succeeded,
                start=start, end=end))
    return rows


@dataclass(frozen=True)
class RunResiliency:
    """A run as Azure's simulation sums it up: its routes, redundant or not, and whether it succeeded."""
    run: int
    start: str
    end: str
    redundant: list[str]         # "PREFIX at ROUTER"
    non_redundant: list[str]
    succeeded: bool | None       # every row converged within target; None: the run is invalid


def run_summaries(rows: list[ResiliencyRow]) -> list[RunResiliency]:
    found: dict[int, list[ResiliencyRow]] = {}
    for row in rows:
        found.setdefault(row.run, []).append(row)
    return [RunResiliency(
        run=index, start=mine[0].start, end=mine[0].end,
        redundant=[f"{r.prefix} at {r.router}" for r in mine if r.redundant],
        non_redundant=[f"{r.prefix} at {r.router}" for r in mine if not r.redundant],
        succeeded=None if any(r.succeeded is None for r in mine) else all(r.succeeded for r in mine))
        for index, mine in found.items()]
