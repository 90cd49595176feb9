"""A failover report, rendered: rich tables, JSON, JUnit XML, Markdown and PNG plots.

Everything here is built from the `FailoverReport` value; only `write_outputs`
touches the filesystem.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .events import (
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
    RESTORE,
    VRRP_FAULT,
    VRRP_MASTER,
    VRRP_STOP,
)
from .experiment import FailoverReport, Live, RunResult
from .timeline import NS, percentile


def _s(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "not restored" if unit == "s" else "-"
    return f"{value:.2f} {unit}" if unit == "s" else f"{value:.0f}"


def _verdict(passed: bool) -> Text:
    return Text("PASS", style="bold green") if passed else Text("FAIL", style="bold red")


def _detected(run: RunResult) -> float | None:
    return next(p.at_s for p in run.phases if p.name == "detected")


def summary_rows(report: FailoverReport) -> list[dict]:
    """Median and p95 (nearest rank) per direction over all runs; a run never restored ranks last."""
    rows = []
    names = [d.direction for d in report.runs[0].directions] if report.runs else []
    for i, name in enumerate(names):
        for label, q in (("median", 50), ("p95", 95)):
            rows.append(dict(
                statistic=label, direction=name,
                outage_s=percentile([r.directions[i].outage_s for r in report.runs], q),
                restored_s=percentile([r.directions[i].restored_s for r in report.runs], q),
                lost=percentile([float(r.directions[i].lost) for r in report.runs], q),
                detected_s=percentile([_detected(r) for r in report.runs], q),
            ))
    return rows


def render_failover(report: FailoverReport) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row("lab", f"{report.lab} (scenario {report.scenario}, profile {report.profile})")
    head.add_row("fault", f"{report.fault} on {report.target}: {report.fault_summary}")
    kind = "planned" if report.planned else "unplanned"
    head.add_row("target", f"{kind}: restored within {report.target_s:g} s ({report.target_source})")
    head.add_row("probes", f"UDP every {report.interval_s * 1000:g} ms, both ways")

    runs = Table(title="Runs (seconds after the fault)", title_justify="left")
    for col in ("run", "direction", "outage", "restored", "lost", "detected", "verdict"):
        runs.add_column(col, justify="right" if col in ("outage", "restored", "lost", "detected") else "left")
    for run in report.runs:
        for i, d in enumerate(run.directions):
            runs.add_row(str(run.index) if i == 0 else "", d.direction, _s(d.outage_s), _s(d.restored_s),
                         str(d.lost), _s(_detected(run)) if i == 0 else "", _verdict(run.passed) if i == 0 else "")
    for row in summary_rows(report):
        runs.add_row(row["statistic"], row["direction"], _s(row["outage_s"]), _s(row["restored_s"]),
                     _s(row["lost"], "packets"), _s(row["detected_s"]), "", style="bold")

    phases = Table(title="Breakdown (from observed events, seconds after the fault)", title_justify="left")
    phases.add_column("run")
    names = [p.name for p in report.runs[0].phases] if report.runs else []
    for name in names:
        phases.add_column(name, justify="right")
    for run in report.runs:
        phases.add_row(str(run.index), *[_s(p.at_s) if p.at_s is not None else "-" for p in run.phases])

    verdict = Text.assemble("result: ", _verdict(report.passed),
                            f" ({sum(r.passed for r in report.runs)}/{len(report.runs)} runs within target)")
    return Group(head, runs, phases, verdict)


def render_live(live: Live) -> Group:
    head = Text(f"run {live.run}/{live.runs}: {live.stage}", style="bold")
    if live.since_fault_s is not None:
        head.append(f"   {live.since_fault_s:6.1f} s since the fault")
    table = Table(box=None)
    for col in ("direction", "received", "lost", "state"):
        table.add_column(col)
    for name, received, lost, steady in live.directions:
        state = Text(f"flowing for {steady:.1f} s", style="green") if steady is not None else Text("interrupted", style="red")
        table.add_row(name, str(received), str(lost), state)
    recent = [f"{e.node}: {e.kind}" for e in live.events[-4:]]
    return Group(head, table, Text("events: " + ("; ".join(recent) or "-"), style="dim"))


def failover_dict(report: FailoverReport) -> dict:
    """Everything: figures, checks, phases, the full event timeline and every probe."""
    data = asdict(report)
    data["passed"] = report.passed
    data["summary"] = summary_rows(report)
    for run, raw in zip(report.runs, data["runs"]):
        raw["passed"] = run.passed
        for check, raw_check in zip(run.checks, raw["checks"]):
            raw_check["passed"] = check.passed
        # Times relative to the fault read better than raw monotonic stamps.
        for event in raw["events"]:
            event["at_s"] = round((event["t_ns"] - run.fault_ns) / NS, 4)
    return data


def failover_json(report: FailoverReport) -> str:
    return json.dumps(failover_dict(report), indent=1, ensure_ascii=False)


def failover_junit(report: FailoverReport) -> str:
    """One test case per run and target (outage, restore time, loss per direction; detection)."""
    suite = ET.Element("testsuite", name=f"failover.{report.scenario}.{report.fault}.{report.target}",
                       tests=str(sum(len(r.checks) for r in report.runs)),
                       failures=str(sum(not c.passed for r in report.runs for c in r.checks)),
                       time=f"{sum((r.end_ns - r.started_ns) / NS for r in report.runs):.3f}")
    for run in report.runs:
        for check in run.checks:
            case = ET.SubElement(suite, "testcase", classname=f"failover.{report.profile}.{report.fault}",
                                 name=f"run {run.index}: {check.name} <= {check.limit:g} {check.unit}",
                                 time=f"{(run.end_ns - run.fault_ns) / NS:.3f}")
            measured = "never" if check.measured is None else f"{check.measured:g} {check.unit}"
            if not check.passed:
                failure = ET.SubElement(case, "failure", message=f"{check.name}: {measured}, target {check.limit:g} {check.unit}")
                failure.text = f"{report.fault} on {report.target}, profile {report.profile}: {report.target_source}"
            else:
                ET.SubElement(case, "system-out").text = f"measured {measured}"
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def failover_markdown(report: FailoverReport, plots: list[str]) -> str:
    kind = "planned" if report.planned else "unplanned"
    lines = [
        f"# Failover: {report.fault} on {report.target} ({report.profile} profile)",
        "",
        f"**{'PASS' if report.passed else 'FAIL'}**: {sum(r.passed for r in report.runs)}/{len(report.runs)} runs "
        f"restored within the {kind} target of {report.target_s:g} s ({report.target_source}).",
        "",
        f"Scenario `{report.scenario}`, {report.fault_summary}. Probes: UDP every {report.interval_s * 1000:g} ms "
        f"both ways. Machine: {report.machine}. Started {report.started_at}.",
        "",
        "| run | direction | outage (s) | restored (s) | lost | detected (s) | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for run in report.runs:
        for d in run.directions:
            lines.append(f"| {run.index} | {d.direction} | {_s(d.outage_s)} | {_s(d.restored_s)} | {d.lost} | "
                         f"{_s(_detected(run))} | {'PASS' if run.passed else 'FAIL'} |")
    for row in summary_rows(report):
        lines.append(f"| **{row['statistic']}** | {row['direction']} | {_s(row['outage_s'])} | {_s(row['restored_s'])} | "
                     f"{_s(row['lost'], 'packets')} | {_s(row['detected_s'])} | |")
    lines += ["", "Breakdown of each run, from observed events (seconds after the fault):", ""]
    if report.runs:
        names = [p.name for p in report.runs[0].phases]
        lines.append("| run | " + " | ".join(names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        for run in report.runs:
            lines.append(f"| {run.index} | " + " | ".join(_s(p.at_s) if p.at_s is not None else "-" for p in run.phases) + " |")
    lines += [""] + [f"![run timeline]({plot})" for plot in plots]
    return "\n".join(lines) + "\n"


# Events worth a mark on the plot, and their colours.
PLOTTED = {
    FAULT: "red", RESTORE: "grey", VRRP_MASTER: "tab:purple", VRRP_STOP: "tab:purple", VRRP_FAULT: "tab:purple",
    IKE_UP: "tab:blue", IKE_DOWN: "tab:blue", CHILD_UP: "tab:cyan", CHILD_DOWN: "tab:cyan",
    BGP_UP: "tab:green", BGP_DOWN: "tab:green", BFD_UP: "tab:olive", BFD_DOWN: "tab:olive",
    **{CONTAINER_PREFIX + action: "black" for action in ("kill", "die", "pause")},
}
BIN_S = 0.1


def plot_run(run: RunResult, path: Path, title: str) -> None:
    """Probe success per direction over time (100 ms bins), with the events as a lane below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start_s = (run.started_ns - run.fault_ns) / NS
    end_s = (run.end_ns - run.fault_ns) / NS
    fig, axes = plt.subplots(len(run.probes) + 1, 1, figsize=(11, 2.2 * len(run.probes) + 4.2), sharex=True,
                             gridspec_kw={"height_ratios": [1] * len(run.probes) + [2.2]})
    bins = int((end_s - start_s) / BIN_S) + 1
    for ax, probes, result in zip(axes, run.probes, run.directions):
        sent = [0] * bins
        got = [0] * bins
        received = {r[0] for r in probes.received}
        for seq, sent_ns in probes.sent:
            b = int(((sent_ns - run.fault_ns) / NS - start_s) / BIN_S)
            if 0 <= b < bins:
                sent[b] += 1
                got[b] += seq in received
        xs = [start_s + i * BIN_S for i in range(bins)]
        ys = [g / n if n else float("nan") for g, n in zip(got, sent)]
        ax.step(xs, ys, where="post", color="tab:blue", linewidth=1.2)
        ax.fill_between(xs, ys, step="post", alpha=0.25, color="tab:blue")
        ax.set_ylim(-0.05, 1.1)
        ax.set_ylabel("delivered")
        restored = "not restored" if result.restored_s is None else f"restored at {result.restored_s:.2f} s"
        ax.set_title(f"{result.direction}: outage {result.outage_s:.2f} s, {result.lost} lost, {restored}",
                     fontsize=9, loc="left")
        ax.axvline(0, color="red", linewidth=1)
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
    if run.target_s <= end_s:
        lane.axvline(run.target_s, color="red", linestyle=":", linewidth=1, label=f"target {run.target_s:g} s")
    else:
        lane.plot([], [], " ", label=f"target {run.target_s:g} s (off the right edge)")
    lane.legend(loc="lower right", fontsize=8)
    lane.set_xlabel("seconds after the fault")
    lane.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(report: FailoverReport, out_dir: Path) -> list[Path]:
    """report.json, junit.xml, one PNG per run and summary.md in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    plots = []
    for run in report.runs:
        path = out_dir / f"run-{run.index}.png"
        plot_run(run, path, f"{report.fault} on {report.target}, {report.profile} profile, run {run.index}: "
                            f"{'PASS' if run.passed else 'FAIL'}")
        plots.append(path.name)
        written.append(path)
    for name, text in (("report.json", failover_json(report)), ("junit.xml", failover_junit(report)),
                       ("summary.md", failover_markdown(report, plots))):
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    return written
