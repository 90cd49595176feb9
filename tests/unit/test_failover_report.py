"""Rendering a failover report: table, JSON, JUnit, Markdown, PNG, from one value."""
import json
import xml.etree.ElementTree as ET

from rich.console import Console

from lab.experiment import FailoverReport, RunResult
from lab.failover_report import (
    failover_json,
    failover_junit,
    failover_markdown,
    render_failover,
    summary_rows,
    write_outputs,
)
from lab.timeline import NS, analyse_direction, breakdown, checks

from recorded import DATA, recorded_events, recorded_probes

def recorded_run(index: int, target_s: float) -> RunResult:
    probes = recorded_probes()
    events = recorded_events()
    interval = DATA["interval_s"]
    directions = [analyse_direction(p, DATA["fault_ns"], DATA["end_ns"], int(interval * NS)) for p in probes]
    phases = breakdown(events, DATA["fault_ns"], DATA["target"], directions)
    return RunResult(index=index, fault="kill", target=DATA["target"], planned=False, target_s=target_s,
                     target_source="test", interval_s=interval, started_ns=DATA["started_ns"],
                     fault_ns=DATA["fault_ns"], end_ns=DATA["end_ns"], fault_detail="container SIGKILLed",
                     directions=directions, phases=phases, checks=checks(directions, phases, target_s, interval),
                     events=events, probes=probes, returned_by="failback")


def report(target_s: float, runs: int = 2) -> FailoverReport:
    r = FailoverReport(lab="t", scenario="active-standby", profile="fast", fault="kill", fault_summary="SIGKILL",
                       target=DATA["target"], planned=False, target_s=target_s, target_source="test",
                       interval_s=DATA["interval_s"], started_at="2026-11-26T10:00:00+00:00", machine="test")
    r.runs = [recorded_run(i + 1, target_s) for i in range(runs)]
    return r


def test_pass_and_fail_follow_the_target():
    assert report(target_s=10.0).passed
    assert not report(target_s=0.5).passed


def test_summary_has_median_and_p95_per_direction():
    rows = summary_rows(report(10.0, runs=3))
    assert [(r["statistic"], r["direction"]) for r in rows] == [
        ("median", "onprem-host → azure-vm"), ("p95", "onprem-host → azure-vm"),
        ("median", "azure-vm → onprem-host"), ("p95", "azure-vm → onprem-host")]
    assert rows[0]["outage_s"] == report(10.0).runs[0].directions[0].outage_s


def test_json_holds_the_full_timeline_and_every_probe():
    data = json.loads(failover_json(report(10.0)))
    run = data["runs"][0]
    assert data["passed"] is True
    assert len(run["probes"][0]["sent"]) == len(DATA["probes"][0]["sent"])
    assert {e["kind"] for e in run["events"]} >= {"fault", "vrrp-master", "child-up", "bgp-up"}
    fault = next(e for e in run["events"] if e["kind"] == "fault")
    assert fault["at_s"] == 0.0
    assert all("passed" in c for c in run["checks"])


def test_junit_has_one_case_per_run_and_target_with_failures_marked():
    failing = report(target_s=0.5)
    root = ET.fromstring(failover_junit(failing))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == sum(len(r.checks) for r in failing.runs)
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == int(suite.get("failures")) == sum(not c.passed for r in failing.runs for c in r.checks)
    assert any("outage" in c.get("name") for c in failed)


def test_markdown_and_table_state_the_verdict():
    r = report(target_s=0.5)
    text = failover_markdown(r, ["run-1.png"])
    assert "**FAIL**" in text and "![run timeline](run-1.png)" in text and "| **median** |" in text
    console = Console(record=True, width=140)
    console.print(render_failover(r))
    shown = console.export_text()
    assert "result: FAIL (0/2 runs within target)" in shown and "BGP Established" in shown


def test_outputs_are_written_with_a_real_png(tmp_path):
    written = write_outputs(report(10.0, runs=1), tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["junit.xml", "report.json", "run-1.png", "summary.md"]
    assert (tmp_path / "out" / "run-1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
