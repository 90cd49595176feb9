"""A failover report, rendered: rich tables, JSON, JUnit XML, Markdown and PNG plots.

Everything here is built from the `FailoverReport` value; only `write_outputs`
touches the filesystem.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from lab.model.daemon_events import (
    BFD_DOWN,
    BFD_UP,
    BGP_DOWN,
    BGP_UP,
    CHILD_DOWN,
    CHILD_UP,
    CONTAINER_PREFIX,
    FAULT,
    IKE_DOWN,
    IKE_UP,
    RESTORE as RESTORE_EVENT,
    VRRP_FAULT,
    VRRP_MASTER,
    VRRP_STOP,
    Event,
)
from lab.failover.runner import FAILBACK, FailoverReport, RunResult
from lab.failover.resiliency import ResiliencyRow, resiliency_rows, run_summaries
from lab.model.errors import LabError
from lab.model.schema import LabPlan
from lab.plan.load import load_plan
from lab.model.events import ControlEvent, LabEvent, ProbeTick, Stage, StageChanged
from lab.failover.statistics import Summary, shown, summarize
from lab.failover.metrics import NS, TRAFFIC_RESTORED, DirectionResult, Phase, observed_order


@dataclass(frozen=True)
class Metric:
    """One per-direction figure: where it lives, its short heading, and its name in RFC 6412."""
    key: str
    heading: str
    unit: str
    missing: str        # what a None means
    rfc: str


# The figures of each direction, the verdict's first.
METRICS = [
    Metric("full_convergence_s", "converged", "s", "not converged",
           "Full Convergence Time, Rate-Derived Method (RFC 6412/6413): fault to the Convergence Recovery Instant, "
           "validated by the Sustained Convergence Validation Time; with several probe flows, the later of the "
           "aggregate's and the worst flow's; the verdict"),
    Metric("rate_derived_s", "aggregate", "s", "not converged",
           "The same, on all the probes together: with several flows it can end up to one round of the flows "
           "before the slowest flow recovered"),
    Metric("worst_flow_s", "worst flow", "s", "not converged",
           "The same, on the slowest probe flow's own probes (RFC 6413's route-specific convergence, flows "
           "standing in for routes); - with one flow"),
    Metric("loss_derived_s", "loss-derived", "s", "-",
           "Loss-Derived Convergence Time (RFC 6412): Convergence Packet Loss / offered rate"),
    Metric("first_route_s", "first route", "s", "not converged",
           "First Route Convergence Time (RFC 6412): fault to the first probe delivered after the loss began"),
    Metric("convergence_packet_loss", "lost", "packets", "-",
           "Convergence Packet Loss (RFC 6412): probes lost up to the Convergence Recovery Instant, those "
           "later than the Forwarding Delay Threshold and send slots the sender missed in an outage included"),
    Metric("late", "late", "packets", "-",
           "Probes of the window that arrived, but later than the Forwarding Delay Threshold: lost (RFC 6412)"),
    Metric("loss_share", "share lost", "%", "-",
           "Share of the probes sent from the fault to the Convergence Recovery Instant (at least one round of "
           "the probe flows) that were lost: 100 % when every flow stopped, less when only the flows over a "
           "lost path did (not an RFC benchmark)"),
    Metric("max_delay_s", "max delay", "ms", "-",
           "Maximum one-way delay of the probes delivered in the window, kept apart from loss"),
    Metric("longest_gap_s", "longest gap", "s", "-",
           "Longest time without an arrival (secondary; not an RFC benchmark)"),
]
RESTORE = Metric("restore_s", "restore", "s", "not converged",
                 "The restore's Full Convergence Time (rate-derived): from undoing the fault (a restarted or "
                 "thawed instance coming back) to traffic flowing again, judged against the planned target; "
                 "its window runs from the failover's end to the failback")
REVERSION = Metric("reversion_s", "reversion", "s", "not converged",
                   "Reversion convergence: the Full Convergence Time (rate-derived) of the failback's hand-over "
                   "(the lab's way back to its initial state; the same hand-over `maintenance` times): not judged")
COLUMNS = METRICS + [RESTORE, REVERSION]
# Figures taken up to the Convergence Recovery Instant, or to the window's end when there was none: for a
# direction that never converged they measure the window, so the statistics count that run as never converged.
CUT_BY_THE_WINDOW = frozenset({"loss_derived_s", "convergence_packet_loss", "loss_share", "longest_gap_s", "late"})
RUNS = "runs"   # the summary row of N, invalid and never converged
RUNS_LEGEND = ("N valid runs in the statistics, how many runs were invalid (left out), and how many of the N "
               "never converged (a phase: were never observed)")


def _fmt(value: float | None, unit: str = "s", missing: str = "-") -> str:
    if value is None:
        return missing
    if unit == "ms":
        return f"{value * 1000:.1f} ms"
    if unit == "%":
        return f"{value * 100:.0f} %"
    return f"{value:.2f} s" if unit == "s" else f"{value:.0f}"


def _verdict(verdict: str) -> Text:
    return Text(verdict, style={"PASS": "bold green", "FAIL": "bold red"}.get(verdict, "bold yellow"))


def _value(run: RunResult, i: int, metric: Metric) -> float | None:
    if metric is REVERSION:
        return run.reversion[i].full_convergence_s if i < len(run.reversion) else None
    if metric is RESTORE:
        return run.restore[i].full_convergence_s if i < len(run.restore) else None
    if metric.key == "worst_flow_s":
        worst = run.directions[i].worst_flow
        return None if worst is None else worst.rate_derived_s
    return getattr(run.directions[i], metric.key)


def _cells(run: RunResult, i: int) -> list[str]:
    one_flow = run.directions[i].worst_flow is None
    cells = [_fmt(_value(run, i, m), m.unit, "-" if m.key == "worst_flow_s" and one_flow else m.missing)
             for m in METRICS]
    for metric, results in ((RESTORE, run.restore), (REVERSION, run.reversion)):
        cell = _fmt(_value(run, i, metric), "s", metric.missing if results else "-")
        if i < len(results) and results[i].invalid:
            cell += " (invalid)"
        cells.append(cell)
    return cells


def valid_runs(report: FailoverReport) -> list[RunResult]:
    return [r for r in report.runs if r.invalid is None]


def _measured(run: RunResult, i: int, metric: Metric) -> float | None:
    """A run's figure as the statistics take it: None (never converged) where it would measure the window."""
    if metric.key in CUT_BY_THE_WINDOW and not run.directions[i].converged:
        return None
    return _value(run, i, metric)


def _has(run: RunResult, i: int, metric: Metric) -> bool:
    """Whether the run has the figure at all: a worst flow needs several flows."""
    return metric.key != "worst_flow_s" or run.directions[i].worst_flow is not None


def summaries(report: FailoverReport) -> list[tuple[str, dict[str, Summary]]]:
    """Every figure per direction over the valid runs (lab.statistics), with its N, invalid and never converged.

    The reversion is over the runs that failed back; one whose failback's baseline was not clean
    (or whose run was invalid) is an invalid reversion.
    """
    runs = valid_runs(report)
    invalid = len(report.runs) - len(runs)
    names = [d.direction for d in report.runs[0].directions] if report.runs else []
    result = []
    for i, name in enumerate(names):
        figures = {m.key: summarize([_measured(r, i, m) for r in runs if _has(r, i, m)], invalid) for m in METRICS}
        for metric, measured in ((RESTORE, lambda r: r.restore), (REVERSION, lambda r: r.reversion)):
            had = [r for r in report.runs if i < len(measured(r))]
            clean = [r for r in had if r.invalid is None]
            figures[metric.key] = summarize([_value(r, i, metric) for r in clean], len(had) - len(clean))
        result.append((name, figures))
    return result


def phase_summaries(report: FailoverReport) -> dict[str, Summary]:
    """Each breakdown phase over the valid runs; a phase not observed counts as never."""
    runs = valid_runs(report)
    names = [p.name for p in report.runs[0].phases] if report.runs else []
    return {name: summarize([next((p.at_s for p in r.phases if p.name == name), None) for r in runs],
                            len(report.runs) - len(runs))
            for name in names}


def _statistic_rows(figures: dict[str, Summary]) -> list[tuple[str, dict]]:
    """min / median / max (p95 where N supports it), then the counts, of figures shown side by side."""
    rows = [(label, {key: s.statistic(label) for key, s in figures.items()}) for label in shown(figures.values())]
    return rows + [(RUNS, {key: {"n": s.n, "invalid": s.invalid, "never": s.never} for key, s in figures.items()})]


def summary_rows(report: FailoverReport) -> list[dict]:
    """Per direction: min, median, max (and p95 from 20 runs) of every figure, then its N, invalid and never converged."""
    return [{"statistic": label, "direction": name, **values}
            for name, figures in summaries(report) for label, values in _statistic_rows(figures)]


def phase_rows(report: FailoverReport) -> list[dict]:
    """min, median, max (and p95 from 20 runs) of each breakdown phase, then its N, invalid and not observed."""
    return [{"statistic": label, **values} for label, values in _statistic_rows(phase_summaries(report))]


def _summary_cell(s: Summary, statistic: str, unit: str, never: str) -> str:
    if statistic == RUNS:
        return f"N={s.n}, {s.invalid} invalid, {s.never} never"
    value = s.statistic(statistic)
    if value is None:
        return "-" if s.n == 0 or (statistic == "p95" and not s.has_p95) else never
    return _fmt(value, unit)


def _summary_table(figures: dict[str, Summary], columns: list[tuple[str, str, str]]) -> list[tuple[str, list[str]]]:
    """A summary as shown: (statistic, its cells) per row; a column is (figure, unit, what "never" reads as)."""
    return [(statistic, [_summary_cell(figures[key], statistic, unit, never) for key, unit, never in columns])
            for statistic in shown(figures.values()) + [RUNS]]


def _figure_columns() -> list[tuple[str, str, str]]:
    return [(m.key, m.unit, "not converged") for m in COLUMNS]


def _phase_columns(names: list[str]) -> list[tuple[str, str, str]]:
    return [(name, "s", _phase_missing(name)) for name in names]


def _summary_lines(report: FailoverReport) -> list[tuple[str, str]]:
    """The verdict's figure per direction, in one line each: (what, summary)."""
    return [(f"{METRICS[0].heading}, {name}", figures[METRICS[0].key].text()) for name, figures in summaries(report)]


def _phase_missing(name: str) -> str:
    return "not converged" if name == TRAFFIC_RESTORED else "not observed"


def _phase_cell(phase: Phase) -> str:
    if phase.at_s is None:
        return "-"
    return f"{phase.at_s:.2f} s" + (" (out of order)" if phase.out_of_order else "")


def _outcome(report: FailoverReport) -> str:
    invalid = sum(r.invalid is not None for r in report.runs) + len(report.unmeasured)
    text = f"{sum(r.passed for r in report.runs)}/{report.valid_count} valid runs within target"
    if not report.measured:
        text += f", {report.valid_count} of {report.runs_asked} valid runs measured: could not measure"
    return text + (f", {invalid} invalid (repeated)" if invalid else "")


def _also_documented(report: FailoverReport) -> list[str]:
    """The other figures documented for this event, each with how many runs met it (no verdict)."""
    valid = sum(r.invalid is None for r in report.runs)
    return [f"also documented: {value:g} s ({source}): {report.within(value)}/{valid} valid runs within it"
            for value, source in report.also_documented]


def _invalid_notes(report: FailoverReport) -> list[str]:
    """Why each invalid run, or attempt that gave no run, is left out of the statistics; and what was lost
    while the lab waited to fail back (measured, not judged)."""
    notes = ([f"run {r.index} INVALID: {r.invalid}" for r in report.runs if r.invalid]
             + [f"not measured: {reason}" for reason in report.unmeasured])
    for r in report.runs:
        lost = [f"{d.direction} {d.convergence_packet_loss}" for d in r.waiting if d.convergence_packet_loss]
        if lost:
            notes.append(f"run {r.index}: probes lost while the lab waited to fail back (not judged): "
                         f"{', '.join(lost)}")
    return notes


RESILIENCY_COLUMNS = ["run", "prefix", "router", "redundant", "before", "during", "after", "outage", "succeeded"]
RESILIENCY_LEGEND = (
    "After Azure's ExpressRoute site-failover simulation (its redundant and non-redundant routes, whether it "
    "succeeded, its start and end). Per prefix at each router that chooses between paths: redundant, more than "
    "one carrier or next hop forwarded on before the fault (a backup BGP holds but does not forward on is not "
    "counted: \"during\" shows whether it took over); what carried it before the fault, during it (read after "
    "the failover's window) and after the failback; outage, the Full Convergence Time of the probe direction "
    "toward the prefix; succeeded, that direction converged within the target. Times: UTC, the report's start "
    "taken as the first run's (to within a few seconds); the runs' offsets from it are exact.")


def resiliency(report: FailoverReport, plan: LabPlan | None = None) -> list[ResiliencyRow]:
    """The report's resiliency rows; none for runs that read no paths (older reports, fakes). Without
    `plan`, the report's own scenario and profile are loaded (a built-in one; else no outage per prefix)."""
    if not any(run.paths.get("before") for run in report.runs):
        return []
    if plan is None:
        try:
            plan = load_plan(report.scenario, report.profile, report.lab)
        except LabError:
            plan = None
    return resiliency_rows(report, plan)


def _yes_no(value: bool | None, none: str = "invalid") -> str:
    return none if value is None else "yes" if value else "no"


def _resiliency_cells(row: ResiliencyRow) -> list[str]:
    outage = "-" if row.direction is None else _fmt(row.outage_s, missing="not converged")
    return [str(row.run), row.prefix, row.router, f"{_yes_no(row.redundant)} ({row.redundancy})", row.before,
            row.during, row.after, outage, _yes_no(row.succeeded)]


def _resiliency_runs(rows: list[ResiliencyRow]) -> list[str]:
    """One line per run, as Azure's test details sum it up."""
    return [f"run {s.run}: {s.start or '?'} to {s.end or '?'}; simulation successful: {_yes_no(s.succeeded)}; "
            f"redundant: {', '.join(s.redundant) or 'none'}; non-redundant: {', '.join(s.non_redundant) or 'none'}"
            for s in run_summaries(rows)]


def render_failover(report: FailoverReport, plan: LabPlan | None = None) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row("lab", f"{report.lab} (scenario {report.scenario}, profile {report.profile})")
    head.add_row("fault", f"{report.fault} on {report.target}: {report.fault_summary}")
    kind = "planned" if report.planned else "unplanned"
    head.add_row("target", f"{kind}: converged within {report.target_s:g} s ({report.target_source})")
    for line in _also_documented(report):
        head.add_row("", line)
    for line in report.departures:
        head.add_row("departs from Azure", line)
    head.add_row("probes", f"UDP every {report.interval_s * 1000:g} ms, both ways, over {report.probe_flows} "
                           f"flow{'s' if report.probe_flows > 1 else ''}; "
                           f"Sustained Convergence Validation Time {report.sustained_s:g} s; "
                           f"Forwarding Delay Threshold {report.threshold_s * 1000:g} ms")
    head.add_row("judged", f"the fault against the target; the restore against the planned target, "
                           f"{report.return_target_s:g} s ({report.return_target_source}); the failback "
                           f"(the lab's way back) is measured, not judged")

    runs = Table(title="Convergence per direction (RFC 6412 terms; seconds after the fault)", title_justify="left")
    for col in ["run", "direction"] + [m.heading for m in COLUMNS] + ["verdict"]:
        runs.add_column(col, justify="left" if col in ("run", "direction", "verdict") else "right")
    for run in report.runs:
        for i, d in enumerate(run.directions):
            runs.add_row(str(run.index) if i == 0 else "", d.direction, *_cells(run, i),
                         _verdict(run.verdict) if i == 0 else "")
    for name, figures in summaries(report):
        for statistic, cells in _summary_table(figures, _figure_columns()):
            runs.add_row(statistic, name, *cells, "", style="bold")
    legend = Text("\n".join([f"{what}: {line}" for what, line in _summary_lines(report)]
                             + [f"{m.heading}: {m.rfc}" for m in COLUMNS] + [f"{RUNS}: {RUNS_LEGEND}"]), style="dim")

    phases = Table(title="Breakdown (from observed events, seconds after the fault)", title_justify="left")
    phases.add_column("run")
    names = [p.name for p in report.runs[0].phases] if report.runs else []
    for name in names:
        phases.add_column(name, justify="right")
    for run in report.runs:
        phases.add_row(str(run.index), *[_phase_cell(p) for p in run.phases])
    for statistic, cells in _summary_table(phase_summaries(report), _phase_columns(names)):
        phases.add_row(statistic, *cells, style="bold")

    rows = resiliency(report, plan)
    resilient = []
    if rows:
        # Fewer, taller columns than summary.md's: a terminal of 80 columns cuts no prefix or router.
        table = Table(title="Resiliency (per prefix at the routers that choose between paths)", title_justify="left")
        for col in ("run", "prefix, router", "redundant", "carried before / during / after", "outage", "succeeded"):
            table.add_column(col, justify="right" if col == "outage" else "left",
                             no_wrap=col in ("run", "prefix, router", "outage"))
        for row in rows:
            run, prefix, router, redundant, before, during, after, outage, succeeded = _resiliency_cells(row)
            table.add_row(run, f"{prefix}\n{router}", redundant,
                          f"before: {before}\nduring: {during}\nafter: {after}", outage, succeeded,
                          style="" if row.succeeded else "red")
        resilient = [table, Text("\n".join(_resiliency_runs(rows) + [RESILIENCY_LEGEND]), style="dim")]

    notes = [Text(note, style="yellow") for note in _invalid_notes(report)]
    verdict = Text.assemble("result: ", _verdict(report.verdict), f" ({_outcome(report)})")
    return Group(head, runs, legend, phases, *resilient, *notes, verdict)


class LiveFailoverView:
    """The failover live view: a subscriber that keeps what the stream said, and draws it."""

    def __init__(self) -> None:
        self.run: int | None = None
        self.runs: int | None = None
        self.stage: Stage | None = None
        self.detail = ""
        self.since_event_s: float | None = None
        self.directions: dict[str, ProbeTick] = {}
        self.recent: list[Event] = []

    def __call__(self, event: LabEvent) -> None:
        if isinstance(event, StageChanged):
            if event.run != self.run:
                self.directions, self.recent = {}, []
            self.stage, self.detail, self.since_event_s = event.stage, event.detail, None
            self.run, self.runs = event.run, event.runs
        elif isinstance(event, ProbeTick):
            self.directions[event.direction] = event
            self.since_event_s = event.since_event_s
        elif isinstance(event, ControlEvent):
            self.recent = (self.recent + [event.event])[-4:]

    def __rich__(self) -> Group:
        stage = self.stage.value if self.stage else "starting"
        head = Text(f"run {self.run or '-'}/{self.runs or '-'}: {stage}" + (f" ({self.detail})" if self.detail else ""),
                    style="bold")
        if self.since_event_s is not None and self.stage in SINCE:
            head.append(f"   {self.since_event_s:6.1f} s since the {SINCE[self.stage]}")
        table = Table(box=None)
        for col in ("direction", "received", "lost", "state"):
            table.add_column(col)
        for tick in list(self.directions.values()):
            state = (Text(f"flowing for {tick.flowing_for_s:.1f} s", style="green") if tick.flowing_for_s is not None
                     else Text("interrupted", style="red"))
            table.add_row(tick.direction, str(tick.delivered), str(tick.lost), state)
        recent = [f"{e.node}: {e.kind}" for e in self.recent]
        return Group(head, table, Text("events: " + ("; ".join(recent) or "-"), style="dim"))


# The event each measuring stage counts from.
SINCE = {Stage.MEASURING_FAILOVER: "fault", Stage.MEASURING_RESTORE: "restore", Stage.MEASURING_REVERSION: "failback"}


def failover_dict(report: FailoverReport, plan: LabPlan | None = None) -> dict:
    """Everything: every figure with its loss episodes, validity, checks, phases, the events and every probe;
    the resiliency rows and each run's summary of them."""
    data = asdict(report)
    rows = resiliency(report, plan)
    data["resiliency"] = [row.to_dict() for row in rows]
    data["resiliency_runs"] = [asdict(s) for s in run_summaries(rows)]
    data["passed"] = report.passed
    data["verdict"] = report.verdict
    data["metrics"] = {m.key: m.rfc for m in COLUMNS}
    data["summary"] = summary_rows(report)
    data["phase_summary"] = phase_rows(report)
    for run, raw in zip(report.runs, data["runs"]):
        raw["passed"] = run.passed
        raw["verdict"] = run.verdict
        for results, raw_results in ((run.directions, raw["directions"]), (run.reversion, raw["reversion"]),
                                     (run.restore, raw["restore"]), (run.waiting, raw["waiting"])):
            for d, raw_d in zip(results, raw_results):
                raw_d["full_convergence_s"] = d.full_convergence_s
                raw_d["converged"] = d.converged
                raw_d["interrupted"] = d.interrupted
        for check, raw_check in zip(run.checks, raw["checks"]):
            raw_check["passed"] = check.passed
        # Times relative to the fault read better than raw monotonic stamps.
        for event in raw["events"]:
            event["at_s"] = round((event["t_ns"] - run.fault_ns) / NS, 4)
    return data


def failover_json(report: FailoverReport, plan: LabPlan | None = None) -> str:
    return json.dumps(failover_dict(report, plan), indent=1, ensure_ascii=False)


def failover_junit(report: FailoverReport) -> str:
    """One test case per run and direction: its rate-derived convergence against the target.

    A run with an invalid baseline measured nothing trustworthy: its cases are errors, not failures.
    """
    cases = [(run, check) for run in report.runs for check in run.checks]
    suite = ET.Element("testsuite", name=f"failover.{report.scenario}.{report.fault}.{report.target}",
                       tests=str(len(cases)),
                       failures=str(sum(run.invalid is None and not c.passed for run, c in cases)),
                       errors=str(sum(run.invalid is not None for run, _ in cases)),
                       time=f"{sum(((r.stopped_ns or r.end_ns) - r.started_ns) / NS for r in report.runs):.3f}")
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="target", value=f"{report.target_s:g} s: {report.target_source}")
    for line in _also_documented(report):
        ET.SubElement(properties, "property", name="also documented", value=line.removeprefix("also documented: "))
    for line in report.departures:
        ET.SubElement(properties, "property", name="departs from Azure", value=line)
    for what, line in _summary_lines(report):
        ET.SubElement(properties, "property", name=what, value=line)
    for run, check in cases:
        case = ET.SubElement(suite, "testcase", classname=f"failover.{report.profile}.{report.fault}",
                             name=f"run {run.index}: {check.name} <= {check.limit:g} {check.unit}",
                             time=f"{(run.end_ns - run.fault_ns) / NS:.3f}")
        measured = "not converged" if check.measured is None else f"{check.measured:g} {check.unit}"
        context = f"{report.fault} on {report.target}, profile {report.profile}: {report.target_source}"
        if run.invalid is not None:
            ET.SubElement(case, "error", message=f"invalid run: {run.invalid}").text = context
        elif not check.passed:
            failure = ET.SubElement(case, "failure", message=f"{check.name}: {measured}, target {check.limit:g} {check.unit}")
            failure.text = context
        else:
            ET.SubElement(case, "system-out").text = f"measured {measured}"
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _episodes_text(d: DirectionResult, most: int = 8) -> str:
    shown = [f"{e.start_s:.2f}–{e.end_s:.2f} s ({e.probes}{', open' if e.open else ''})" for e in d.loss_episodes[:most]]
    more = len(d.loss_episodes) - most
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "") if shown else "none"


def failover_markdown(report: FailoverReport, plots: list[str], plan: LabPlan | None = None) -> str:
    kind = "planned" if report.planned else "unplanned"
    lines = [
        f"# Failover: {report.fault} on {report.target} ({report.profile} profile)",
        "",
        f"**{report.verdict}**: {_outcome(report)}: Full Convergence Time (rate-derived) within the {kind} "
        f"target of {report.target_s:g} s ({report.target_source}).",
        "",
        *[f"- {line}" for line in _also_documented(report)],
        *[f"- departs from Azure: {line}" for line in report.departures],
        *([""] if report.also_documented or report.departures else []),
        f"Scenario `{report.scenario}`, {report.fault_summary}. Probes: UDP every {report.interval_s * 1000:g} ms "
        f"both ways, over {report.probe_flows} flow{'s' if report.probe_flows > 1 else ''}. Sustained Convergence "
        f"Validation Time: {report.sustained_s:g} s. Forwarding Delay Threshold: {report.threshold_s * 1000:g} ms "
        f"(a later probe is lost). The restore is judged against the planned target, "
        f"{report.return_target_s:g} s ({report.return_target_source}); the failback, the lab's way back to "
        f"its initial state, is measured, not judged. Machine: {report.machine}. "
        f"Clock: {report.clock}. Started {report.started_at}.",
        "",
        "| run | direction | " + " | ".join(m.heading for m in COLUMNS) + " | verdict |",
        "|---|---|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for run in report.runs:
        for i, d in enumerate(run.directions):
            lines.append(f"| {run.index} | {d.direction} | " + " | ".join(_cells(run, i)) + f" | {run.verdict} |")
    for name, figures in summaries(report):
        for statistic, cells in _summary_table(figures, _figure_columns()):
            lines.append(f"| **{statistic}** | {name} | " + " | ".join(cells) + " | |")
    lines += ["", *[f"- {what}: {line}" for what, line in _summary_lines(report)], "",
              "Statistics are over the valid runs. A run that never converged counts as such, never as the "
              "window's length: it ranks last, so the max is \"not converged\" when one run was, and the "
              "median when half or more were. The median of an even number of runs is the mean of the middle "
              "two; p95 (nearest rank) is shown from 20 runs on. What each figure is:", ""]
    lines += [f"- **{m.heading}**: {m.rfc}." for m in COLUMNS]
    lines.append(f"- **{RUNS}**: {RUNS_LEGEND}.")
    notes = _invalid_notes(report)
    if notes:
        lines += ["", "Not counted (invalid runs are repeated; the wait before the failback is not judged):", ""] \
            + [f"- {note}" for note in notes]
    lines += ["", "Loss episodes (seconds after the fault, probes lost):", ""]
    for run in report.runs:
        for d in run.directions:
            lines.append(f"- run {run.index}, {d.direction}: {_episodes_text(d)}")
    lines += ["", "Breakdown of each run, from observed events (seconds after the fault):", ""]
    if report.runs:
        names = [p.name for p in report.runs[0].phases]
        lines.append("| run | " + " | ".join(names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        for run in report.runs:
            lines.append(f"| {run.index} | " + " | ".join(_phase_cell(p) for p in run.phases) + " |")
        for statistic, cells in _summary_table(phase_summaries(report), _phase_columns(names)):
            lines.append(f"| **{statistic}** | " + " | ".join(cells) + " |")
        for run in report.runs:
            if any(p.out_of_order for p in run.phases):
                lines.append(f"\nRun {run.index}, as it happened: {' → '.join(observed_order(run.phases))}.")
    rows = resiliency(report, plan)
    if rows:
        lines += ["", "## Resiliency", "", RESILIENCY_LEGEND, "",
                  "| " + " | ".join(RESILIENCY_COLUMNS) + " |", "|" + "---|" * (len(RESILIENCY_COLUMNS) - 2) + "---:|---|"]
        lines += ["| " + " | ".join(_resiliency_cells(row)) + " |" for row in rows]
        lines += [""] + [f"- {line}" for line in _resiliency_runs(rows)]
    lines += [""] + [f"![run timeline]({plot})" for plot in plots]
    return "\n".join(lines) + "\n"


# Events worth a mark on the plot, and their colours.
PLOTTED = {
    FAULT: "red", RESTORE_EVENT: "grey", FAILBACK: "grey", VRRP_MASTER: "tab:purple", VRRP_STOP: "tab:purple", VRRP_FAULT: "tab:purple",
    IKE_UP: "tab:blue", IKE_DOWN: "tab:blue", CHILD_UP: "tab:cyan", CHILD_DOWN: "tab:cyan",
    BGP_UP: "tab:green", BGP_DOWN: "tab:green", BFD_UP: "tab:olive", BFD_DOWN: "tab:olive",
    **{CONTAINER_PREFIX + action: "black" for action in ("kill", "die", "pause")},
}
BIN_S = 0.1


def _direction_title(d: DirectionResult, reversion: DirectionResult | None,
                     restore: DirectionResult | None = None) -> str:
    """The figures of one direction, named as RFC 6412 names them."""
    rate = _fmt(d.full_convergence_s, missing="not converged")
    title = (f"{d.direction}: Full Convergence Time (rate-derived) {rate}; loss-derived {d.loss_derived_s:.2f} s "
             f"({d.convergence_packet_loss} lost); max delay {_fmt(d.max_delay_s, 'ms')}; "
             f"longest gap {d.longest_gap_s:.2f} s")
    if restore is not None:
        title += f"; restore {_fmt(restore.full_convergence_s, missing='not converged')}"
    if reversion is not None:
        title += f"; reversion {_fmt(reversion.full_convergence_s, missing='not converged')}"
    return title


def plot_run(run: RunResult, path: Path, title: str) -> None:
    """Probe delivery per direction over time (100 ms bins, by send time) and each probe's delay,
    with loss episodes shaded, and the events as a lane below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start_s = (run.started_ns - run.fault_ns) / NS
    end_s = ((run.stopped_ns or run.end_ns) - run.fault_ns) / NS
    fig, axes = plt.subplots(len(run.probes) + 1, 1, figsize=(11, 2.4 * len(run.probes) + 4.2), sharex=True,
                             gridspec_kw={"height_ratios": [1] * len(run.probes) + [2.2]})
    bins = int((end_s - start_s) / BIN_S) + 1
    failback_s = None if run.failback_ns is None else (run.failback_ns - run.fault_ns) / NS
    for i, (ax, probes, result) in enumerate(zip(axes, run.probes, run.directions)):
        reversion = run.reversion[i] if i < len(run.reversion) else None
        restore = run.restore[i] if i < len(run.restore) else None
        sent = [0] * bins
        got = [0] * bins
        arrivals = {}
        for seq, sent_ns, recv_ns in probes.received:
            arrivals[seq] = min(recv_ns, arrivals.get(seq, recv_ns))
        delays = []
        for seq, sent_ns in probes.sent:
            x = (sent_ns - run.fault_ns) / NS
            b = int((x - start_s) / BIN_S)
            if 0 <= b < bins:
                sent[b] += 1
                got[b] += seq in arrivals
            # A lost probe breaks the delay line rather than joining its neighbours.
            delays.append((x, (arrivals[seq] - sent_ns) / 1e6 if seq in arrivals else float("nan")))
        xs = [start_s + i * BIN_S for i in range(bins)]
        ys = [g / n if n else float("nan") for g, n in zip(got, sent)]
        ax.step(xs, ys, where="post", color="tab:blue", linewidth=1.2)
        ax.fill_between(xs, ys, step="post", alpha=0.25, color="tab:blue")
        restore_s = None if run.restore_ns is None else (run.restore_ns - run.fault_ns) / NS
        shown = ([(0.0, result)] + ([(restore_s, restore)] if restore is not None and restore_s is not None else [])
                 + ([(failback_s, reversion)] if reversion is not None else []))
        for offset, figures in shown:
            for episode in figures.loss_episodes:
                ax.axvspan(offset + episode.start_s, offset + episode.end_s, color="red", alpha=0.15, linewidth=0)
            if figures.rate_derived_s is not None:
                ax.axvline(offset + figures.rate_derived_s, color="tab:green", linewidth=1)
        ax.set_ylim(-0.05, 1.1)
        ax.set_ylabel("delivered")
        delay_ax = ax.twinx()
        delay_ax.plot([x for x, _ in delays], [d for _, d in delays], color="grey", linewidth=0.6)
        delay_ax.set_ylabel("delay (ms)", fontsize=8)
        ax.set_title(_direction_title(result, reversion, restore), fontsize=8, loc="left")
        ax.axvline(0, color="red", linewidth=1)
        if failback_s is not None:
            ax.axvline(failback_s, color="grey", linewidth=1)
        if run.target_s <= end_s:
            ax.axvline(run.target_s, color="red", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    lane = axes[-1]
    plotted = [e for e in run.events if e.kind in PLOTTED and start_s <= (e.t_ns - run.fault_ns) / NS <= end_s]
    nodes = sorted({e.node for e in plotted})
    # Events close together on one node share one label instead of overprinting.
    close_s = (end_s - start_s) / 40
    clusters: list[tuple[str, float, list[str]]] = []
    for e in plotted:
        x = (e.t_ns - run.fault_ns) / NS
        lane.plot([x], [nodes.index(e.node)], marker="o", color=PLOTTED[e.kind], markersize=5)
        same_node = [c for c in clusters if c[0] == e.node]
        if same_node and x - same_node[-1][1] < close_s:
            if e.kind not in same_node[-1][2]:
                same_node[-1][2].append(e.kind)
        else:
            clusters.append((e.node, x, [e.kind]))
    for node, x, labels in clusters:
        lane.annotate("\n".join(labels), (x, nodes.index(node)), xytext=(3, 3), textcoords="offset points",
                      fontsize=6.5, va="bottom")
    lane.set_yticks(range(len(nodes)), nodes, fontsize=8)
    lane.set_ylim(-0.7, len(nodes) - 0.1)
    lane.axvline(0, color="red", linewidth=1, label="fault")
    if failback_s is not None:
        lane.axvline(failback_s, color="grey", linewidth=1, label="failback")
    if run.target_s <= end_s:
        lane.axvline(run.target_s, color="red", linestyle=":", linewidth=1, label=f"target {run.target_s:g} s")
    else:
        lane.plot([], [], " ", label=f"target {run.target_s:g} s (off the right edge)")
    lane.plot([], [], color="tab:green", linewidth=1, label="Convergence Recovery Instant")
    lane.legend(loc="lower right", fontsize=8)
    lane.set_xlabel("seconds after the fault (probes by send time; red: loss episodes)")
    lane.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(report: FailoverReport, out_dir: Path, plan: LabPlan | None = None) -> list[Path]:
    """report.json, junit.xml, one PNG per run and summary.md in out_dir (`plan`: as `resiliency` takes it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    plots = []
    for run in report.runs:
        path = out_dir / f"run-{run.index}.png"
        plot_run(run, path, f"{report.fault} on {report.target}, {report.profile} profile, run {run.index}: "
                            f"{run.verdict}")
        plots.append(path.name)
        written.append(path)
    for name, text in (("report.json", failover_json(report, plan)), ("junit.xml", failover_junit(report)),
                       ("summary.md", failover_markdown(report, plots, plan))):
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    return written
