"""Azure's IPsec/IKE policies as strongSwan proposals, and the rules Azure applies to them."""
from pathlib import Path

import pytest
import yaml

from lab.model.azure import azure_rules
from lab.model.errors import TopologyError
from lab.model.ipsec import device_proposals, esp_proposal, gateway_proposals, ike_proposal
from lab.model.schema import IpsecPolicy
from lab.render.configs import render_strongswan
from lab.plan.load import load_plan, load_profile
from lab.plan.resolve import resolve

CUSTOM = dict(ike_encryption="GCMAES256", ike_integrity="SHA384", dh_group="DHGroup24",
              ipsec_encryption="AES256", ipsec_integrity="SHA256", pfs_group="PFS2048")


def test_default_ike_offer_is_azures_six_combinations_all_dh_group_2():
    offered = gateway_proposals(None).ike.split(",")
    assert offered == ["aes256-sha1-modp1024", "aes256-sha256-modp1024", "aes128-sha1-modp1024",
                       "aes128-sha256-modp1024", "3des-sha1-modp1024", "3des-sha256-modp1024"]
    assert not any("modp2048" in p for p in offered)   # a default Azure gateway never uses DH14 for IKE


def test_default_esp_offers_azures_initiator_list_first_without_pfs():
    esp = gateway_proposals(None).esp.split(",")
    # Its first proposal says "no key exchange": a rekey the gateway starts carries no PFS, as Azure's.
    assert esp[:6] == ["aes256gcm16-none", "aes256-sha1", "3des-sha1", "aes256-sha256", "aes128-sha1", "3des-sha256"]


def test_default_esp_accepts_every_responder_row_azure_lists():
    default = azure_rules().default_policy
    esp = set(gateway_proposals(None).esp.split(","))
    assert len(default.esp_initiator) + len(default.esp_responder) == 26
    for row in default.esp_responder:
        assert esp_proposal(*row) in esp, row
    # PFS groups 1, 2, 14 and 24, and single DES, only as responder.
    for accepted in ("aes256-sha256-modp2048", "aes256-sha1-modp2048s256", "aes128-sha1-modp768", "des-sha1"):
        assert accepted in esp
    # GCM only without PFS.
    assert not any(p.startswith("aes256gcm16-modp") for p in esp)


def test_lab_devices_use_azures_recommended_set():
    assert device_proposals(None) == device_proposals(None)
    proposals = device_proposals(None)
    assert (proposals.ike, proposals.esp, proposals.pfs) == ("aes256-sha256-modp1024", "aes256gcm16", False)


def test_a_custom_policy_is_the_only_proposal_both_ends_use():
    policy = IpsecPolicy(**CUSTOM)
    for side in (gateway_proposals, device_proposals):
        proposals = side(policy)
        # GCM for IKE: Azure's integrity is the PRF alone.
        assert (proposals.ike, proposals.esp, proposals.pfs) == (
            "aes256gcm16-prfsha384-modp2048s256", "aes256-sha256-modp2048", True)


@pytest.mark.parametrize("azure, strongswan", [
    (("AES128", "MD5", "DHGroup1"), "aes128-md5-modp768"),
    (("GCMAES128", "SHA256", "ECP256"), "aes128gcm16-prfsha256-ecp256"),
    (("AES192", "SHA1", "DHGroup2048"), "aes192-sha1-modp2048"),
    (("AES256", "SHA384", "ECP384"), "aes256-sha384-ecp384"),
])
def test_ike_names_translate(azure, strongswan):
    assert ike_proposal(*azure) == strongswan


@pytest.mark.parametrize("azure, strongswan", [
    (("GCMAES192", "GCMAES192", "None"), "aes192gcm16"),
    (("None", "SHA256", "None"), "null-sha256"),
    (("DES3", "MD5", "PFS1"), "3des-md5-modp768"),
    (("AES128", "SHA1", "PFS24"), "aes128-sha1-modp2048s256"),
])
def test_esp_names_translate(azure, strongswan):
    assert esp_proposal(*azure) == strongswan


def test_every_value_azure_allows_translates():
    rule = azure_rules().custom_policy
    for encryption in rule.ike_encryption:
        for integrity in rule.ike_integrity:
            for group in (g for g in rule.dh_group if g != "None"):
                assert ike_proposal(encryption, integrity, group)
    for encryption in rule.ipsec_encryption:
        integrities = [encryption] if encryption.startswith("GCM") else [i for i in rule.ipsec_integrity if not i.startswith("GCM")]
        for integrity in integrities:
            for group in rule.pfs_group:
                assert esp_proposal(encryption, integrity, group)


def _with_policy(policy: dict, sku: str = "VpnGw1"):
    plan = load_plan("active-standby", "azure", lab="t")
    scenario = plan.scenario
    tunnels = [scenario.tunnels[0].model_copy(update={"ipsec_policy": IpsecPolicy(**policy)})]
    gateways = {n: g.model_copy(update={"sku": sku}) for n, g in scenario.gateways.items()}
    return scenario.model_copy(update={"tunnels": tunnels, "gateways": gateways})


def test_a_custom_policy_and_its_lifetimes_reach_both_ends_configs():
    scenario = _with_policy(dict(CUSTOM, sa_lifetime_s=3600, sa_data_kb=2048))
    plan = resolve(scenario, load_profile("azure"), lab="t")
    for node in ("azure-gw-0", "onprem-0"):
        conf = render_strongswan(plan, node)["strongswan/swanctl.conf"]
        assert "proposals = aes256gcm16-prfsha384-modp2048s256" in conf
        assert "esp_proposals = aes256-sha256-modp2048" in conf
        assert "rekey_time = 3600s" in conf and f"life_bytes = {2048 * 1024}" in conf
        assert "rekey_time = 28800s" in conf   # the IKE SA's lifetime stays Azure's fixed 28,800 s


def test_every_policy_problem_is_named_at_once():
    from lab.plan.checks import check_scenario
    bad = dict(CUSTOM, ike_integrity="SHA512", pfs_group="PFS14", sa_data_kb=10)
    problems = check_scenario(_with_policy(bad, sku="Basic"))
    assert [p.split(":")[0] for p in problems] == [
        "tunnels[0].ipsec_policy.ike_integrity", "tunnels[0].ipsec_policy.pfs_group",
        "tunnels[0].ipsec_policy.sa_data_kb", "tunnels[0].ipsec_policy"]
    assert all("\n" not in p for p in problems)


def test_ike_without_a_key_exchange_is_refused_as_a_lab_limit():
    from lab.plan.checks import check_scenario
    problems = check_scenario(_with_policy(dict(CUSTOM, dh_group="None")))
    assert len(problems) == 1 and "IKEv2 SA always needs a key exchange" in problems[0]


def _profile_file(tmp_path: Path, **changes) -> str:
    from importlib import resources
    raw = yaml.safe_load((resources.files("lab") / "profiles" / "fast.yaml").read_text())
    raw.update(changes)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_the_fast_profile_declares_each_of_its_departures():
    fast = load_profile("fast")
    departures = azure_rules().departures(fast)
    assert set(departures) == {"dpd_timeout", "bfd", "bgp_timers"}
    assert "DPD timeout 2 s (Azure: 9 to 3600 s" in departures["dpd_timeout"]
    assert azure_rules().departures(load_profile("azure")) == {}


def test_an_undeclared_departure_is_refused_in_one_line(tmp_path):
    path = _profile_file(tmp_path, departs_from_azure=["bfd", "bgp_timers"])
    with pytest.raises(TopologyError) as caught:
        load_profile(path)
    assert caught.value.problems == [
        "departs_from_azure: DPD timeout 2 s (Azure: 9 to 3600 s; " + azure_rules().dpd_timeout_s.source
        + "); list 'dpd_timeout' there to depart on purpose"]


def test_an_unknown_departure_is_refused(tmp_path):
    path = _profile_file(tmp_path, departs_from_azure=["dpd_timeout", "bfd", "bgp_timers", "vrrp"])
    with pytest.raises(TopologyError, match="unknown departure 'vrrp'"):
        load_profile(path)


def test_a_verdict_figure_must_be_the_strictest_documented(tmp_path):
    targets = yaml.safe_load(Path(_profile_file(tmp_path)).read_text())["targets"]
    targets["planned_s"]["also"] = [{"value": 0.5, "source": "a stricter page"}]
    with pytest.raises(TopologyError, match="must be the strictest"):
        load_profile(_profile_file(tmp_path, targets=targets))


def test_negotiated_algorithms_are_read_from_vici_answers():
    from lab.adapters.node_agent import ike_sas
    (sa,) = ike_sas([{"onprem-0": {
        "state": "ESTABLISHED", "encr-alg": "AES_CBC", "encr-keysize": "256", "integ-alg": "HMAC_SHA2_256_128",
        "prf-alg": "PRF_HMAC_SHA2_256", "dh-group": "MODP_1024",
        "child-sas": {"onprem-0-7": {"name": "onprem-0", "state": "INSTALLED", "encr-alg": "AES_GCM_16",
                                     "encr-keysize": "256", "dh-group": "MODP_2048"},
                      "onprem-0-8": {"name": "onprem-0", "state": "INSTALLED", "encr-alg": "3DES_CBC",
                                     "integ-alg": "HMAC_SHA1_96"}}}}])
    assert sa.algorithms == "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024"
    assert [c.algorithms for c in sa.children] == ["AES_GCM_16-256/MODP_2048", "3DES_CBC/HMAC_SHA1_96"]


def test_status_says_where_the_running_profile_departs_from_azure():
    from rich.console import Console

    from lab.render.deploy_plan import plan_deploy
    from lab.ui.status_view import render_status
    from lab.run.status import _departures

    fast = plan_deploy(load_plan("active-standby", "fast", lab="t"), {"onprem-0": "k"}).nodes[0].labels
    lines = _departures(fast["lab.departures"])
    assert [line.split(" ")[0] for line in lines] == ["DPD", "BFD", "BGP"]
    azure = plan_deploy(load_plan("active-standby", "azure", lab="t"), {"onprem-0": "k"}).nodes[0].labels
    assert _departures(azure["lab.departures"]) == []
    assert _departures(None) == [] and _departures("not json") == []
    from lab.run.status import LabStatus
    console = Console(width=200, record=True)
    console.print(render_status(LabStatus(lab="t", scenario="s", profile="fast", data_plane="d",
                                          host_kernel_esp="no", departures=lines)))
    assert console.export_text().count("departs from Azure") == 3


def test_a_tunnel_being_rekeyed_stays_up_in_status():
    from types import SimpleNamespace

    from lab.run.ports import ChildSaState, IkeSaState
    from lab.run.status import _tunnel_rows

    old = ChildSaState("onprem-0", "REKEYED", 5, 5, 500, 500, [], [], "AES_GCM_16-256")
    new = ChildSaState("onprem-0", "INSTALLED", 1, 1, 100, 100, [], [], "AES_GCM_16-256/MODP_2048")
    (row,) = _tunnel_rows(SimpleNamespace(node="onprem-0"), [IkeSaState("onprem-0", "ESTABLISHED", "l", "r", 1, [old, new], "x")])
    assert (row.child_state, row.esp_algorithms, row.packets_in) == ("INSTALLED", "AES_GCM_16-256/MODP_2048", 6)


def _policy_based(base: str = "active-standby"):
    plan = load_plan(base, "azure", lab="t")
    tunnels = [t.model_copy(update={"policy_based_selectors": True}) for t in plan.scenario.tunnels]
    return plan.scenario.model_copy(update={"tunnels": tunnels})


def test_policy_based_selectors_add_the_prefix_pairs_to_both_ends():
    from lab.render.configs import render_network
    plan = resolve(_policy_based(), load_profile("azure"), lab="t")
    (tunnel,) = plan.tunnels
    assert [str(p) for p in tunnel.gateway_prefixes + tunnel.device_prefixes] == ["10.1.0.0/16", "192.168.10.0/24"]
    gateway = render_strongswan(plan, "azure-gw-0")["strongswan/swanctl.conf"]
    assert "local_ts = 100.64.0.1/32,10.1.0.0/16" in gateway and "remote_ts = 100.64.0.2/32,192.168.10.0/24" in gateway
    device = render_strongswan(plan, "onprem-0")["strongswan/swanctl.conf"]
    assert "local_ts = 100.64.0.2/32,192.168.10.0/24" in device and "remote_ts = 100.64.0.1/32,10.1.0.0/16" in device
    # The gateway's BGP address lies inside the VNet's prefix: the session keeps to the tunnel link.
    assert "ip rule add to 10.1.255.30/32 lookup main priority 210" in render_network(plan, "onprem-0")["network.sh"]
    assert "ip rule add to 10.10.255.1/32 lookup main priority 210" in render_network(plan, "azure-gw-0")["network.sh"]
    # Route-based (the default): the /32 pair alone, no rule.
    default = load_plan("active-standby", "azure", lab="t")
    assert "ip rule" not in render_network(default, "onprem-0")["network.sh"]
    assert "remote_ts = 100.64.0.1/32\n" in render_strongswan(default, "onprem-0")["strongswan/swanctl.conf"]


def test_policy_based_selectors_on_a_device_with_two_tunnels_are_refused():
    from lab.plan.checks import check_scenario
    problems = check_scenario(_policy_based("active-active"))
    assert problems == ["tunnels[0].policy_based_selectors: onprem-0 has more than one tunnel; the lab's userspace "
                        "ESP picks an SA by traffic selector alone, so two tunnels can't carry the same prefixes "
                        "(use route-based)"]
