"""`lab status`'s paths: what carries each prefix at the routers that choose, over which session, and
why BGP chose it; within 80 columns where the lab has more than one carrier, always with --wide and --json."""
import json
import re

import pytest
from rich.console import Console

from lab.adapters.frr_route import FrrRoute
from lab.model.errors import LabError
from lab.plan.load import builtin_scenarios, load_plan
from lab.run.paths import route_paths
from lab.run.ports import BgpPath, ContainerInfo
from lab.run.status import LabStatus, RouteRow
from lab.ui import cli
from lab.ui.status_view import PathReading, StatusPaths, print_status, status_json, why_best

# FRR 8.4's `show bgp ipv4 unicast 10.1.0.0/16 json` on the running lab's onprem-ce (trimmed).
CE_JSON = json.dumps({"prefix": "10.1.0.0/16", "paths": [
    {"aspath": {"string": "12076 65515"}, "locPrf": 150, "valid": True, "multipath": True,
     "nexthops": [{"ip": "172.16.0.6", "used": True}], "peer": {"peerId": "172.16.0.6", "hostname": "msee-1"}},
    {"aspath": {"string": "12076 65515"}, "locPrf": 150, "valid": True, "multipath": True,
     "bestpath": {"overall": True, "selectionReason": "Local Pref"},
     "nexthops": [{"ip": "172.16.0.2", "used": True}], "peer": {"peerId": "172.16.0.2", "hostname": "msee-0"}},
    {"aspath": {"string": "65515"}, "locPrf": 100, "valid": True,
     "nexthops": [{"ip": "192.168.10.2", "used": True}], "peer": {"peerId": "192.168.10.2", "hostname": "onprem-0"}},
]})
# onprem-0's: its tunnel's path carries no local preference (eBGP), the CE's 50.
DEVICE_JSON = json.dumps({"paths": [
    {"aspath": {"string": "12076 65515"}, "locPrf": 50, "nexthops": [{"ip": "192.168.10.1"}],
     "peer": {"peerId": "192.168.10.1", "hostname": "onprem-ce"}},
    {"aspath": {"string": "65515"}, "bestpath": {"overall": True, "selectionReason": "Local Pref"},
     "nexthops": [{"ip": "10.1.255.30"}], "peer": {"peerId": "10.1.255.30"}},
]})


class Vtysh:
    def __init__(self, answers: dict[str, str]):
        self.answers, self.asked = answers, []

    def exec(self, name, argv, timeout_s=10.0):
        self.asked.append(argv)
        return 0, self.answers.get(argv[-1], "{}")


def test_the_adapter_reads_every_path_best_first_with_its_attributes():
    runtime = Vtysh({"show bgp ipv4 unicast 10.1.0.0/16 json": CE_JSON})
    paths = FrrRoute("onprem-ce", "lab-t-onprem-ce", runtime).bgp_paths("10.1.0.0/16")
    assert runtime.asked == [["vtysh", "-c", "show bgp ipv4 unicast 10.1.0.0/16 json"]]
    assert paths[0] == BgpPath("172.16.0.2", "msee-0", 150, 0, "12076 65515", True, True, "Local Pref")
    assert [(p.next_hop, p.best, p.multipath) for p in paths[1:]] == [("172.16.0.6", False, True),
                                                                       ("192.168.10.2", False, False)]


def test_a_prefix_not_in_the_table_has_no_paths():
    # FRR answers a prefix it has no route for with a warning and no paths.
    runtime = Vtysh({"show bgp ipv4 unicast 10.9.0.0/16 json": '{"warning": "Network not in table"}'})
    assert FrrRoute("onprem-ce", "c", runtime).bgp_paths("10.9.0.0/16") == []


def test_why_best_names_the_value_that_won_and_the_one_it_beat():
    runtime = Vtysh({"show bgp ipv4 unicast 10.1.0.0/16 json": CE_JSON})
    ce = FrrRoute("onprem-ce", "c", runtime).bgp_paths("10.1.0.0/16")
    # The ECMP path beside the best is not what it beat: the VPN's is.
    assert why_best(ce, wide=True) == "Local Pref: 150 over 100 (onprem-0)"
    # Narrow, the beaten path's peer is left to --wide: a long name would be cut.
    assert why_best(ce) == "Local Pref: 150 over 100"
    device = FrrRoute("onprem-0", "c", Vtysh({"show bgp ipv4 unicast 10.1.0.0/16 json": DEVICE_JSON})).bgp_paths(
        "10.1.0.0/16")
    assert why_best(device) == "Local Pref: 100 (default) over 50"
    weight = [BgpPath("10.1.255.12", "er-gw-0", 100, 32769, "12076 65010", True, False, "Weight"),
              BgpPath("10.1.255.4", "azure-gw-0", 100, 32768, "65010", False, False)]
    assert why_best(weight, wide=True) == "Weight: 32769 over 32768 (azure-gw-0)"
    # A reason with no attribute to compare, or a best path alone, is the reason itself.
    assert why_best(weight[:1]) == "Weight"
    assert why_best([BgpPath("0.0.0.0", "x", None, 32768, "Local", True, False, "First path received")]) \
        == "First path received"
    assert why_best([]) == "-"


def planned_status(plan) -> LabStatus:
    """Every choosing router's route over every one of its sessions, with an interface (the widest rows)."""
    status = LabStatus(lab=plan.lab, scenario=plan.scenario.name, profile="fast", data_plane="-", host_kernel_esp="-")
    for row in route_paths(plan, status.routes):
        hops = [f"{b.peer_address} (gateway-subnet)" for b in plan.sessions_of(row.node)]
        status.routes.append(RouteRow(row.node, row.prefix, hops))
    return status


def planned_paths(plan, status: LabStatus) -> StatusPaths:
    """BGP paths as long as they get: prepended AS paths, the default local preference, the longest reason."""
    readings = []
    for row in route_paths(plan, status.routes):
        bgp = [BgpPath(hop.split()[0], f"peer-of-{row.node}", None if n == 0 else 150, 32769,
                       "12076 65515 65515 65515", n == 0, n == 1, "Local Pref" if n == 0 else "")
               for n, hop in enumerate(row.next_hops)]
        readings.append(PathReading(row, bgp))
    carriers = {b.carrier for b in plan.bgp_sessions if b.carrier}
    return StatusPaths(readings, len(carriers) > 1)


def rendered(status, paths, width: int, wide: bool = False) -> str:
    console = Console(width=width, record=True)
    print_status(status, console, wide=wide, paths=paths)
    return console.export_text()


def whole(value: str, text: str) -> bool:
    return re.search(rf"(?<![\w.\-/]){re.escape(value)}(?![\w.\-/])", text) is not None


@pytest.mark.parametrize("scenario", builtin_scenarios())
def test_paths_fit_80_columns_with_no_name_or_address_cut(scenario):
    plan = load_plan(scenario, "fast", lab="t")
    status = planned_status(plan)
    paths = planned_paths(plan, status)
    text = rendered(status, paths, 80)
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    if not paths.several_carriers:
        # A VPN-only lab: every row would read "VPN", and its next hops are in the routes table.
        assert "Paths (at the routers that choose)" not in text
        return
    assert "Paths (at the routers that choose)" in text and "Best paths (BGP)" in text
    for reading in paths.readings:
        row = reading.row
        assert whole(row.node, text) and whole(row.prefix, text)
        assert all(whole(f"{hop.split()[0]}:", text) for hop in row.next_hops)


@pytest.mark.parametrize("scenario", builtin_scenarios())
def test_wide_shows_every_path_of_every_scenario(scenario):
    plan = load_plan(scenario, "fast", lab="t")
    status = planned_status(plan)
    paths = planned_paths(plan, status)
    text = rendered(status, paths, 200, wide=True)
    assert "BGP's paths (best first; ECMP: used beside it)" in text and "…" not in text
    for reading in paths.readings:
        for p in reading.bgp:
            assert whole(p.next_hop, text) and whole(p.peer, text)
    kinds = {"best"} | ({"ECMP"} if any(len(r.bgp) > 1 for r in paths.readings) else set()) | (
        {"backup"} if any(len(r.bgp) > 2 for r in paths.readings) else set())
    assert all(whole(kind, text) for kind in kinds) and "100 (default)" in text
    if "backup" in kinds:
        assert "Local Pref: 100 (default) over 150 (peer-of-" in text


def test_the_expressroute_lab_says_what_carries_each_prefix_and_over_which_session():
    plan = load_plan("expressroute-failover", "fast", lab="t")
    status = LabStatus(lab="t", scenario=plan.scenario.name, profile="fast", data_plane="-", host_kernel_esp="-",
                       routes=[RouteRow("onprem-ce", "10.1.0.0/16", ["172.16.0.2 (er-primary)", "172.16.0.6 (er-secondary)"]),
                               RouteRow("vnet-router", "192.168.10.0/24", ["10.1.255.4 (gateway-subnet)"])])
    ce = FrrRoute("onprem-ce", "c", Vtysh({"show bgp ipv4 unicast 10.1.0.0/16 json": CE_JSON})).bgp_paths("10.1.0.0/16")
    readings = []
    for row in route_paths(plan, status.routes):
        readings.append(PathReading(row, ce) if row.node == "onprem-ce" else PathReading(row, None, "vtysh timed out"))
    paths = StatusPaths(readings, True)
    text = rendered(status, paths, 200, wide=True)
    assert re.search(r"│ onprem-ce +│ 10\.1\.0\.0/16 +│ ExpressRoute +│ 172\.16\.0\.2 \(er-primary\) "
                     r"\(ExpressRoute, primary link\) +│", text)
    assert re.search(r"│ vnet-router +│ 192\.168\.10\.0/24 +│ VPN +│ 10\.1\.255\.4 \(gateway-subnet\) "
                     r"\(VPN gateway vpn-gw \(azure-gw-0\)\) +│", text)
    # No route at all: said, in red.
    assert re.search(r"│ onprem-0 +│ 10\.1\.0\.0/16 +│ none +│ - +│", text)
    assert "Local Pref: 150 over 100 (onprem-0)" in text and "vtysh timed out" in text
    data = json.loads(status_json(status, paths))
    by_node = {p["node"]: p for p in data["paths"]}
    assert by_node["onprem-ce"]["carrier"] == "expressroute"
    assert by_node["onprem-ce"]["bgp_paths"][0]["reason"] == "Local Pref"
    assert by_node["vnet-router"]["bgp_paths"] is None and by_node["vnet-router"]["problem"] == "vtysh timed out"


def test_json_has_the_paths_of_a_vpn_only_lab_too():
    plan = load_plan("active-standby", "fast", lab="t")
    status = planned_status(plan)
    data = json.loads(status_json(status, planned_paths(plan, status)))
    assert {p["node"] for p in data["paths"]} == {"onprem-0", "vnet-router"}
    assert "paths" not in json.loads(status_json(status))


class Engine:
    """Containers of a lab, each node's routes answering from `answers` (a LabError for a missing one)."""

    def __init__(self, answers: dict[str, list[BgpPath]]):
        self.answers = answers

    def containers(self, labels):
        node = labels["lab.node"]
        return [ContainerInfo(f"lab-t-{node}", node, "k", "running", None, 7, "h")]

    def routes_for(self, c):
        answers = self.answers

        class Routes:
            def bgp_paths(self, prefix):
                if c.node not in answers:
                    raise LabError(f"{c.node}: vtysh failed")
                return answers[c.node]
        return Routes()


def test_the_status_command_reads_each_choosing_router_once_per_prefix():
    plan = load_plan("expressroute-failover", "fast", lab="t")
    best = BgpPath("10.1.255.12", "er-gw-0", 100, 32769, "12076 65010", True, True, "Weight")
    engine = Engine({"onprem-ce": [], "vnet-router": [best]})

    class Adapters:
        runtime = engine
        routes_for = engine.routes_for

    read = cli._bgp_paths(plan, Adapters())
    assert read == {("onprem-0", "10.1.0.0/16"): "onprem-0: vtysh failed", ("onprem-ce", "10.1.0.0/16"): [],
                    ("vnet-router", "192.168.10.0/24"): [best]}
    status = LabStatus(lab="t", scenario=plan.scenario.name, profile="fast", data_plane="-", host_kernel_esp="-")
    paths = cli._status_paths(plan, status, read)
    assert paths.several_carriers
    assert [(r.row.node, r.problem) for r in paths.readings if r.bgp is None] == [("onprem-0", "onprem-0: vtysh failed")]
