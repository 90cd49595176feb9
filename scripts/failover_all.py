#!/usr/bin/env python3
"""Every built-in scenario's failover suite, timed through the installed CLI, in one table (issue 19).

    python scripts/failover_all.py [--runs N] [--profiles azure,fast] [--only S,...] [--out DIR]

For each scenario under lab/scenarios/, each of its `suite:` entries and each profile the entry
lists, it runs

    lab failover --scenario S --profile P --fault F [--target T] --runs N --out DIR/S-P-F[-T]

as a subprocess (what a user runs), bounded by a timeout, and takes the lab down (`lab down --lab S`)
after the scenario's last row, so only one lab is up at a time. Then DIR/summary.md and
DIR/summary.json: one row per run of `lab failover`, with min/median/max of the verdict's figure
(each run's Full Convergence Time, the slower direction's) over the valid runs. A run that crashed,
timed out or wrote no report is a row too (ERROR, with its exit code and first error line). The exit
code is 1 when any row is not PASS (or a lab could not be taken down), after the summary is written.

Defaults come from the environment too (RUNS, PROFILES, ONLY, OUT), as `make failover-all` passes them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.failover.statistics import Summary, summarize  # noqa: E402
from lab.model.schema import Scenario  # noqa: E402

LAB = str(Path(sys.executable).with_name("lab"))
# `lab failover`'s exit code for each report verdict (lab/ui/cli.py): anything else is an error.
EXIT_OF = {"PASS": 0, "FAIL": 1, "INVALID": 3}
# A run's bound: the lab's bring-up (or re-creation with another profile), then each attempt
# (N valid runs take up to N + max(2, N) attempts); an azure unplanned attempt is its 90 s target,
# the restore and the failback, well under the 240 s allowed.
UP_S = 300
ATTEMPT_S = 240
# After a timeout, the SIGINT lets `lab failover` undo its fault and fail back (its Ctrl-C path).
INTERRUPT_GRACE_S = 120
DOWN_S = 180
DEFAULT_OUT = "results/failover-all"


@dataclass(frozen=True)
class Job:
    """One `lab failover` of a scenario's suite: a fault on a target (None: the fault's default), one profile."""
    scenario: str
    lab: str            # `lab failover --scenario S` brings up a lab named after the scenario
    fault: str
    target: str | None
    profile: str

    @property
    def folder(self) -> str:
        parts = [self.scenario, self.profile, self.fault] + ([self.target] if self.target else [])
        # A target may be link:NODE/NETWORK: one folder under DIR, never a path.
        return re.sub(r"[^A-Za-z0-9._-]", "-", "-".join(parts))

    def command(self, runs: int, out: Path, cli: str = LAB) -> list[str]:
        return ([cli, "failover", "--scenario", self.scenario, "--profile", self.profile, "--fault", self.fault]
                + (["--target", self.target] if self.target else [])
                + ["--runs", str(runs), "--out", str(out / self.folder)])


@dataclass(frozen=True)
class Outcome:
    """What one job gave: its exit code (None: timed out), report.json (None: none written), the error."""
    job: Job
    exit_code: int | None
    report: dict | None
    error: str | None = None
    elapsed_s: float = 0.0


def plan_jobs(scenarios: list[tuple[str, Scenario]], profiles: list[str] | None = None) -> list[Job]:
    """Every suite entry of every scenario, once per profile it lists (only those in `profiles`, if given)."""
    return [Job(name, scenario.name, entry.fault, entry.target, profile)
            for name, scenario in scenarios for entry in scenario.suite
            for profile in entry.profiles if profiles is None or profile in profiles]


def error_line(stderr: str, exit_code: int | None) -> str:
    """Why a run gave no report: its exit code and the CLI's `error:` line, else its last line (a traceback's)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith("error:")), lines[-1] if lines else "no output")
    return f"exit {exit_code}: {said}"


# --- the summary (pure) -------------------------------------------------------------------------

def run_figure(run: dict) -> float | None:
    """A run's Full Convergence Time as its verdict judges it: every direction must be within target, so the
    slower direction's; None (never converged) when one direction never converged."""
    values = [d["full_convergence_s"] for d in run["directions"]]
    return None if not values or None in values else max(values)


def figure_summary(report: dict) -> Summary:
    """The verdict's figure over the valid runs (lab.failover.statistics), invalid runs counted apart."""
    valid = [r for r in report["runs"] if r["invalid"] is None]
    return summarize([run_figure(r) for r in valid], len(report["runs"]) - len(valid))


def _verdict_detail(report: dict) -> str:
    """How many valid runs passed, which checks missed, and whether the runs asked for were measured."""
    valid = [r for r in report["runs"] if r["invalid"] is None]
    text = f"{sum(r['verdict'] == 'PASS' for r in valid)}/{len(valid)} valid runs within target"
    # A check is "[EVENT ]rate-derived convergence DIRECTION" (lab.failover.metrics.checks): the event's name.
    missed = sorted({c["name"].partition("rate-derived")[0].strip() or "failover"
                     for r in valid for c in r["checks"] if not c["passed"]})
    if missed:
        text += f"; {', '.join(missed)} missed"
    if len(valid) < report.get("runs_asked", len(valid)):
        text += f"; {len(valid)} of {report['runs_asked']} runs measured"
    return text


def summary_row(outcome: Outcome) -> dict:
    """One row of the table, as JSON: the job, the figure's statistics, the time target and the verdict."""
    job, report = outcome.job, outcome.report
    row = {"scenario": job.scenario, "fault": job.fault, "target": job.target, "default_target": job.target is None,
           "profile": job.profile, "n": None, "invalid": None, "never": None, "min_s": None, "median_s": None,
           "max_s": None, "target_s": None, "target_source": None, "planned": None, "verdict": "ERROR",
           "detail": outcome.error or "no report", "exit_code": outcome.exit_code, "out": job.folder,
           "elapsed_s": round(outcome.elapsed_s, 1)}
    if report is None:
        return row
    s = figure_summary(report)
    row.update(target=report["target"], n=s.n, invalid=s.invalid, never=s.never, min_s=s.minimum,
               median_s=s.median, max_s=s.maximum, target_s=report["target_s"],
               target_source=report["target_source"], planned=report["planned"],
               verdict=report["verdict"], detail=_verdict_detail(report))
    if outcome.exit_code != EXIT_OF.get(report["verdict"]):
        row.update(verdict="ERROR", detail=f"exit {outcome.exit_code} with a {report['verdict']} report: "
                                           f"{outcome.error or row['detail']}")
    return row


def _seconds(value: float | None, n: int | None) -> str:
    if not n:
        return "-"
    return "never" if value is None else f"{value:.2f} s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(rows: list[dict], meta: dict) -> str:
    """The table, with what it measured and how it was run."""
    lines = [
        "# Failover suite: every built-in scenario",
        "",
        f"`{meta['command']}`: {meta['runs']} run(s) per row, started {meta['started_at']}, "
        f"{meta['elapsed_s'] / 60:.1f} min in all. Machine: {meta.get('machine') or 'unknown (no report)'}.",
        "",
        "| scenario | fault | target | profile | N | min | median | max | target (source) | verdict |",
        "|---|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        target = (r["target"] or "default") + (" (default)" if r["default_target"] and r["target"] else "")
        n = "-" if r["n"] is None else f"{r['n']}" + (f" ({r['invalid']} invalid)" if r["invalid"] else "")
        limit = "-" if r["target_s"] is None else f"{r['target_s']:g} s ({r['target_source']})"
        cells = [r["scenario"], r["fault"], target, r["profile"], n, _seconds(r["min_s"], r["n"]),
                 _seconds(r["median_s"], r["n"]), _seconds(r["max_s"], r["n"]), limit,
                 f"**{r['verdict']}** ({r['detail']})"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        "min / median / max: each run's Full Convergence Time (rate-derived, RFC 6412/6413), the slower "
        "direction's, as `lab failover` judges it against the target; over the N valid runs (invalid runs are "
        "repeated and counted apart), a run that never converged ranking last as \"never\" "
        "(lab/failover/statistics.py). The verdict is the report's: it also holds the restore to the planned "
        "target. Each row's reports (summary.md, report.json, junit.xml, plots, the CLI's output in lab.out "
        "and lab.err) are in its folder: scenario-profile-fault[-target].",
    ]
    lines += [f"\nNot taken down: {problem}" for problem in meta.get("down_errors", [])]
    return "\n".join(lines) + "\n"


def summary_json(rows: list[dict], meta: dict) -> str:
    return json.dumps({**meta, "rows": rows}, indent=1, ensure_ascii=False) + "\n"


def all_passed(rows: list[dict], meta: dict) -> bool:
    return all(r["verdict"] == "PASS" for r in rows) and not meta.get("down_errors")


# --- running ------------------------------------------------------------------------------------

def timeout_for(runs: int) -> float:
    return UP_S + ATTEMPT_S * (runs + max(2, runs))


def _stop(proc: subprocess.Popen, interrupt: bool = True) -> None:
    """Ctrl-C first (the CLI undoes the fault and fails back), then SIGKILL if it doesn't end in time."""
    if interrupt:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def run_job(job: Job, runs: int, out: Path, cli: str, timeout_s: float) -> Outcome:
    folder = (out / job.folder).resolve()
    if folder.parent != out.resolve():
        raise SystemExit(f"error: {job.folder!r} is not a folder of {out}")
    # A report left by an earlier run must never stand in for this one.
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "COLUMNS": "200"}   # the CLI's logs, written to files, wrap less
    started = time.monotonic()
    with open(folder / "lab.out", "w") as stdout, open(folder / "lab.err", "w") as stderr:
        proc = subprocess.Popen(job.command(runs, out, cli), stdout=stdout, stderr=stderr, env=env)
        try:
            code: int | None = proc.wait(timeout=timeout_s)
            error = None
        except subprocess.TimeoutExpired:
            _stop(proc)
            code, error = None, f"timed out after {timeout_s:g} s (stopped)"
        except KeyboardInterrupt:
            # The terminal's Ctrl-C reached the CLI too: a second one would cut its clean-up short.
            _stop(proc, interrupt=False)
            raise
    elapsed = time.monotonic() - started
    path = folder / "report.json"
    report = None
    if path.is_file():
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            error = f"exit {code}: unreadable report.json: {exc}"
    if report is None and error is None:
        error = error_line((folder / "lab.err").read_text(errors="replace"), code)
    return Outcome(job, code, report, error, elapsed)


def take_down(lab: str, cli: str) -> str | None:
    """`lab down --lab NAME`; what went wrong, or None."""
    try:
        done = subprocess.run([cli, "down", "--lab", lab], capture_output=True, text=True, timeout=DOWN_S)
    except subprocess.TimeoutExpired:
        return f"{lab}: `lab down` timed out after {DOWN_S} s"
    if done.returncode != 0:
        return f"{lab}: {error_line(done.stderr, done.returncode)}"
    return None


def _names(text: str | None) -> list[str] | None:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return names or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=int(env.get("RUNS") or 1),
                        help="valid runs per row, `lab failover --runs` (env RUNS; default 1)")
    parser.add_argument("--profiles", default=env.get("PROFILES"),
                        help="comma-separated profiles to run (env PROFILES; default: every one an entry lists)")
    parser.add_argument("--only", default=env.get("ONLY"),
                        help="comma-separated scenario names (env ONLY; default: every built-in scenario)")
    parser.add_argument("--out", type=Path, default=Path(env.get("OUT") or DEFAULT_OUT),
                        help=f"folder for every row's reports and summary.md/json (env OUT; default {DEFAULT_OUT})")
    parser.add_argument("--timeout-s", type=float, default=None,
                        help="bound on each `lab failover` (default: 300 s + 240 s per possible attempt)")
    parser.add_argument("--lab-cli", default=LAB, help="the `lab` command (default: the one beside this Python)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from lab.model.errors import LabError
    from lab.plan.load import builtin_profiles, builtin_scenarios, load_scenario

    only, profiles = _names(args.only), _names(args.profiles)
    known = builtin_scenarios()
    problems = ([f"--only {n}: no such built-in scenario (known: {', '.join(known)})" for n in only or [] if n not in known]
                + [f"--profiles {p}: no such profile (known: {', '.join(builtin_profiles())})"
                   for p in profiles or [] if p not in builtin_profiles()]
                + ([f"--runs {args.runs}: must be at least 1"] if args.runs < 1 else []))
    if problems:
        print("\n".join(f"error: {p}" for p in problems), file=sys.stderr)
        return 2
    try:
        # The name, not load_scenario's label (a file name): `lab failover --scenario` takes the name.
        scenarios = [(name, load_scenario(name)[1]) for name in known if only is None or name in only]
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    jobs = plan_jobs(scenarios, profiles)
    timeout_s = args.timeout_s or timeout_for(args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "make failover-all" + "".join(f" {k}={v}" for k, v in (("ONLY", args.only), ("PROFILES", args.profiles),
                                                                     ("RUNS", args.runs),
                                                                     ("OUT", str(args.out) if str(args.out) != DEFAULT_OUT else None)) if v)
    meta = {"command": command, "runs": args.runs, "only": only, "profiles": profiles,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "elapsed_s": 0.0,
            "machine": None, "down_errors": []}
    started = time.monotonic()
    outcomes: list[Outcome] = []
    interrupted = False
    try:
        for i, job in enumerate(jobs, 1):
            shown = f"{job.scenario} {job.profile} {job.fault}" + (f" on {job.target}" if job.target else "")
            print(f"[{i}/{len(jobs)}] {shown}: {' '.join(job.command(args.runs, args.out, args.lab_cli))}", flush=True)
            outcome = run_job(job, args.runs, args.out, args.lab_cli, timeout_s)
            outcomes.append(outcome)
            row = summary_row(outcome)
            print(f"    {row['verdict']} ({row['detail']}), median {_seconds(row['median_s'], row['n'])}, "
                  f"{outcome.elapsed_s:.0f} s", flush=True)
            if i == len(jobs) or jobs[i].lab != job.lab:
                problem = take_down(job.lab, args.lab_cli)
                if problem:
                    meta["down_errors"].append(problem)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: taking the lab down and writing the rows so far", file=sys.stderr)
        problem = take_down(jobs[len(outcomes)].lab if len(outcomes) < len(jobs) else jobs[-1].lab, args.lab_cli)
        if problem:
            meta["down_errors"].append(problem)
    rows = [summary_row(o) for o in outcomes]
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["machine"] = next((o.report.get("machine") for o in outcomes if o.report), None)
    (args.out / "summary.md").write_text(render_markdown(rows, meta))
    (args.out / "summary.json").write_text(summary_json(rows, meta))
    print(f"summary: {args.out}/summary.md, {args.out}/summary.json "
          f"({sum(r['verdict'] == 'PASS' for r in rows)}/{len(rows)} PASS)")
    if interrupted:
        return 130
    return 0 if all_passed(rows, meta) else 1


if __name__ == "__main__":
    sys.exit(main())
