"""Each redundancy strategy against plain values: addressing, tunnels, VRRP, what settles a gateway,
how an instance leaves, and how the plan, the status and a failover's phases follow the mode."""
from ipaddress import IPv4Address

import pytest

from lab.model.daemon_events import Event
from lab.failover.stories import withdrawal_of
from lab.failover.faults import resolve_target
from lab.plan.redundancy import STRATEGIES, strategy_for
from lab.plan.redundancy.base import GatewayView
from lab.run.status import BgpRow, GatewayRow, LabStatus, NodeRow, TunnelRow, VrrpRow
from lab.failover.metrics import withdrawal_breakdown
from lab.plan.checks import check_scenario
from lab.plan.load import load_plan, load_scenario


class Leaving:
    """A fake fault target: records what a strategy asks of it."""

    def __init__(self):
        self.asked = []

    def vrrp(self, node, action):
        self.asked.append((node, action))


def test_a_vpn_gateway_mode_is_one_of_the_registered_strategies():
    from lab.plan.gateway_types import GATEWAY_TYPES

    assert GATEWAY_TYPES["vpn"].modes() == list(STRATEGIES)
    _, s = load_scenario("active-standby")
    wrong = s.model_copy(update={"gateways": {"azure-gw": s.gateways["azure-gw"].model_copy(update={"mode": "x"})}})
    assert "gateways.azure-gw.mode: unknown mode 'x' (a VPN gateway's: active-standby, active-active)" in \
        check_scenario(wrong)


def test_active_standby_shares_one_address_and_leaves_by_vrrp():
    _, s = load_scenario("active-standby")
    gw = s.gateways["azure-gw"]
    strategy = strategy_for(gw.mode)
    addresses = strategy.addresses(s, gw)
    assert {a.public_ip for a in addresses.values()} == {IPv4Address("198.51.100.100")}
    assert strategy.shares_tunnels and strategy.has_standbys and strategy.hands_over and not strategy.multipath
    group = strategy.vrrp_group(s, "azure-gw", gw, 51)
    assert group.routers == ("azure-gw-0", "azure-gw-1") and group.moves_tunnels
    target = Leaving()
    assert strategy.release(target, "azure-gw-0") and target.asked == [("azure-gw-0", "stop")]
    view = GatewayView("azure-gw", ["azure-gw-0", "azure-gw-1"], ["azure-gw-0"], {"azure-gw-0": 1, "azure-gw-1": 1})
    assert strategy.unsettled(view) == ["standby azure-gw-1 still holds a tunnel"]
    assert strategy.unsettled(GatewayView("azure-gw", ["azure-gw-0", "azure-gw-1"], [], {})) == [
        "gateway azure-gw has 0 active instances"]


def test_active_active_gives_each_instance_its_own_addresses_and_needs_both_live():
    _, s = load_scenario("dual-redundancy")
    gw = s.gateways["azure-gw"]
    strategy = strategy_for(gw.mode)
    addresses = strategy.addresses(s, gw)
    assert [str(addresses[i].public_ip) for i in gw.instances] == ["198.51.100.10", "198.51.100.11"]
    assert [str(addresses[i].bgp_ip) for i in gw.instances] == ["169.254.21.1", "169.254.22.1"]
    assert all(a.bgp_on_loopback for a in addresses.values())
    assert strategy.vrrp_group(s, "azure-gw", gw, 51) is None and strategy.multipath
    target = Leaving()
    assert strategy.release(target, "azure-gw-0") == "" and target.asked == []
    view = GatewayView("azure-gw", ["azure-gw-0", "azure-gw-1"], ["azure-gw-1"], {})
    assert strategy.unsettled(view) == ["gateway azure-gw: instance azure-gw-0 is not live"]
    _, plain = load_scenario("active-active")
    own = strategy.addresses(plain, plain.gateways["azure-gw"])
    assert str(own["azure-gw-1"].bgp_ip) == "10.1.255.5" and not own["azure-gw-1"].bgp_on_loopback


def test_the_plan_follows_the_mode_one_tunnel_and_session_per_device_and_instance():
    plan = load_plan("dual-redundancy")
    assert [(t.name, t.device, t.instances) for t in plan.tunnels] == [
        ("onprem-0-0", "onprem-0", ("azure-gw-0",)), ("onprem-0-1", "onprem-0", ("azure-gw-1",)),
        ("onprem-1-0", "onprem-1", ("azure-gw-0",)), ("onprem-1-1", "onprem-1", ("azure-gw-1",))]
    over_tunnels = [b for b in plan.bgp_sessions if b.tunnel]
    assert len(over_tunnels) == 8    # 4 sessions, each planned from both ends
    # With APIPA the gateway waits for the devices to open every session.
    assert all(b.passive for b in over_tunnels if b.node.startswith("azure-gw"))
    assert not any(b.passive for b in over_tunnels if b.node.startswith("onprem"))
    assert [g.name for g in plan.vrrp_groups] == ["onprem-lan"]
    assert plan.multipath_nodes == {"vnet-router", "azure-gw-0", "azure-gw-1", "onprem-0", "onprem-1"}
    single = load_plan("active-standby")
    assert [t.instances for t in single.tunnels] == [("azure-gw-0", "azure-gw-1")]
    assert not single.multipath_nodes and [g.name for g in single.vrrp_groups] == ["azure-gw"]


@pytest.mark.parametrize("change, message", [
    (lambda gw: gw.update(public_ip={"network": "internet", "address": "198.51.100.100"}),
     "gateways.azure-gw.public_ip.address: an active-active gateway has no shared address"),
    (lambda gw: gw.update(apipa_bgp_ips=["169.254.23.1", "169.254.22.1"]),
     "gateways.azure-gw.apipa_bgp_ips\\[0\\]: 169.254.23.1 is outside 169.254.21.0 - 169.254.22.255"),
    (lambda gw: gw.update(apipa_bgp_ips=["169.254.21.1"]),
     "gateways.azure-gw.apipa_bgp_ips: one per instance \\(2\\), 1 given"),
    (lambda gw: gw.update(mode="active-standby"),
     "gateways.azure-gw.public_ip.address: required for an active-standby gateway"),
])
def test_a_gateway_that_does_not_fit_its_mode_is_refused_naming_the_field(change, message):
    import re

    _, s = load_scenario("dual-redundancy")
    raw = s.model_dump(mode="json")
    change(raw["gateways"]["azure-gw"])
    from lab.model.schema import Scenario
    problems = check_scenario(Scenario.model_validate(raw))
    assert any(re.search(message, p) for p in problems), problems


def test_a_first_hop_router_must_be_a_device_on_that_lan():
    _, s = load_scenario("dual-redundancy")
    raw = s.model_dump(mode="json")
    raw["first_hop"]["onprem-lan"]["routers"] = ["onprem-0", "azure-gw-0"]
    from lab.model.schema import Scenario
    problems = check_scenario(Scenario.model_validate(raw))
    assert "first_hop.onprem-lan.routers[1]: 'azure-gw-0' is not an onprem-vpn-device node" in problems


def active_active_status(**changes) -> LabStatus:
    ips = {"azure-gw-0": "198.51.100.10", "azure-gw-1": "198.51.100.11"}
    status = LabStatus(
        lab="t", scenario="active-active", profile="fast", data_plane="userspace", host_kernel_esp="no",
        nodes=[NodeRow(n, k, "running", "healthy") for n, k in (
            ("azure-gw-0", "azure-gateway-instance"), ("azure-gw-1", "azure-gateway-instance"),
            ("vnet-router", "vnet-router"), ("onprem-0", "onprem-vpn-device"))],
        tunnels=[TunnelRow("onprem-0", "onprem-0-0", "ESTABLISHED", "INSTALLED", "198.51.100.10", 1, 1, 1, 1),
                 TunnelRow("onprem-0", "onprem-0-1", "ESTABLISHED", "INSTALLED", "198.51.100.11", 1, 1, 1, 1),
                 TunnelRow("azure-gw-0", "onprem-0-0", "ESTABLISHED", "INSTALLED", "198.51.100.20", 1, 1, 1, 1),
                 TunnelRow("azure-gw-1", "onprem-0-1", "ESTABLISHED", "INSTALLED", "198.51.100.20", 1, 1, 1, 1)],
        bgp=[BgpRow("onprem-0", "10.1.255.4", "", "Established", 1),
             BgpRow("onprem-0", "10.1.255.5", "", "Established", 1),
             BgpRow("vnet-router", "10.1.255.4", "", "Established", 1),
             BgpRow("vnet-router", "10.1.255.5", "", "Established", 1)],
        gateways=[GatewayRow("azure-gw", "active-active", ips, ["azure-gw-0", "azure-gw-1"],
                             ["azure-gw-0", "azure-gw-1"])],
        active_addresses=["10.1.255.4", "10.1.255.5", "198.51.100.10", "198.51.100.11"],
        expected_tunnels={"onprem-0": ["onprem-0-0", "onprem-0-1"], "azure-gw-0": ["onprem-0-0"],
                          "azure-gw-1": ["onprem-0-1"]},
    )
    for key, value in changes.items():
        setattr(status, key, value)
    return status


def test_an_active_active_lab_settles_only_with_every_tunnel_of_the_mesh_up():
    assert active_active_status().unconverged_reasons() == []
    status = active_active_status()
    status.tunnels = [t for t in status.tunnels if t.tunnel != "onprem-0-1"]
    assert status.unconverged_reasons() == ["onprem-0 tunnel onprem-0-1: no IKE_SA",
                                            "azure-gw-1 tunnel onprem-0-1: no IKE_SA"]
    status = active_active_status()
    status.tunnels.append(TunnelRow("onprem-0", "onprem-0-0", "CONNECTING", "none", "198.51.100.10", 0, 0, 0, 0))
    assert status.unconverged_reasons() == ["onprem-0 tunnel onprem-0-0: IKE CONNECTING, CHILD none"]
    status = active_active_status(vrrp=[VrrpRow("onprem-lan", "192.168.10.1", [], ["onprem-0", "onprem-1"])])
    assert status.unconverged_reasons() == ["VRRP group onprem-lan (192.168.10.1) held by 0 routers"]


def test_a_withdrawal_is_read_from_the_peers_of_the_lost_instance_the_slowest_deciding():
    plan = load_plan("dual-redundancy", "fast")
    w = withdrawal_of(plan, resolve_target(plan, "azure-gw-0"))
    assert dict(w.tunnels) == {"onprem-0-0": ("onprem-0",), "onprem-1-0": ("onprem-1",)}
    views = {label: set(v) for label, v in w.sessions}
    assert views["onprem-0-0"] == {("onprem-0", "169.254.21.1")}
    assert set(views) == {"onprem-0-0", "onprem-1-0"}
    t0 = 1_000_000_000
    events = [Event(t0, "fault", "azure-gw-0", "fault"),
              Event(t0 + 20_000_000, "frr", "vnet-router", "bgp-down", "10.1.255.4 Peer closed the session"),
              Event(t0 + 900_000_000, "frr", "onprem-0", "bfd-down", "169.254.21.1 up -> down"),
              Event(t0 + 950_000_000, "frr", "onprem-1", "bgp-down", "169.254.21.1 BFD down received"),
              Event(t0 + 2_000_000_000, "vici", "onprem-0", "child-down", "onprem-0-0 via 198.51.100.10"),
              Event(t0 + 2_100_000_000, "vici", "onprem-1", "ike-down", "onprem-1-0 198.51.100.10")]
    phases = {p.name: p for p in withdrawal_breakdown(events, t0, t0 + 10 * 10**9, w, [])}
    assert phases["detected"].at_s == 0.02
    assert phases["BGP down at its peers"].at_s == 0.95
    assert phases["tunnels down at its peers"].at_s == 2.1
    assert phases["BGP down at its peers"].out_of_order   # BFD went before DPD
    device = withdrawal_of(plan, resolve_target(plan, "onprem-0"))
    assert device.first_hop_routers == ("onprem-1",)
    assert dict(device.tunnels) == {"onprem-0-0": ("azure-gw-0",), "onprem-0-1": ("azure-gw-1",)}


class FakeLab:
    """A running lab as the engine and the agents would show it, built from a plan's real labels:
    every planned tunnel up, every session Established, the devices' ESP counters growing."""

    def __init__(self, plan, holders):
        from lab.render.deploy_plan import plan_deploy
        self.plan = plan
        self.specs = {s.hostname: s for s in plan_deploy(plan, {t.name: "k" for t in plan.tunnels}).nodes}
        self.holders = holders     # shared address -> the node holding it
        self.reads = 0

    def containers(self, labels):
        from lab.run.ports import ContainerInfo
        return [ContainerInfo(s.name, n, s.labels["lab.kind"], "running", "healthy", 1, "h", s.labels)
                for n, s in self.specs.items()]

    def ike_for(self, c):
        from lab.run.ports import ChildSaState, IkeSaState
        lab, node = self, c.node

        class Ike:
            def list_sas(self):
                lab.reads += 1
                grown = 100 * lab.reads
                return [IkeSaState(t.name, "ESTABLISHED", "l", "r", 1, [ChildSaState(
                    t.name, "INSTALLED", grown, grown, 100 * grown, 100 * grown, [], [])])
                    for t in lab.plan.tunnels_of(node)]
        return Ike()

    def routes_for(self, c):
        from lab.run.ports import BgpPeerState
        sessions = self.plan.sessions_of(c.node)

        class Routes:
            def bgp_peers(self):
                return [BgpPeerState(str(b.peer_address), b.peer_asn, "Established", 1, 1, b.description)
                        for b in sessions]

            def bgp_next_hops(self):
                return {"10.1.0.0/16": ["100.64.0.5 (vti0)", "100.64.0.21 (vti1)"]}

            def bgp_paths(self, prefix):
                return []
        return Routes()

    def links_for(self, c):
        lab, node = self, c.node

        class Links:
            def kernel_option(self, option):
                return "not set", "/proc/config.gz"

            def link_kinds(self):
                return {"ipsec0": "tun"}

            def addresses(self):
                own = [str(a) for a in lab.plan.scenario.nodes[node].links.values()]
                return {"all": own + [a for a, holder in lab.holders.items() if holder == node]}
        return Links()


def test_status_reads_modes_vrrp_holders_expected_tunnels_and_esp_rates_from_the_labels():
    from lab.run.status import collect_status

    plan = load_plan("dual-redundancy", lab="t")
    fake = FakeLab(plan, {"192.168.10.1": "onprem-0"})
    status = collect_status("t", fake, fake.ike_for, fake.routes_for, fake.links_for, rate_window_s=0.05)
    assert status.converged, status.unconverged_reasons()
    (gw,) = status.gateways
    assert (gw.mode, gw.active, gw.public_ips["azure-gw-1"]) == ("active-active", ["azure-gw-0", "azure-gw-1"],
                                                                 "198.51.100.11")
    assert [(g.group, g.holders, sorted(g.routers)) for g in status.vrrp] == [
        ("onprem-lan", ["onprem-0"], ["onprem-0", "onprem-1"])]
    assert status.expected_tunnels["onprem-1"] == ["onprem-1-0", "onprem-1-1"]
    assert all(t.carrying and t.pps_in > 0 and t.bps_out > 0 for t in status.tunnels)
    assert status.rate_window_s >= 0.05
    assert ("onprem-0", "10.1.0.0/16", 2) in {(r.node, r.prefix, len(r.next_hops)) for r in status.routes}
    # Neither router holding the LAN's address: not converged, and said so.
    fake.holders = {}
    status = collect_status("t", fake, fake.ike_for, fake.routes_for, fake.links_for)
    assert status.unconverged_reasons() == ["VRRP group onprem-lan (192.168.10.1) held by 0 routers"]
    assert all(t.pps_in is None and t.carrying is None for t in status.tunnels)


def test_an_active_standby_gateway_is_active_where_its_shared_address_is():
    from lab.run.status import collect_status

    plan = load_plan("active-standby", lab="t")
    fake = FakeLab(plan, {"198.51.100.100": "azure-gw-1", "10.1.255.30": "azure-gw-1"})
    status = collect_status("t", fake, fake.ike_for, fake.routes_for, fake.links_for)
    assert status.active_instances == ["azure-gw-1"]
    # The fake gives the standby the same SAs: a standby holding a tunnel is not settled.
    assert "standby azure-gw-0 still holds a tunnel" in status.unconverged_reasons()


def test_addresses_go_back_only_to_a_router_whose_sessions_are_up(monkeypatch):
    from lab.failover import runner as experiment

    rows: list[BgpRow] = []
    monkeypatch.setattr(experiment, "read_status", lambda lab, adapters: active_active_status(bgp=rows))
    standby = load_plan("active-standby")
    (gateway_group,) = standby.vrrp_groups
    # The instance taking the shared IP back needs its VNet session; its tunnel session comes with the IP.
    assert experiment.sessions_not_up(standby, None, gateway_group, ["azure-gw-0"]) == [
        "azure-gw-0 BGP 10.1.255.10 not Established"]
    rows.append(BgpRow("azure-gw-0", "10.1.255.10", "", "Established", 1))
    assert experiment.sessions_not_up(standby, None, gateway_group, ["azure-gw-0"]) == []
    dual = load_plan("dual-redundancy")
    (lan,) = dual.vrrp_groups
    # A device taking the LAN's address back needs the sessions over both its tunnels first.
    assert experiment.sessions_not_up(dual, None, lan, ["onprem-0"]) == [
        "onprem-0 BGP 169.254.21.1 not Established", "onprem-0 BGP 169.254.22.1 not Established"]
