"""ExpressRoute as data: peerings with each side's own policy, gateway types, kinds by capability,
the circuit's faults and targets, and which story tells each failover."""
import pytest

from lab.failover.faults import FAULTS, check_target, resolve_target
from lab.failover.stories import story_for
from lab.model.azure import azure_rules
from lab.model.errors import LabError
from lab.model.kinds import KINDS, Can
from lab.plan.checks import check_scenario
from lab.plan.gateway_types import GATEWAY_TYPES, strategy_of, type_of
from lab.plan.load import load_plan, load_scenario
from lab.render.deploy_plan import plan_deploy


def sessions(plan, node):
    return {str(b.peer_address): b for b in plan.sessions_of(node)}


def test_a_peering_becomes_a_session_at_each_end_with_that_sides_own_policy():
    plan = load_plan("expressroute-failover", "azure")
    ce, msee = sessions(plan, "onprem-ce")["172.16.0.2"], sessions(plan, "msee-0")["172.16.0.1"]
    assert (ce.peer_asn, msee.peer_asn) == (12076, 65010)
    assert ce.local_pref == 150 and msee.local_pref is None       # on-premises sets it, not Microsoft
    assert ce.bfd.interval_ms == msee.bfd.interval_ms == 300 and ce.bfd.multiplier == 3
    assert (ce.keepalive_s, ce.hold_s) == (60, 180) and ce.carrier == "expressroute"
    device = sessions(plan, "onprem-0")["192.168.10.1"]
    assert device.local_pref == 50 and device.next_hop_self and device.carrier == ""
    assert sessions(plan, "onprem-ce")["192.168.10.2"].carrier == "vpn"


def test_the_profiles_bfd_is_only_the_tunnels_default_and_a_departure_is_judged_per_session():
    azure, fast = load_plan("expressroute-failover", "azure"), load_plan("expressroute-failover", "fast")
    tunnel = [b for b in azure.bgp_sessions if b.tunnel]
    assert tunnel and all(b.bfd is None for b in tunnel)                       # Azure: no BFD on VPN
    assert all(b.bfd is not None for b in fast.bgp_sessions if b.tunnel)      # fast: the profile's
    # BFD on the circuit is Azure's own default: with the azure profile, nothing departs from Azure.
    assert all(b.bfd is not None for b in azure.bgp_sessions if b.peering in ("er-primary", "er-secondary"))
    assert azure_rules().departures(azure.profile) == {}
    no_bfd = load_plan("expressroute-no-bfd", "azure")
    assert all(b.bfd is None for b in no_bfd.bgp_sessions)
    files = {f.path: f.text for spec in plan_deploy(azure, {t.name: "k" for t in azure.tunnels}).nodes
             if spec.labels["lab.node"] == "onprem-ce" for f in spec.files}
    assert "bfdd=yes" in files["frr/daemons"] and " neighbor 172.16.0.2 bfd profile bfd-300x3" in files["frr/frr.conf"]
    assert "set local-preference 150" in files["frr/frr.conf"]


def test_the_vnet_prefers_expressroute_by_weight_only_where_both_types_feed_it():
    plan = load_plan("expressroute-failover")
    weights = {b.path: b.weight for b in plan.sessions_of("vnet-router")}
    assert weights["ExpressRoute gateway er-gw (er-gw-0)"] == 32769
    assert weights["VPN gateway vpn-gw (azure-gw-0)"] == 32768
    assert all(b.weight is None for b in load_plan("active-standby").sessions_of("vnet-router"))


def test_gateway_types_bring_their_own_sessions_strategy_and_labels():
    plan = load_plan("expressroute-failover")
    er, vpn = plan.scenario.gateways["er-gw"], plan.scenario.gateways["vpn-gw"]
    assert type_of(er) is GATEWAY_TYPES["expressroute"] and type_of(vpn) is GATEWAY_TYPES["vpn"]
    assert strategy_of(er).is_active("", []) and not strategy_of(er).hands_over
    assert strategy_of(vpn).hands_over
    # Each instance with each MSEE, over the backbone, at the lab's reading of "up to a minute".
    assert sorted(str(b.peer_address) for b in plan.sessions_of("er-gw-0") if b.carrier == "expressroute") == \
        ["10.254.0.2", "10.254.0.3"]
    assert all(b.hold_s == 60 for b in plan.sessions_of("msee-0") if b.peering is None)
    labels = type_of(er).labels(plan.scenario, "er-gw", er, "er-gw-0")
    assert labels["lab.gateway-type"] == "expressroute" and labels["lab.sku"] == "Standard"
    assert "lab.public-ip" in type_of(vpn).labels(plan.scenario, "vpn-gw", vpn, "azure-gw-0")
    assert {"onprem-ce", "msee-0", "msee-1", "er-gw-0", "er-gw-1", "vnet-router"} <= plan.multipath_nodes


def test_kinds_are_asked_for_capabilities_and_an_instance_must_be_its_types_kind():
    assert KINDS["msee"].able(Can.EDGE_CIRCUITS) and not KINDS["msee"].able(Can.BE_ZONAL)
    assert KINDS["expressroute-gateway-instance"].instance_of == "expressroute"
    _, s = load_scenario("expressroute-failover")
    swapped = s.model_copy(update={"gateways": {**s.gateways, "er-gw": s.gateways["er-gw"].model_copy(
        update={"instances": ["azure-gw-0", "er-gw-1"]})}})
    problems = check_scenario(swapped)
    assert ("gateways.er-gw.instances[0]: azure-gw-0 is a azure-gateway-instance, not an "
            "expressroute-gateway-instance") in problems
    bad_tunnel = s.model_copy(update={"tunnels": [s.tunnels[0].model_copy(update={"gateway": "er-gw"})]})
    assert any("tunnels end on a VPN gateway" in p for p in check_scenario(bad_tunnel))


@pytest.mark.parametrize("fault, target, story, nodes", [
    ("circuit-down", "circuit:er-gw", "path switch", ("msee-0", "msee-1")),
    ("circuit-down", "peering:er-primary", "path switch", ("onprem-ce", "msee-0")),
    ("msee-down", "msee-1", "path switch", ("msee-1",)),
    ("peering-location-down", "circuit:er-gw", "path switch", ("msee-0", "msee-1")),
    ("kill", "azure-gw-0", "hand-over", ("azure-gw-0",)),
    ("kill", "onprem-0", "withdrawal", ("onprem-0",)),
    ("kill", "gateway:vpn-gw", "withdrawal", ("azure-gw-0", "azure-gw-1")),
])
def test_each_fault_and_target_shape_gets_its_story(fault, target, story, nodes):
    plan = load_plan("expressroute-failover")
    spec = check_target(plan, FAULTS[fault], target)
    assert spec.nodes == nodes and story_for(plan, FAULTS[fault], spec).name == story


def test_a_gateway_lost_whole_with_no_other_beside_it_is_an_outage():
    plan = load_plan("active-active")
    spec = check_target(plan, FAULTS["kill"], "gateway:azure-gw")
    assert story_for(plan, FAULTS["kill"], spec).name == "outage"
    assert story_for(plan, FAULTS["kill"], resolve_target(plan, "azure-gw-0")).name == "withdrawal"


def test_circuit_faults_resolve_through_the_plan_and_refuse_what_they_cant_hit():
    plan = load_plan("expressroute-failover")
    assert FAULTS["circuit-down"].default_target(plan) == "circuit:er-gw"
    assert FAULTS["msee-down"].default_target(plan) == "msee-0"
    assert check_target(plan, FAULTS["circuit-down"], "circuit:er-gw").links == (
        ("onprem-ce", "er-primary"), ("onprem-ce", "er-secondary"))
    with pytest.raises(LabError, match="fault circuit-down cuts circuit links: --target 'onprem-0' is none"):
        check_target(plan, FAULTS["circuit-down"], "onprem-0")
    with pytest.raises(LabError, match="fault msee-down hits MSEEs: --target 'er-gw-0' is not one"):
        check_target(plan, FAULTS["msee-down"], "er-gw-0")
    with pytest.raises(LabError, match="takes a whole peering location"):
        check_target(plan, FAULTS["peering-location-down"], "msee-0")
    with pytest.raises(LabError, match="no peering 'er-tertiary'"):
        resolve_target(plan, "peering:er-tertiary")
    with pytest.raises(LabError, match="no ExpressRoute gateway 'vpn-gw'"):
        resolve_target(plan, "circuit:vpn-gw")
    assert FAULTS["circuit-down"].default_target(load_plan("active-standby")) is None


def test_the_path_story_reads_detection_and_each_sides_best_path_change():
    from lab.failover.metrics import Method, analyse_direction  # noqa: F401  (the traffic phase's inputs)
    from lab.model.daemon_events import BFD_DOWN, ROUTE, Event

    plan = load_plan("expressroute-failover", "fast")
    spec = check_target(plan, FAULTS["circuit-down"], "circuit:er-gw")
    story = story_for(plan, FAULTS["circuit-down"], spec)
    s = 1_000_000_000
    events = [Event(10 * s + s // 2, "frr", "onprem-ce", BFD_DOWN, "172.16.0.2 up -> down"),
              Event(10 * s + s * 6 // 10, "frr", "msee-0", ROUTE, "10.1.0.0/16 via 10.254.0.4"),  # not a chooser
              Event(10 * s + s * 7 // 10, "frr", "onprem-ce", ROUTE, "10.1.0.0/16 via 192.168.10.2"),
              Event(11 * s, "frr", "vnet-router", ROUTE, "192.168.10.0/24 via 10.1.255.4")]
    phases = {p.name: p.at_s for p in story.phases(events, 10 * s, 20 * s, [])}
    assert phases == {"fault injected": 0.0, "circuit detected down": 0.5, "best path changed on-premises": 0.7,
                      "best path changed in Azure": 1.0, "traffic restored": None}


def test_back_to_initial_waits_for_the_circuit_to_carry_again():
    from lab.run.status import RouteRow

    plan = load_plan("expressroute-failover")
    story = story_for(plan, FAULTS["circuit-down"], check_target(plan, FAULTS["circuit-down"], "circuit:er-gw"))

    class Status:
        routes = [RouteRow("onprem-ce", "10.1.0.0/16", ["192.168.10.2"]),
                  RouteRow("vnet-router", "192.168.10.0/24", ["10.1.255.12", "10.1.255.13"])]

    assert story.back_to_initial(Status()) == ["onprem-ce 10.1.0.0/16 carried by vpn, not ExpressRoute"]
    Status.routes[0] = RouteRow("onprem-ce", "10.1.0.0/16", ["172.16.0.2", "172.16.0.6"])
    assert story.back_to_initial(Status()) == []


def test_a_failed_msee_is_silenced_before_it_dies_both_at_once_for_a_peering_location():
    from tests.unit.test_faults import Recorder, wire

    plan = load_plan("expressroute-failover")
    fake = Recorder()
    FAULTS["peering-location-down"].inject(wire(plan, "circuit:er-gw", fake))
    steps = [entry[:2] for entry in fake.log]
    # Both cut off on every link before either is killed: no FIN from a dying kernel tells a peer
    # early, and no packet is forwarded by a namespace the engine has yet to tear down.
    assert steps == [("cut", "er-primary"), ("cut", "er-backbone"), ("cut", "er-secondary"), ("cut", "er-backbone"),
                     ("kill", "lab-expressroute-failover-msee-0"), ("kill", "lab-expressroute-failover-msee-1")]
    fake = Recorder()
    FAULTS["circuit-down"].inject(wire(plan, "peering:er-primary", fake))
    assert fake.log == [("cut", "er-primary")]


def test_without_bfd_the_window_waits_out_the_hold_timer_of_each_session_that_loses_its_peer():
    with_bfd, without = load_plan("expressroute-failover"), load_plan("expressroute-no-bfd")
    for plan, fault, target, wait in ((with_bfd, "circuit-down", "circuit:er-gw", 0),
                                      (without, "circuit-down", "circuit:er-gw", 180),
                                      (without, "circuit-down", "peering:er-primary", 180),
                                      # The gateway's MSEE sessions have no BFD: their 60 s hold decides.
                                      (with_bfd, "msee-down", "msee-0", 60),
                                      (with_bfd, "peering-location-down", "circuit:er-gw", 60)):
        spec = check_target(plan, FAULTS[fault], target)
        assert story_for(plan, FAULTS[fault], spec).noticed_within_s() == wait, (fault, target)


def test_a_route_over_a_tunnel_is_carried_by_the_vpn_whatever_its_next_hop_is_named():
    from lab.run.paths import carriers

    plan = load_plan("expressroute-failover")
    # A VPN device's route goes via the tunnel's routed link, not the gateway's BGP address.
    assert carriers(plan, "onprem-0", ["100.64.0.5 (vti0)"]) == ({"vpn"}, ["VPN tunnel onprem-0"])
    assert carriers(plan, "onprem-ce", ["172.16.0.2 (er-primary)"]) == ({"expressroute"},
                                                                         ["ExpressRoute, primary link"])
    assert carriers(plan, "onprem-ce", ["10.9.9.9"])[0] == {"?"}


def test_only_zone_down_takes_a_target_that_holds_no_node():
    plan = load_plan("zone-redundant")
    assert check_target(plan, FAULTS["zone-down"], "zone:3").nodes == ()
    with pytest.raises(LabError, match="--target 'zone:3' holds no node of this lab: fault kill would do nothing"):
        check_target(plan, FAULTS["kill"], "zone:3")
