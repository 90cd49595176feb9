"""The resiliency report: per run and prefix at the routers that choose, redundant or not, what carried
it before, during and after the fault, the outage toward it and whether it converged within target;
shown in the terminal, summary.md and report.json only for runs that read paths."""
import json

import pytest
from rich.console import Console
from streams import FAULT, METHOD, at, between, stream

from lab.failover.metrics import analyse_direction, checks, invalid_reason
from lab.failover.resiliency import path_text, resiliency_rows, run_summaries, toward, wall_clock
from lab.failover.runner import FailoverReport, RunResult
from lab.plan.load import load_plan
from lab.run.paths import PathRow
from lab.ui.failover_view import failover_json, failover_markdown, render_failover, resiliency

TO_VNET, TO_ONPREM = "onprem-host → azure-vm", "azure-vm → onprem-host"
PRIMARY, SECONDARY, VPN_AT_CE = "ExpressRoute, primary link", "ExpressRoute, secondary link", "the VPN, through onprem-0"


@pytest.fixture(scope="module")
def plan():
    return load_plan("expressroute-failover", "fast", lab="t")


def ce(*links: str) -> dict:
    """The CE's route to the VNet over the circuit's `links` ("primary", "secondary"), else over the VPN."""
    hops = {"primary": ("172.16.0.2 (er-primary)", PRIMARY), "secondary": ("172.16.0.6 (er-secondary)", SECONDARY)}
    if not links:
        return PathRow("onprem-ce", "10.1.0.0/16", "vpn", [VPN_AT_CE], ["192.168.10.2 (lan)"]).to_dict()
    return PathRow("onprem-ce", "10.1.0.0/16", "expressroute", [hops[l][1] for l in links],
                   [hops[l][0] for l in links]).to_dict()


def vnet(circuit: bool) -> dict:
    if circuit:
        return PathRow("vnet-router", "192.168.10.0/24", "expressroute",
                       ["ExpressRoute gateway er-gw (er-gw-0)", "ExpressRoute gateway er-gw (er-gw-1)"],
                       ["10.1.255.12", "10.1.255.13"]).to_dict()
    return PathRow("vnet-router", "192.168.10.0/24", "vpn", ["VPN gateway vpn-gw (azure-gw-0)"],
                   ["10.1.255.4"]).to_dict()


def run(index: int, to_vnet_s: float, to_onprem_s: float, paths: dict, target_s: float = 3.0) -> RunResult:
    """A circuit-down run: an outage of each length each way; the probes run 30 s past the fault."""
    probes = [stream(2, 30, lost=between(0, to_vnet_s), name=TO_VNET)[0],
              stream(2, 30, lost=between(0, to_onprem_s), name=TO_ONPREM)[0]]
    end = at(12)
    directions = [analyse_direction(p, FAULT, end, METHOD) for p in probes]
    return RunResult(index=index, fault="circuit-down", target="circuit:er-gw", planned=False, target_s=target_s,
                     target_source="test", interval_s=0.02, started_ns=at(-2), fault_ns=FAULT, end_ns=end,
                     fault_detail="both links cut", directions=directions, phases=[],
                     checks=checks(directions, target_s), events=[], probes=probes,
                     invalid=invalid_reason(directions), stopped_ns=at(30), paths=paths)


def circuit_down(index: int = 1, **outages) -> RunResult:
    return run(index, outages.get("to_vnet", 0.9), outages.get("to_onprem", 1.2), {
        "before": [ce("primary", "secondary"), vnet(True)],
        "during": [ce(), vnet(False)],
        "after": [ce("primary", "secondary"), vnet(True)],
    })


def report(*runs: RunResult) -> FailoverReport:
    r = FailoverReport(lab="t", scenario="expressroute-failover", profile="fast", fault="circuit-down",
                       fault_summary="cuts the circuit's links", target="circuit:er-gw", planned=False, target_s=3.0,
                       target_source="test", interval_s=0.02, sustained_s=2.0,
                       started_at="2026-12-01T23:00:00+00:00", machine="test")
    r.runs, r.runs_asked = list(runs), len(runs)
    return r


def test_each_prefix_says_what_carried_it_before_during_and_after(plan):
    rows = resiliency_rows(report(circuit_down()), plan)
    assert [(r.router, r.prefix) for r in rows] == [("onprem-ce", "10.1.0.0/16"), ("vnet-router", "192.168.10.0/24")]
    at_ce, at_vnet = rows
    assert (at_ce.before, at_ce.during, at_ce.after) == (
        "ExpressRoute, 2 next hops", "VPN, 1 next hop", "ExpressRoute, 2 next hops")
    assert at_vnet.during == "VPN, 1 next hop"
    # Two links, two next hops: redundant, and the reason says so.
    assert at_ce.redundant and at_ce.redundancy == "2 next hops"


def test_the_outage_is_the_direction_toward_the_prefix(plan):
    rows = resiliency_rows(report(circuit_down(to_vnet=0.9, to_onprem=1.5)), plan)
    at_ce, at_vnet = rows
    # The CE forwards toward the VNet: the probes to azure-vm; the VNet's router toward on-premises.
    assert at_ce.direction == TO_VNET and at_vnet.direction == TO_ONPREM
    assert at_ce.outage_s == pytest.approx(0.9, abs=0.05)
    assert at_vnet.outage_s == pytest.approx(1.5, abs=0.05)
    assert at_ce.succeeded and at_vnet.succeeded


def test_one_direction_over_target_fails_only_its_prefix(plan):
    rows = resiliency_rows(report(circuit_down(to_vnet=0.5, to_onprem=5.0)), plan)
    assert [r.succeeded for r in rows] == [True, False]
    (summary,) = run_summaries(rows)
    assert summary.succeeded is False


def test_a_single_next_hop_of_one_carrier_is_not_redundant(plan):
    one_link = run(1, 0.5, 0.5, {"before": [ce("primary")], "during": [ce("secondary")], "after": [ce("primary")]})
    (row,) = resiliency_rows(report(one_link), plan)
    assert not row.redundant and row.redundancy == "1 next hop"
    (summary,) = run_summaries([row])
    assert summary.non_redundant == ["10.1.0.0/16 at onprem-ce"] and summary.redundant == []


def test_both_carriers_at_once_are_redundant(plan):
    both = PathRow("onprem-ce", "10.1.0.0/16", "expressroute+vpn", [PRIMARY, VPN_AT_CE],
                   ["172.16.0.2 (er-primary)", "192.168.10.2 (lan)"]).to_dict()
    (row,) = resiliency_rows(report(run(1, 0.1, 0.1, {"before": [both]})), plan)
    assert row.redundant and row.redundancy == "2 carriers"
    assert row.before == "ExpressRoute + VPN, 2 next hops"
    # A run that read nothing during or after says so.
    assert row.during == row.after == "not read"


def test_no_route_during_the_fault_reads_none():
    lost = PathRow("onprem-ce", "10.1.0.0/16", "", [], []).to_dict()
    assert path_text(lost) == "none" and path_text(None) == "not read"


def test_start_and_end_are_wall_clock_from_the_report_start(plan):
    first, second = circuit_down(1), circuit_down(2)
    # The second run's stamps are 100 s later on the same clock.
    for name in ("started_ns", "fault_ns", "end_ns", "stopped_ns"):
        setattr(second, name, getattr(second, name) + 100 * 10**9)
    rows = resiliency_rows(report(first, second), plan)
    # The report's start is the first run's probe start; the fault came 2 s later, the probes ran 30 s past it.
    assert (rows[0].start, rows[0].end) == ("2026-12-01T23:00:02+00:00", "2026-12-01T23:00:32+00:00")
    assert rows[2].start == "2026-12-01T23:01:42+00:00"
    assert wall_clock(report(), FAULT) == ""


def test_an_invalid_run_neither_succeeds_nor_fails(plan):
    broken = circuit_down()
    broken.invalid = "loss before the fault"
    assert {r.succeeded for r in resiliency_rows(report(broken), plan)} == {None}


def test_without_the_plan_no_direction_is_known_and_the_run_verdict_stands():
    rows = resiliency_rows(report(circuit_down(to_vnet=0.5, to_onprem=5.0)), None)
    assert {r.direction for r in rows} == {None} and {r.outage_s for r in rows} == {None}
    assert {r.succeeded for r in rows} == {False}


def test_toward_finds_the_host_in_the_prefix(plan):
    assert toward(plan, "10.1.0.0/16") == TO_VNET
    assert toward(plan, "192.168.10.0/24") == TO_ONPREM
    assert toward(plan, "172.31.0.0/16") is None


def test_the_report_shows_a_resiliency_section_in_each_output(plan):
    r = report(circuit_down())
    console = Console(record=True, width=250)
    console.print(render_failover(r, plan))
    shown = console.export_text()
    assert "Resiliency" in shown and "VPN, 1 next hop" in shown and "simulation successful: yes" in shown
    md = failover_markdown(r, [], plan)
    assert "## Resiliency" in md
    assert "| 1 | 10.1.0.0/16 | onprem-ce | yes (2 next hops) | ExpressRoute, 2 next hops | VPN, 1 next hop | " \
           "ExpressRoute, 2 next hops | 0.9" in md
    data = json.loads(failover_json(r, plan))
    assert [row["router"] for row in data["resiliency"]] == ["onprem-ce", "vnet-router"]
    assert data["resiliency_runs"][0]["succeeded"] is True
    # The paths themselves go in with the run.
    assert data["runs"][0]["paths"]["during"][0]["carrier"] == "vpn"


def test_the_terminal_section_cuts_no_prefix_or_router_at_80_columns(plan):
    console = Console(record=True, width=80)
    console.print(render_failover(report(circuit_down()), plan))
    text = console.export_text()
    section = text[text.index("Resiliency ("):]
    assert max(len(line) for line in section.splitlines()) <= 80 and "…" not in section
    for value in ("10.1.0.0/16", "onprem-ce", "192.168.10.0/24", "vnet-router", "0.90 s", "1.20 s"):
        assert value in section


def test_the_report_loads_its_own_plan_when_not_given():
    rows = resiliency(report(circuit_down()))
    assert rows[0].direction == TO_VNET


def test_runs_without_paths_show_no_section():
    bare = circuit_down()
    bare.paths = {}
    r = report(bare)
    console = Console(record=True, width=250)
    console.print(render_failover(r))
    assert "Resiliency" not in console.export_text()
    assert "Resiliency" not in failover_markdown(r, [])
    assert json.loads(failover_json(r))["resiliency"] == []
