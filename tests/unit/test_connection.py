"""`lab connection`: what a person's own device needs, from the plan; and a running lab's plan."""
import json
from types import SimpleNamespace

import pytest
from rich.console import Console

from lab.run import lifecycle
from lab.render.connection import device_connections
from lab.render.deploy_plan import plan_deploy
from lab.run.deploy import load_plan_source, save_plan_source
from lab.model.errors import LabError
from lab.model.schema import IpsecPolicy
from lab.run.ports import ContainerInfo
from lab.ui.status_view import render_connections
from lab.plan.load import load_plan
from lab.plan.resolve import resolve


def _text(views) -> str:
    console = Console(width=200, record=True)
    console.print(render_connections(views))
    return console.export_text()


def test_every_tunnel_gets_azures_side_and_the_labs_extras(tmp_path):
    plan = load_plan("active-active", lab="t")
    views = device_connections(plan, tmp_path)
    assert [v.tunnel for v in views] == ["onprem-0-0", "onprem-0-1"]
    first = views[0]
    tunnel = plan.tunnels[0]
    assert (first.gateway_public_ip, first.device_public_ip) == (str(tunnel.gateway_public_ip), str(tunnel.device_public_ip))
    assert (first.device_ts, first.gateway_ts) == (f"{tunnel.device_endpoint}/32", f"{tunnel.gateway_endpoint}/32")
    assert first.vxlan_vni == tunnel.vni and first.gateway_asn == 65515
    assert first.suggested_ike == "aes256-sha256-modp1024" and first.suggested_esp == "aes256gcm16"
    assert first.policy.startswith("Azure default")


def test_apipa_sessions_say_the_device_must_open_them(tmp_path):
    views = device_connections(load_plan("dual-redundancy", lab="t"), tmp_path, "onprem-1-0")
    assert not views[0].gateway_opens_bgp and views[0].gateway_bgp_ip == "169.254.21.1"
    assert "the device must" in _text(views)


def test_a_custom_policy_is_what_both_sides_use(tmp_path):
    plan = load_plan("active-standby", lab="t")
    policy = IpsecPolicy(ike_encryption="AES256", ike_integrity="SHA256", dh_group="DHGroup14",
                         ipsec_encryption="GCMAES256", ipsec_integrity="GCMAES256", pfs_group="PFS2048")
    tunnels = [plan.scenario.tunnels[0].model_copy(update={"ipsec_policy": policy})]
    custom = resolve(plan.scenario.model_copy(update={"tunnels": tunnels}), plan.profile, "t")
    view = device_connections(custom, tmp_path)[0]
    assert (view.gateway_ike, view.gateway_esp) == ("aes256-sha256-modp2048", "aes256gcm16-modp2048")
    assert view.policy.startswith("custom: IKE AES256/SHA256/DHGroup14, IPsec GCMAES256/GCMAES256/PFS2048")


def test_the_shared_key_is_never_shown_only_where_it_is(tmp_path):
    plan = load_plan("active-standby", lab="t")
    key = "NeverPrintThisKey0123456789abcdef"
    (tmp_path / "psk.json").write_text(json.dumps({"onprem-0": key}))
    views = device_connections(plan, tmp_path)
    shown = _text(views) + json.dumps([v.as_dict() for v in views])
    assert key not in shown
    assert str(tmp_path / "psk.json") in shown


def test_an_unknown_tunnel_is_one_line(tmp_path):
    with pytest.raises(LabError, match=r"^no tunnel named 'nope' \(tunnels: onprem-0\)$"):
        device_connections(load_plan("active-standby", lab="t"), tmp_path, "nope")


class Running:
    """An engine that shows a lab's containers, labelled as `up` labels them."""

    def __init__(self, plan):
        self.specs = plan_deploy(plan, {t.name: "k" for t in plan.tunnels}).nodes

    def containers(self, labels):
        return [ContainerInfo(s.name, s.hostname, s.labels["lab.kind"], "running", "healthy", 1, "h", s.labels)
                for s in self.specs]


def test_a_lab_built_from_a_file_is_rebuilt_from_what_up_saved(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    built_in = load_plan("active-standby", lab="mine")
    # A file of the same scenario name, with a custom policy and another SKU.
    policy = IpsecPolicy(ike_encryption="AES128", ike_integrity="SHA1", dh_group="ECP256",
                         ipsec_encryption="AES128", ipsec_integrity="SHA1", pfs_group="None")
    tunnels = [built_in.scenario.tunnels[0].model_copy(update={"ipsec_policy": policy})]
    gateways = {n: g.model_copy(update={"sku": "VpnGw2"}) for n, g in built_in.scenario.gateways.items()}
    from_file = resolve(built_in.scenario.model_copy(update={"tunnels": tunnels, "gateways": gateways}),
                        built_in.profile, "mine")
    adapters = SimpleNamespace(runtime=Running(from_file))
    # Without the saved source, only the labels' scenario name is known: the built-in.
    assert lifecycle.running_plan("mine", adapters, "active-standby").tunnels[0].ipsec_policy is None
    save_plan_source(tmp_path / "mine", from_file)
    assert (tmp_path / "mine" / "plan-source.json").stat().st_mode & 0o777 == 0o600
    again = lifecycle.running_plan("mine", adapters, "active-standby")
    assert again.tunnels[0].ipsec_policy == policy and again.scenario.gateways["azure-gw"].sku == "VpnGw2"
    assert load_plan_source(tmp_path / "other") is None


def test_a_lab_that_is_not_running_has_no_plan(tmp_path):
    adapters = SimpleNamespace(runtime=SimpleNamespace(containers=lambda labels: []))
    with pytest.raises(LabError, match="lab gone is not running"):
        lifecycle.running_plan("gone", adapters, "active-standby")


def test_a_saved_source_this_version_cant_read_falls_back_to_the_labels(tmp_path):
    (tmp_path / "plan-source.json").write_text(json.dumps({"scenario": {"name": "x"}, "profile": {}}))
    assert load_plan_source(tmp_path) is None
    (tmp_path / "plan-source.json").write_text("not json")
    assert load_plan_source(tmp_path) is None
