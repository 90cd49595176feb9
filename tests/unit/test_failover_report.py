"""Rendering a failover report: table, JSON, JUnit, Markdown, PNG, from one value."""
import json
import xml.etree.ElementTree as ET

import pytest
from recorded import DATA, recorded_events, recorded_probes
from recorded import HANDOVER as RECORDED_HANDOVER
from rich.console import Console
from streams import FAULT, HANDOVER, METHOD, at, between, stream

from lab.model.daemon_events import Event
from lab.failover.runner import FailoverReport, RunResult
from lab.ui.failover_view import (
    COLUMNS,
    failover_json,
    failover_junit,
    failover_markdown,
    phase_rows,
    render_failover,
    summary_rows,
    write_outputs,
)
from lab.failover.metrics import NS, Method, analyse_direction, breakdown, checks, invalid_reason



def recorded_run(index: int, target_s: float) -> RunResult:
    """The recorded run (3 s settle: a 2 s Sustained Convergence Validation Time validates it)."""
    probes = recorded_probes()
    events = recorded_events()
    interval = DATA["interval_s"]
    method = Method(int(interval * NS), 2 * NS, 2 * NS)
    directions = [analyse_direction(p, DATA["fault_ns"], DATA["end_ns"], method) for p in probes]
    phases = breakdown(events, DATA["fault_ns"], DATA["end_ns"], RECORDED_HANDOVER, directions)
    return RunResult(index=index, fault="kill", target=DATA["target"], planned=False, target_s=target_s,
                     target_source="test", interval_s=interval, started_ns=DATA["started_ns"],
                     fault_ns=DATA["fault_ns"], end_ns=DATA["end_ns"], fault_detail="container SIGKILLed",
                     directions=directions, phases=phases, checks=checks(directions, target_s),
                     events=events, probes=probes, returned_by="failback", invalid=invalid_reason(directions))


def new_report(target_s: float, runs: list[RunResult], sustained_s: float = 2.0,
               asked: int | None = None) -> FailoverReport:
    r = FailoverReport(lab="t", scenario="active-standby", profile="fast", fault="kill", fault_summary="SIGKILL",
                       target=DATA["target"], planned=False, target_s=target_s, target_source="test",
                       interval_s=DATA["interval_s"], sustained_s=sustained_s,
                       started_at="2026-11-26T10:00:00+00:00", machine="test", return_target_s=1.0,
                       return_target_source="test's planned target")
    r.runs = runs
    r.runs_asked = len(runs) if asked is None else asked   # by default an invalid run leaves it short
    return r


def report(target_s: float, runs: int = 2) -> FailoverReport:
    return new_report(target_s, [recorded_run(i + 1, target_s) for i in range(runs)])


def synthetic_run(index: int, outage_s: float, target_s: float = 2.0, bgp: bool = True,
                  loss_before: bool = False, reversion_s: float | None = 0.3, restore_blip: bool = False) -> RunResult:
    """A run with an outage of `outage_s` each way, a restore at +12 s (with an outage when
    `restore_blip`: 1.2 s) and a failback at +16 s with its own outage."""
    lost = lambda t: between(0, outage_s)(t) or (loss_before and between(-0.5, -0.4)(t)) or \
        (reversion_s is not None and between(16, 16 + reversion_s)(t)) or (restore_blip and between(12, 13.2)(t))
    probes = [stream(2, 30, lost=lost, name=name)[0] for name in ("a → b", "b → a")]
    end, stopped = at(min(outage_s + 5, 11)), at(30)
    failback = at(16) if reversion_s is not None else None
    directions = [analyse_direction(p, FAULT, end, METHOD) for p in probes]
    restore = [analyse_direction(p, at(12), failback or stopped, METHOD, since_ns=end) for p in probes]
    reversion = ([analyse_direction(p, failback, stopped, METHOD, since_ns=failback) for p in probes]
                 if failback is not None else [])
    events = [Event(FAULT, "fault", "gw-0", "fault", "kill"), Event(at(0.3), "vrrp", "gw-1", "vrrp-master"),
              Event(at(0.4), "vici", "gw-1", "child-up", "t via 198.51.100.20")]
    if bgp:
        events.append(Event(at(0.1 * index), "frr", "dev", "bgp-up", "10.1.255.30"))
    return RunResult(index=index, fault="kill", target="gw-0", planned=False, target_s=target_s, target_source="test",
                     interval_s=0.02, started_ns=at(-2), fault_ns=FAULT, end_ns=end, fault_detail="SIGKILL",
                     directions=directions, phases=breakdown(events, FAULT, end, HANDOVER, directions),
                     checks=checks(directions, target_s) + checks(restore, 1.0, "restore"),
                     events=events, probes=probes, returned_by="failback",
                     invalid=invalid_reason(directions), restore_ns=at(12), stopped_ns=stopped,
                     failback_ns=failback, reversion=reversion, restore=restore)


def mixed() -> FailoverReport:
    """Five distinct runs against a 2 s target: two pass, one fails its restore (a 1 s outage against the
    planned 1 s target), one fails, one never converges; one more is invalid. Run 4 needed
    no failback."""
    runs = [synthetic_run(1, 0.5), synthetic_run(2, 1.0, bgp=False), synthetic_run(3, 1.5, restore_blip=True),
            synthetic_run(4, 3.0, reversion_s=None), synthetic_run(5, 30.0), synthetic_run(6, 0.2, loss_before=True)]
    return new_report(2.0, runs, asked=5)


def shown(r: FailoverReport) -> str:
    """The report as the terminal shows it."""
    console = Console(record=True, width=250)
    console.print(render_failover(r))
    return console.export_text()


def test_pass_and_fail_follow_the_target():
    assert report(target_s=10.0).passed and report(target_s=10.0).verdict == "PASS"
    assert not report(target_s=0.5).passed and report(target_s=0.5).verdict == "FAIL"


def test_the_recorded_run_reads_as_rfc_figures():
    run = report(10.0).runs[0]
    assert run.invalid is None and [p.out_of_order for p in run.phases] == [False] * 6
    for d in run.directions:
        assert d.converged and len(d.loss_episodes) == 1 and d.loss_derived_s <= d.rate_derived_s


def test_summary_has_min_median_max_and_the_counts_of_every_figure_per_direction():
    rows = summary_rows(report(10.0, runs=3))
    assert [(r["statistic"], r["direction"]) for r in rows] == [
        (statistic, direction) for direction in ("onprem-host → azure-vm", "azure-vm → onprem-host")
        for statistic in ("min", "median", "max", "runs")]           # no p95 from 3 runs
    first = report(10.0).runs[0].directions[0]
    assert rows[1]["rate_derived_s"] == first.rate_derived_s and rows[1]["loss_derived_s"] == first.loss_derived_s
    assert set(rows[0]) == {"statistic", "direction"} | {m.key for m in COLUMNS}
    assert rows[3]["rate_derived_s"] == {"n": 3, "invalid": 0, "never": 0}
    assert rows[3]["reversion_s"] == {"n": 0, "invalid": 0, "never": 0}   # the recorded run has no failback


def test_statistics_on_distinct_mixed_runs_count_the_run_that_never_converged():
    r = mixed()
    # Run 3 converged within its 2 s target, but its restore took 1.2 s against the planned 1 s.
    assert [run.verdict for run in r.runs] == ["PASS", "PASS", "FAIL", "FAIL", "FAIL", "INVALID"]
    assert [c.name for c in r.runs[2].checks if not c.passed] == [
        "restore rate-derived convergence a → b", "restore rate-derived convergence b → a"]
    assert r.verdict == "FAIL" and not r.passed
    low, median, high, runs = summary_rows(r)[:4]
    # Over the five valid runs: 0.5, 1.0, 1.5, 3.0 and never; run 6 is invalid.
    assert (low["rate_derived_s"], median["rate_derived_s"], high["rate_derived_s"]) == (0.5, 1.5, None)
    assert runs["rate_derived_s"] == {"n": 5, "invalid": 1, "never": 1}
    # Run 5 lost 545 probes up to the window's end: that is the window, not a figure, so it counts as never.
    assert (median["convergence_packet_loss"], high["convergence_packet_loss"]) == (75, None)
    assert runs["convergence_packet_loss"] == runs["longest_gap_s"] == {"n": 5, "invalid": 1, "never": 1}
    # The reversion: runs 1, 2, 3 at 0.3 s and run 5, whose outage lasted through it (4 had no failback;
    # 6 is invalid). The restore: 0 s, 0 s, 1.2 s, 0 s and never (run 5's outage was still going on).
    assert (low["reversion_s"], median["reversion_s"], high["reversion_s"]) == (pytest.approx(0.3), 0.3, None)
    assert runs["reversion_s"] == {"n": 4, "invalid": 1, "never": 1}
    assert (low["restore_s"], median["restore_s"], high["restore_s"]) == (0.0, 0.0, None)
    assert runs["restore_s"] == {"n": 5, "invalid": 1, "never": 1}
    phases = {row["statistic"]: row for row in phase_rows(r)}
    assert list(phases) == ["min", "median", "max", "runs"]
    # BGP Established over 0.1, 0.3, 0.4, 0.5 and never (run 2 never saw it): never ranks last.
    assert (phases["median"]["BGP Established"], phases["max"]["BGP Established"]) == (0.4, None)
    assert phases["runs"]["BGP Established"] == {"n": 5, "invalid": 1, "never": 1}
    assert phases["min"]["public IP moved"] == phases["max"]["public IP moved"] == 0.3


def test_p95_is_shown_from_twenty_valid_runs():
    twenty = new_report(2.0, [synthetic_run(i + 1, 0.1 * (i + 1)) for i in range(20)])
    rows = summary_rows(twenty)
    assert [row["statistic"] for row in rows[:5]] == ["min", "median", "max", "p95", "runs"]
    # Nearest rank: the 19th of 0.1, 0.2, ... 2.0 s.
    assert rows[3]["rate_derived_s"] == pytest.approx(1.9) and rows[2]["rate_derived_s"] == pytest.approx(2.0)
    assert rows[1]["rate_derived_s"] == pytest.approx(1.05)     # the mean of the 10th and 11th
    assert "| **p95** | a → b | 1.90 s |" in failover_markdown(twenty, [])
    assert summary_rows(new_report(2.0, twenty.runs[:19]))[3]["statistic"] == "runs"


def test_summaries_of_only_invalid_runs_say_so():
    r = new_report(2.0, [synthetic_run(1, 0.5, loss_before=True), synthetic_run(2, 0.5, loss_before=True)])
    low, median, high, runs = summary_rows(r)[:4]
    assert low["rate_derived_s"] is median["rate_derived_s"] is high["rate_derived_s"] is None
    assert runs["rate_derived_s"] == {"n": 0, "invalid": 2, "never": 0}
    text = failover_markdown(r, [])
    assert "| **median** | a → b | - |" in text and "| **runs** | a → b | N=0, 2 invalid, 0 never |" in text
    assert "- converged, a → b: no valid runs (N=0, 2 invalid, 0 never converged)" in text


def test_a_missing_phase_and_a_run_that_never_converged_render_as_such():
    r = mixed()
    text = failover_markdown(r, [])
    run2 = next(line for line in text.splitlines() if line.startswith("| 2 | 0.00 s"))
    assert run2.split(" | ")[5] == "-"                          # run 2: BGP Established not observed
    assert "| **max** | 0.00 s | 0.30 s | 0.30 s | 0.40 s | not observed | not converged |" in text
    assert "| **runs** | N=5, 1 invalid, 0 never | " in text
    # One flow: no worst flow ("-", N=0); the others never converged in run 5.
    assert "| **max** | a → b | not converged | not converged | - | not converged | not converged |" in text
    line = "converged, a → b: median 1.50 s (min 0.50, max never; N=5, 1 invalid, 1 never converged)"
    assert f"- {line}" in text
    assert "| 5 | a → b | not converged | not converged | - |" in text
    terminal = shown(r)
    assert "not observed" in terminal and "not converged" in terminal
    assert "result: FAIL (2/5 valid runs within target, 1 invalid (repeated))" in terminal
    assert "run 6 INVALID: a → b: 5 probes lost in the baseline" in terminal
    assert line in terminal and "N=4, 1 invalid, 1 never" in text
    properties = {p.get("name"): p.get("value") for p in ET.fromstring(failover_junit(r)).iter("property")}
    assert properties["converged, a → b"] == line.removeprefix("converged, a → b: ")
    assert ("| 3 | a → b | 1.50 s | 1.50 s | - | 1.50 s | 1.50 s | 75 | 0 | 100 % | 3.0 ms | 1.52 s | 1.20 s | "
            "0.30 s | FAIL |") in text


def test_an_invalid_run_is_neither_passed_nor_a_false_failure():
    r = new_report(2.0, [synthetic_run(1, 0.5), synthetic_run(2, 0.5, loss_before=True)])
    assert r.verdict == "INVALID" and not r.passed
    rows = summary_rows(r)
    assert rows[0]["rate_derived_s"] == rows[2]["rate_derived_s"] == 0.5   # the invalid run is not in the statistics
    assert rows[3]["rate_derived_s"] == {"n": 1, "invalid": 1, "never": 0}
    suite = ET.fromstring(failover_junit(r)).find("testsuite")
    # Each run judges two events (the fault, the restore) each way.
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("8", "0", "4")
    errors = [c for c in suite.findall("testcase") if c.find("error") is not None]
    assert all(c.get("name").startswith("run 2:") for c in errors)
    assert "invalid run: a → b: 5 probes lost in the baseline" in errors[0].find("error").get("message")
    data = json.loads(failover_json(r))
    assert data["verdict"] == "INVALID" and data["runs"][1]["invalid"].startswith("a → b: 5 probes lost")
    assert "**INVALID**" in failover_markdown(r, [])


def test_json_holds_every_figure_loss_episode_event_and_probe():
    data = json.loads(failover_json(report(10.0)))
    run = data["runs"][0]
    assert data["passed"] is True and data["verdict"] == "PASS"
    assert set(data["metrics"]) == {m.key for m in COLUMNS}
    direction = run["directions"][0]
    assert {"rate_derived_s", "loss_derived_s", "first_route_s", "convergence_packet_loss", "max_delay_s",
            "longest_gap_s", "invalid", "converged", "interrupted"} <= set(direction)
    assert direction["loss_episodes"][0]["probes"] == direction["lost"]
    assert len(run["probes"][0]["sent"]) == len(DATA["probes"][0]["sent"])
    assert {e["kind"] for e in run["events"]} >= {"fault", "vrrp-master", "child-up", "bgp-up"}
    fault = next(e for e in run["events"] if e["kind"] == "fault")
    assert fault["at_s"] == 0.0
    assert all("passed" in c for c in run["checks"])
    assert {p["name"]: p["out_of_order"] for p in run["phases"]}["BGP Established"] is False


def test_json_has_the_reversion():
    data = json.loads(failover_json(mixed()))
    assert data["runs"][0]["reversion"][0]["rate_derived_s"] == pytest.approx(0.3)
    assert data["runs"][3]["reversion"] == [] and data["runs"][3]["failback_ns"] is None


def test_junit_has_one_case_per_run_and_direction_with_failures_marked():
    failing = report(target_s=0.5)
    suite = ET.fromstring(failover_junit(failing)).find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == sum(len(r.checks) for r in failing.runs) == 4
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == int(suite.get("failures")) == 4 and suite.get("errors") == "0"
    assert all("rate-derived convergence" in c.get("name") for c in failed)


def test_markdown_and_table_state_the_verdict_and_name_each_figure():
    r = report(target_s=0.5)
    text = failover_markdown(r, ["run-1.png"])
    assert "**FAIL**" in text and "![run timeline](run-1.png)" in text and "| **median** |" in text
    assert "Full Convergence Time, Rate-Derived Method" in text and "Loss-Derived Convergence Time" in text
    assert "Loss episodes" in text and "0.01–1.33 s (66)" in text
    terminal = shown(r)
    assert "result: FAIL (0/2 valid runs within target)" in terminal and "BGP Established" in terminal
    assert "rate-derived" in terminal and "loss-derived" in terminal and "longest gap" in terminal


def test_an_out_of_order_run_says_how_it_happened():
    run = synthetic_run(1, 0.5)
    run.phases = breakdown(run.events + [Event(at(0.05), "vici", "dev", "child-up", "t via 198.51.100.100")],
                           FAULT, run.end_ns, HANDOVER, run.directions)
    text = failover_markdown(new_report(2.0, [run]), [])
    assert "0.05 s (out of order)" in text
    assert "Run 1, as it happened: fault injected → IKE re-established → BGP Established → " in text


def test_outputs_are_written_with_a_real_png(tmp_path):
    written = write_outputs(new_report(2.0, [recorded_run(1, 2.0), synthetic_run(2, 30.0)]), tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["junit.xml", "report.json", "run-1.png", "run-2.png", "summary.md"]
    assert (tmp_path / "out" / "run-1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_other_documented_figures_are_shown_with_the_runs_that_met_them_but_not_judged():
    r = mixed()
    r.also_documented = [(15.0, "another page")]
    r.departures = ["DPD timeout 2 s (Azure: 9 to 3600 s)"]
    # Runs 1-4 converged within 15 s; run 5 never did; run 6 is invalid and doesn't count.
    assert r.within(15.0) == 4 and r.within(2.0) == 3
    line = "also documented: 15 s (another page): 4/5 valid runs within it"
    assert line in failover_markdown(r, [])
    assert "departs from Azure: DPD timeout 2 s" in failover_markdown(r, [])
    suite = ET.fromstring(failover_junit(r))
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["also documented"] == line.removeprefix("also documented: ")
    assert properties["departs from Azure"].startswith("DPD timeout 2 s")
    # The verdict is the target's alone: a run that met 15 s but not 2 s still fails.
    assert r.verdict == "FAIL"
    console = Console(width=200, record=True)
    console.print(render_failover(r))
    assert line in console.export_text()
    assert json.loads(failover_json(r))["also_documented"] == [[15.0, "another page"]]
