"""The pure core: scenario resolution, tunnel addressing, timers, host checks, convergence."""
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.model.errors import HostConflictError
from lab.run.hostcheck import kernel_esp_support
from lab.plan.segments import bridge_prefix, plan_segments, split_host_subnets
from lab.render.configs import host_routes, retransmit_schedule
from lab.run.status import BgpRow, GatewayRow, LabStatus, NodeRow, TunnelRow
from lab.plan.load import builtin_profiles, builtin_scenarios, load_plan


@pytest.fixture(scope="module")
def plan():
    return load_plan("active-standby")


def test_builtins_are_listed():
    assert "active-standby" in builtin_scenarios()
    assert {"azure", "fast"} <= set(builtin_profiles())


def test_default_lab_avoids_the_ci_hosts_networks(plan):
    taken = [IPv4Network("192.0.2.0/24"), IPv4Network("203.0.113.0/24")]
    for net in plan.scenario.networks.values():
        assert not any(net.subnet.overlaps(t) for t in taken)
    for segment in plan.segments.values():
        assert not any(segment.subnet.overlaps(t) for t in taken)


def test_tunnel_gets_its_own_block_of_the_pool(plan):
    (t,) = plan.tunnels
    assert (t.gateway_endpoint, t.device_endpoint) == (IPv4Address("100.64.0.1"), IPv4Address("100.64.0.2"))
    assert (t.gateway_link_ip, t.device_link_ip) == (IPv4Address("100.64.0.5"), IPv4Address("100.64.0.6"))
    assert t.gateway_public_ip == IPv4Address("198.51.100.100")
    assert t.device_public_ip == IPv4Address("198.51.100.20")
    assert (t.vni, t.interface) == (100, "vti0")


def test_both_instances_carry_the_tunnel_but_the_host_does_not(plan):
    assert [t.name for t in plan.tunnels_of("azure-gw-0")] == ["onprem-0"]
    assert [t.name for t in plan.tunnels_of("azure-gw-1")] == ["onprem-0"]
    assert plan.tunnels_of("azure-vm") == []


def test_workload_hosts_route_remote_sites_via_their_router(plan):
    # The VNet's own space too: the GatewaySubnet is another subnet of it.
    assert host_routes(plan, "azure-vm") == [(IPv4Network("10.1.0.0/16"), IPv4Address("10.1.1.1")),
                                             (IPv4Network("192.168.10.0/24"), IPv4Address("10.1.1.1"))]
    assert host_routes(plan, "onprem-host") == [(IPv4Network("10.1.0.0/16"), IPv4Address("192.168.10.1"))]
    assert host_routes(plan, "vnet-router") == []


@pytest.mark.parametrize("dpd_timeout, expected", [(45, (5.0, 8)), (2, (0.5, 3)), (165, (5.0, 32))])
def test_retransmissions_last_the_dpd_timeout(dpd_timeout, expected):
    timeout, tries = retransmit_schedule(dpd_timeout)
    assert (timeout, tries) == expected
    assert timeout * (tries + 1) == pytest.approx(dpd_timeout)


def test_profiles_carry_targets_with_sources():
    azure = load_plan("active-standby", "azure").profile
    assert (azure.targets.planned_s.value, azure.targets.unplanned_s.value) == (5, 90)
    assert "a few seconds" in azure.targets.planned_s.source
    # Azure's other figure for planned maintenance is carried, with its own source, but not judged.
    assert [(f.value, "10 to 15 seconds" in f.source) for f in azure.targets.planned_s.also] == [(15, True)]
    assert "90 seconds" in azure.targets.unplanned_s.source
    assert azure.ike.dpd_timeout_s == 45 and azure.ike.ike_lifetime_s == 28800
    fast = load_plan("active-standby", "fast").profile
    assert fast.bfd is not None and fast.targets.unplanned_s.value == 2


POOL = IPv4Network("172.28.0.0/24")


def test_segments_skip_host_routes_and_other_docker_networks(plan):
    taken = [IPv4Network("172.28.0.0/29"), IPv4Network("172.28.0.16/28")]
    segments = plan_segments(plan.scenario, "x", taken, pool=POOL)
    subnets = [s.subnet for s in segments.values()]
    assert subnets == [IPv4Network(n) for n in ("172.28.0.8/29", "172.28.0.32/29", "172.28.0.40/29", "172.28.0.48/29")]
    assert all(not a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])


def test_every_node_of_a_network_gets_a_transport_address_off_the_bridges(plan):
    segment = plan_segments(plan.scenario, "x", [], pool=POOL)["internet"]
    assert set(segment.attachments) == {"azure-gw-0", "azure-gw-1", "onprem-0"}
    assert segment.bridge_address not in segment.attachments.values()
    assert all(a in segment.subnet for a in segment.attachments.values())


def test_a_repeated_up_keeps_the_labs_own_subnets(plan):
    own = {plan.network_name(n): n for n in plan.scenario.networks}
    existing = {name: [plan.segments[n].subnet] for name, n in own.items()}
    routes = [(plan.segments[n].subnet, f"{plan.bridge_prefix}-{i}") for i, n in enumerate(plan.scenario.networks)]
    taken, reuse = split_host_subnets(own, routes, {**existing, "bridge": [IPv4Network("172.17.0.0/16")]})
    assert taken == [IPv4Network("172.17.0.0/16")]
    again = plan_segments(plan.scenario, plan.lab, taken, reuse)
    assert again == plan.segments


def test_two_labs_get_different_bridges_and_subnets(plan):
    first = plan_segments(plan.scenario, "one", [], pool=POOL)
    second = plan_segments(plan.scenario, "two", [s.subnet for s in first.values()], pool=POOL)
    assert bridge_prefix("one") != bridge_prefix("two")
    assert not any(a.subnet.overlaps(b.subnet) for a in first.values() for b in second.values())
    assert all(len(s.bridge) <= 15 for s in first.values())


def test_a_full_transport_pool_is_one_line_naming_the_fix(plan):
    with pytest.raises(HostConflictError, match="LAB_TRANSPORT_POOL"):
        plan_segments(plan.scenario, "x", [IPv4Network("172.28.0.0/25")], pool=IPv4Network("172.28.0.0/25"))


def test_kernel_esp_detection_reads_the_engine_kernels_option():
    assert kernel_esp_support("not set", "/proc/config.gz").esp is False
    assert kernel_esp_support("m", "/proc/config.gz").esp is True
    assert kernel_esp_support("y", "/proc/config.gz").summary == "yes (/proc/config.gz: CONFIG_INET_ESP=y)"
    assert kernel_esp_support(None, "/proc/config.gz unreadable").esp is None


SHARED_IPS = {"azure-gw-0": "198.51.100.100", "azure-gw-1": "198.51.100.100"}


def converged_status(**changes) -> LabStatus:
    status = LabStatus(
        lab="t", scenario="active-standby", profile="azure", data_plane="userspace", host_kernel_esp="no",
        nodes=[NodeRow("azure-gw-0", "azure-gateway-instance", "running", "healthy"),
               NodeRow("azure-gw-1", "azure-gateway-instance", "running", "healthy"),
               NodeRow("vnet-router", "vnet-router", "running", "healthy"),
               NodeRow("onprem-0", "onprem-vpn-device", "running", "healthy")],
        tunnels=[TunnelRow("onprem-0", "onprem-0", "ESTABLISHED", "INSTALLED", "198.51.100.100", 1, 1, 1, 1),
                 TunnelRow("azure-gw-0", "onprem-0", "ESTABLISHED", "INSTALLED", "198.51.100.20", 1, 1, 1, 1)],
        bgp=[BgpRow("onprem-0", "10.1.255.30", "", "Established", 1),
             BgpRow("azure-gw-0", "10.10.255.1", "", "Established", 1),
             BgpRow("azure-gw-1", "10.10.255.1", "", "Active", 0),
             BgpRow("vnet-router", "10.1.255.4", "", "Established", 1),
             BgpRow("vnet-router", "10.1.255.5", "", "Established", 0)],
        gateways=[GatewayRow("azure-gw", "active-standby", SHARED_IPS, ["azure-gw-0"], ["azure-gw-0", "azure-gw-1"])],
        active_addresses=["10.1.255.4", "10.1.255.30", "198.51.100.100"],
        expected_tunnels={"onprem-0": ["onprem-0"], "azure-gw-0": ["onprem-0"], "azure-gw-1": ["onprem-0"]},
    )
    for key, value in changes.items():
        setattr(status, key, value)
    return status


def test_a_converged_lab_ignores_the_standbys_idle_sessions():
    assert converged_status().unconverged_reasons() == []


def test_convergence_needs_the_tunnel_and_one_active_instance():
    status = converged_status(
        tunnels=[TunnelRow("onprem-0", "onprem-0", "CONNECTING", "none", "198.51.100.100", 0, 0, 0, 0)],
        gateways=[GatewayRow("azure-gw", "active-standby", SHARED_IPS, [], ["azure-gw-0", "azure-gw-1"])],
    )
    reasons = status.unconverged_reasons()
    assert "gateway azure-gw has 0 active instances" in reasons
    assert "onprem-0 tunnel onprem-0: IKE CONNECTING, CHILD none" in reasons


def test_convergence_needs_prefixes_not_just_established_sessions():
    status = converged_status()
    status.bgp[0] = BgpRow("onprem-0", "10.1.255.30", "", "Established", 0)
    assert status.unconverged_reasons() == ["onprem-0 BGP 10.1.255.30: Established, 0 prefixes"]


def test_each_bgp_session_is_planned_from_both_ends(plan):
    """The planning pipeline's BGP stage: every session one end configures has its mirror at the other."""
    by_address = {}
    for name, node in plan.scenario.nodes.items():
        for address in [*node.links.values(), *([node.bgp_peer_ip] if node.bgp_peer_ip else [])]:
            by_address[address] = name
    gateway = plan.scenario.gateways["azure-gw"]
    for session in plan.bgp_sessions:
        if session.source == gateway.bgp_peer_ip.address:
            continue  # the instances share the gateway's BGP address: checked below
        peer = "azure-gw" if session.peer_address == gateway.bgp_peer_ip.address else by_address[session.peer_address]
        mirrors = [b for b in plan.bgp_sessions if b.peer_address == session.source and b.source == session.peer_address]
        assert mirrors or peer == "azure-gw", session
    for instance in gateway.instances:
        over_tunnels = [b for b in plan.sessions_of(instance) if b.tunnel]
        assert [b.tunnel for b in over_tunnels] == [t.name for t in plan.tunnels]
        assert all(b.multihop and b.static_via is not None for b in over_tunnels)
        (ibgp,) = [b for b in plan.sessions_of(instance) if not b.tunnel]
        assert ibgp.peer_asn == gateway.asn and ibgp.next_hop_self
    assert len(plan.sessions_of("vnet-router")) == len(gateway.instances)
    assert [b.tunnel for b in plan.sessions_of("onprem-0")] == [t.name for t in plan.tunnels]


def test_status_and_observation_find_daemons_through_the_kinds():
    from lab.model.kinds import KINDS, Can, able, runs_bgp, runs_ike

    assert {k.name for k in KINDS.values() if k.runs_ike} == {n for n in KINDS if runs_ike(n)}
    assert runs_ike("onprem-vpn-device") and runs_bgp("vnet-router") and not runs_ike("vnet-router")
    assert runs_bgp("msee") and not runs_ike("msee") and able("msee", Can.EDGE_CIRCUITS)
    assert not runs_ike("no-such-kind") and not able("no-such-kind", Can.START_TUNNELS)
    # Every capability is some kind's: none is declared and never used.
    assert set(Can) == {c for k in KINDS.values() for c in k.can}


def test_a_kind_validates_its_own_fields():
    from lab.model.kinds import KINDS

    msee = KINDS["msee"]
    assert msee.field_problems("msee-0", {}) == [] and msee.default("asn") == 12076
    (wrong,) = msee.field_problems("msee-0", {"asn": 65001})
    assert wrong.startswith("nodes.msee-0.asn: an MSEE's ASN is Microsoft's 12076")
    (extra,) = msee.field_problems("msee-0", {"router": "10.0.0.1"})
    assert extra == "nodes.msee-0.router: a msee has no router"
    device = KINDS["onprem-vpn-device"]
    assert sorted(device.field_problems("d", {})) == ["nodes.d.address_space: required for a onprem-vpn-device",
                                                       "nodes.d.asn: required for a onprem-vpn-device",
                                                       "nodes.d.bgp_peer_ip: required for a onprem-vpn-device"]


def test_every_kind_names_renderers_the_render_table_holds():
    from lab.model.kinds import KINDS
    from lab.render.configs import RENDERERS

    named = {key for kind in KINDS.values() for key in kind.renderers}
    assert named == set(RENDERERS)   # none unknown (a KeyError at `up`), none unused


def test_a_gateway_takes_no_more_tunnels_than_its_sku_allows():
    from lab.model.schema import Scenario
    from lab.plan.checks import check_scenario
    from lab.plan.load import load_scenario

    _, s = load_scenario("active-active")
    raw = s.model_dump(mode="json")
    raw["gateways"]["azure-gw"]["sku"] = "Basic"
    # Six connections to an active-active gateway are 12 tunnels (one per instance each).
    raw["tunnels"] = [{"name": f"site-{i}", "device": "onprem-0", "gateway": "azure-gw"} for i in range(6)]
    assert "gateways.azure-gw.sku: Basic takes 10 site-to-site tunnels, 12 are planned" in " ".join(
        check_scenario(Scenario.model_validate(raw)))
    raw["gateways"]["azure-gw"]["sku"] = "VpnGw1"
    assert not [p for p in check_scenario(Scenario.model_validate(raw)) if "sku" in p]


def test_azure_reserved_asns_are_data_with_their_source():
    from lab.model.azure import azure_rules

    reserved = azure_rules().reserved_asns
    assert all(reserved.reserved(a) for a in (8074, 12076, 65515, 65518, 23456, 64500, 65535, 65551))
    assert not any(reserved.reserved(a) for a in (65010, 65020, 65516, 65521, 65552, 64512))
    assert "IANA" in reserved.source


def test_generated_keys_are_ones_azure_takes_and_a_hand_set_key_azure_refuses_is_named(tmp_path):
    import json

    from lab.model.azure import azure_rules
    from lab.run.deploy import load_or_create_psks
    from lab.model.errors import LabError

    keys = load_or_create_psks(tmp_path, ["onprem-0", "onprem-1"])
    assert all(len(k) == 32 and k.isalnum() and azure_rules().psk.problem(k) is None for k in keys.values())
    assert load_or_create_psks(tmp_path, ["onprem-0", "onprem-1"]) == keys     # kept across `up`s
    assert azure_rules().psk.problem("a" * 129) == "129 characters, Azure takes 1 to 128"
    (tmp_path / "psk.json").write_text(json.dumps({"onprem-0": "my key-with~"}))
    with pytest.raises(LabError, match=r"the key of tunnel onprem-0 is not one Azure takes \(contains ' ', '-', '~'"):
        load_or_create_psks(tmp_path, ["onprem-0"])


def all_pairs_overlaps(s) -> list[str]:
    """The overlap check as it was first written: every pair, in file order."""
    spaces = [(f"networks.{n}.subnet", net.subnet) for n, net in s.networks.items()] + [("tunnel_pool", s.tunnel_pool)]
    return [f"{fb}: {b} overlaps {fa} ({a})" for i, (fa, a) in enumerate(spaces) for fb, b in spaces[i + 1:]
            if a.overlaps(b)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(20, 26)), min_size=1, max_size=12),
       st.tuples(st.integers(0, 255), st.integers(20, 26)))
def test_the_overlap_sweep_says_what_every_pair_said(networks, pool):
    def subnet(third_octet, prefixlen):
        return str(IPv4Network(f"10.0.{third_octet}.0/{prefixlen}", strict=False))
    from lab.model.schema import Scenario
    from lab.plan.checks import _check_overlaps
    s = Scenario.model_validate({"name": "prop", "description": "-", "tunnel_pool": subnet(*pool),
                                 "networks": {f"n{i}": {"subnet": subnet(*n)} for i, n in enumerate(networks)},
                                 "nodes": {"host": {"kind": "workload-host", "links": {"n0": "10.0.0.1"}}}})
    every_pair, swept = all_pairs_overlaps(s), _check_overlaps(s)
    # Each block inside others is said once, with the innermost: a subset, in the same order, naming the same spaces.
    assert [m for m in every_pair if m in swept] == swept
    assert {m.split(":")[0] for m in swept} | {m.split("overlaps ")[1].split(" ")[0] for m in swept} == \
        {m.split(":")[0] for m in every_pair} | {m.split("overlaps ")[1].split(" ")[0] for m in every_pair}
    if len(every_pair) <= 1:
        assert swept == every_pair
