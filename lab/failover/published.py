"""Committed failover reports, read back and re-analysed with the current maths (pure; no Docker).

A figure the README publishes comes from a `report.json` that `lab failover`
wrote (`make figures` puts them in docs/figures/NAME/). Every probe of every
run is in it, so the figures can be computed again from the raw probes: the
unit tests do that for each report the README links to, and the integration
tests read the published medians from here to set their margins.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.failover.statistics import Summary, summarize
from lab.failover.metrics import NS, Method, RunWindows, run_windows
from lab.model.probes import DirectionProbes

FIGURES = Path(__file__).resolve().parents[2] / "docs" / "figures"


@dataclass(frozen=True)
class Published:
    """One report's figures, per direction: the fault's and the restore's Full Convergence Time."""
    name: str
    runs: int                         # runs in the report, valid or not
    failover: dict[str, Summary]      # direction -> summary over the valid runs
    restore: dict[str, Summary]
    reversion: dict[str, Summary]
    verdicts: list[str]


def _probes(raw: dict) -> DirectionProbes:
    return DirectionProbes(raw["name"], [tuple(s) for s in raw["sent"]], [tuple(r) for r in raw["received"]],
                           first_slot_ns=raw.get("first_slot_ns"), sender_through_ns=raw.get("sender_through_ns"),
                           receiver_through_ns=raw.get("receiver_through_ns"))


def method_of(report: dict) -> Method:
    return Method(interval_ns=round(report["interval_s"] * NS), sustained_ns=round(report["sustained_s"] * NS),
                  baseline_ns=round(report.get("baseline_s", 2.0) * NS), flows=report.get("probe_flows", 1),
                  threshold_intervals=round(report["threshold_s"] / report["interval_s"]))


def reanalyse_run(run: dict, method: Method) -> RunWindows:
    """A run's windows, computed again from its probes by the runner's own function."""
    return run_windows([_probes(p) for p in run["probes"]], method, run["fault_ns"], run["end_ns"],
                       run.get("restore_ns"), run.get("restore_end_ns"), run.get("failback_ns"), run["stopped_ns"])


def reanalyse(path: Path) -> Published:
    """Every figure of a report.json, from its probes, as the current code computes them."""
    report = json.loads(path.read_text())
    method = method_of(report)
    per_run = [reanalyse_run(run, method) for run in report["runs"]]
    # Valid: the re-analysis finds nothing wrong, and neither did the run (its clock's drift is not in the probes).
    valid = [not any(d.invalid for d in w.failover + w.restore + w.reversion) and run["invalid"] is None
             for run, w in zip(report["runs"], per_run)]
    invalid = valid.count(False)
    names = [p["name"] for p in report["runs"][0]["probes"]] if report["runs"] else []

    def summaries(window: str) -> dict[str, Summary]:
        return {name: summarize([getattr(w, window)[i].full_convergence_s for w, ok in zip(per_run, valid)
                                 if ok and i < len(getattr(w, window))], invalid)
                for i, name in enumerate(names)}

    return Published(path.parent.name, len(report["runs"]), summaries("failover"), summaries("restore"),
                     summaries("reversion"), [run["verdict"] for run in report["runs"]])


def published(name: str) -> Published:
    """The committed report docs/figures/NAME/report.json, re-analysed."""
    path = FIGURES / name / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"no committed report {path} (run `make figures ONLY={name}`)")
    return reanalyse(path)
