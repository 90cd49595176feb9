"""A device configured only from Azure's documented values, against the lab's gateway (azure profile).

The device's proposals are written here by hand from Azure's page "About VPN
devices and IPsec/IKE parameters for Site-to-Site VPN Gateway connections"
and from "Configure custom IPsec/IKE connection policies", not read from the
lab's own data: a mistake in lab/model/azure.yaml must fail these tests.

Each case replaces onprem-0's connection (same name, so the lab's updown and
BGP keep working), brings the tunnel up, rekeys it, and reads what was
negotiated from the device's strongSwan.
"""
import subprocess
import sys
import uuid

import pytest
import yaml

from lab.run import lifecycle
from lab.adapters.node_agent import NodeAgent
from lab.plan.load import load_scenario

from .conftest import forwarded_out, start_lab

DEVICE = "onprem-0"
# Bounds of the waits for a rekey: the new SAs (a few exchanges on one machine), then the old CHILD_SA's
# removal (strongSwan keeps a rekeyed SA's inbound side for delete_rekeyed_delay, 5 s by default).
REKEYED_WITHIN_S = 15
OLD_CHILD_GONE_WITHIN_S = 20
# IKE (Main Mode) for route-based gateways: DH group 2 with each of six
# encryption/integrity pairs; (strongSwan proposal, what strongSwan then reports).
AZURE_IKE_ROWS = [
    ("aes256-sha1-modp1024", "AES_CBC-256/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024"),
    ("aes256-sha256-modp1024", "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024"),
    ("aes128-sha1-modp1024", "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024"),
    ("aes128-sha256-modp1024", "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024"),
    ("3des-sha1-modp1024", "3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024"),
    ("3des-sha256-modp1024", "3DES_CBC/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024"),
]
# Quick Mode SA offers with Azure as responder, rows 1-26: encryption, integrity, PFS group.
AZURE_ESP_ROWS = [
    "aes256gcm16", "aes256-sha1", "3des-sha1", "aes256-sha256", "aes128-sha1", "3des-sha256", "des-sha1",
    "aes256-sha1-modp768", "aes256-sha1-modp1024", "aes256-sha1-modp2048",
    "aes128-sha1-modp768", "aes128-sha1-modp1024", "aes128-sha1-modp2048",
    "3des-sha1-modp768", "3des-sha1-modp1024", "3des-sha256-modp1024",
    "aes256-sha256-modp768", "aes256-sha256-modp1024", "aes256-sha256-modp2048",
    "aes256-sha1-modp2048s256", "aes256-sha256-modp2048s256",
    "aes128-sha256", "aes128-sha256-modp768", "aes128-sha256-modp1024", "aes128-sha256-modp2048",
    "3des-sha1-modp2048",
]
GROUP_NAMES = {"modp768": "MODP_768", "modp1024": "MODP_1024", "modp2048": "MODP_2048",
               "modp2048s256": "MODP_2048_256"}
# Azure's recommended set: IKE AES256 / SHA256 / DH group 2, IPsec GCM-AES256 without PFS.
RECOMMENDED = ("aes256-sha256-modp1024", "aes256gcm16")
# A custom policy with PFS, in Azure's names, and the same policy as the device writes it.
CUSTOM_POLICY = dict(ike_encryption="AES256", ike_integrity="SHA256", dh_group="DHGroup14",
                     ipsec_encryption="GCMAES256", ipsec_integrity="GCMAES256", pfs_group="PFS2048",
                     sa_lifetime_s=3600)
CUSTOM_DEVICE = ("aes256-sha256-modp2048", "aes256gcm16-modp2048")


def container(plan, node):
    return plan.nodes[node].container


def device_conf(plan, ike: str, esp: str, selectors: tuple[str, str] | None = None) -> str:
    """swanctl.conf for onprem-0 as a person would write it from Azure's pages, plus what the lab
    needs beyond them: UDP encapsulation (userspace ESP) and the tunnel's /32 selectors."""
    tunnel = plan.tunnels[0]
    local_ts, remote_ts = selectors or (f"{tunnel.device_endpoint}/32", f"{tunnel.gateway_endpoint}/32")
    return f"""connections {{
  {tunnel.name} {{
    version = 2
    local_addrs = {tunnel.device_public_ip}
    remote_addrs = {tunnel.gateway_public_ip}
    encap = yes
    proposals = {ike}
    local {{
      auth = psk
      id = {tunnel.device_public_ip}
    }}
    remote {{
      auth = psk
      id = {tunnel.gateway_public_ip}
    }}
    children {{
      {tunnel.name} {{
        local_ts = {local_ts}
        remote_ts = {remote_ts}
        esp_proposals = {esp}
        updown = /lab/strongswan/updown.sh
        start_action = none
      }}
    }}
  }}
}}
"""


def swanctl(adapters, plan, node, *args, timeout_s=20):
    return adapters.runtime.exec(container(plan, node), ["swanctl", *args], timeout_s=timeout_s)


def configure_device(adapters, plan, ike: str, esp: str, selectors: tuple[str, str] | None = None) -> None:
    """Replaces the device's connection and takes the tunnel down, ready to be initiated."""
    script = f"cat > /etc/swanctl/interop.conf <<'EOF'\n{device_conf(plan, ike, esp, selectors)}EOF\n"
    code, output = adapters.runtime.exec(container(plan, DEVICE), ["bash", "-c", script])
    assert code == 0, output
    swanctl(adapters, plan, DEVICE, "--terminate", "--ike", plan.tunnels[0].name, "--timeout", "5")
    code, output = swanctl(adapters, plan, DEVICE, "--load-conns", "--file", "/etc/swanctl/interop.conf")
    assert code == 0, output


def device_sa(adapters, plan):
    """The device's one IKE SA of the tunnel, as its strongSwan reports it."""
    info = adapters.runtime.containers({"lab.name": plan.lab, "lab.node": DEVICE})[0]
    sas = [sa for sa in adapters.ike_for(info).list_sas() if sa.name == plan.tunnels[0].name]
    assert len(sas) == 1, sas
    return sas[0]


def installed_children(sa):
    return [c for c in sa.children if c.state == "INSTALLED"]


def initiate(adapters, plan):
    code, output = swanctl(adapters, plan, DEVICE, "--initiate", "--child", plan.tunnels[0].name, "--timeout", "15")
    assert code == 0, output[-2000:]
    sa = device_sa(adapters, plan)
    assert sa.state == "ESTABLISHED" and len(installed_children(sa)) == 1, sa
    return sa


def raw_ike_sas(adapters, plan, node=DEVICE) -> list[dict]:
    """The node's IKE SAs of the tunnel as VICI's list-sas gives them (SPIs included)."""
    answers = NodeAgent(node, container(plan, node), adapters.runtime).call("sas")
    return [ike for answer in answers for name, ike in answer.items() if name == plan.tunnels[0].name]


def ike_spis(ike: dict) -> tuple[str, str]:
    return ike["initiator-spi"], ike["responder-spi"]


def child_spis(ike: dict, state: str | None = "INSTALLED") -> set[tuple[str, str]]:
    return {(c["spi-in"], c["spi-out"]) for c in (ike.get("child-sas") or {}).values()
            if state is None or c.get("state") == state}


def device_child_spis(adapters, plan, state: str | None = "INSTALLED") -> set[tuple[str, str]]:
    return set().union(*[child_spis(ike, state) for ike in raw_ike_sas(adapters, plan)])


def rekey_child(adapters, plan, node=DEVICE):
    """Rekeys the CHILD_SA from `node`; the device's installed CHILD_SA afterwards, proven new by its SPIs.

    VICI's rekey only queues the job, and the old SA stays installed until the new one is: the
    device must show exactly one installed CHILD_SA with SPIs it did not have, then none of the old.
    """
    old = device_child_spis(adapters, plan)
    assert len(old) == 1, f"not one installed CHILD_SA before the rekey: {raw_ike_sas(adapters, plan)}"
    code, output = swanctl(adapters, plan, node, "--rekey", "--child", plan.tunnels[0].name)
    assert code == 0, output
    new: set[tuple[str, str]] = set()

    def rekeyed() -> bool:
        nonlocal new
        new = device_child_spis(adapters, plan) - old
        return len(new) == 1 and device_child_spis(adapters, plan) == new

    assert lifecycle.poll_until(rekeyed, within_s=REKEYED_WITHIN_S, interval_s=0.2), \
        f"no new CHILD_SA replaced SPIs {old} within {REKEYED_WITHIN_S} s: {raw_ike_sas(adapters, plan)}"
    # The old SA goes too, whatever state it lingers in (REKEYED, DELETING).
    assert lifecycle.poll_until(lambda: not (device_child_spis(adapters, plan, state=None) & old),
                                within_s=OLD_CHILD_GONE_WITHIN_S, interval_s=0.5), \
        f"the old CHILD_SA {old} is still there after {OLD_CHILD_GONE_WITHIN_S} s: {raw_ike_sas(adapters, plan)}"
    children = installed_children(device_sa(adapters, plan))
    assert len(children) == 1 and device_child_spis(adapters, plan) == new, raw_ike_sas(adapters, plan)
    return children[0]


def rekey_ike(adapters, plan):
    """Rekeys the device's IKE SA; the one IKE SA afterwards, proven new by its SPIs, still carrying
    its CHILD_SA (which an IKE rekey moves over, unchanged)."""
    before = raw_ike_sas(adapters, plan)
    assert len(before) == 1, before
    old, children = ike_spis(before[0]), child_spis(before[0])
    code, output = swanctl(adapters, plan, DEVICE, "--rekey", "--ike", plan.tunnels[0].name)
    assert code == 0, output

    def rekeyed() -> bool:
        sas = raw_ike_sas(adapters, plan)
        return (len(sas) == 1 and sas[0].get("state") == "ESTABLISHED"
                and set(ike_spis(sas[0])).isdisjoint(old) and child_spis(sas[0]) == children)

    assert lifecycle.poll_until(rekeyed, within_s=REKEYED_WITHIN_S, interval_s=0.2), \
        f"no new IKE SA replaced SPIs {old} within {REKEYED_WITHIN_S} s: {raw_ike_sas(adapters, plan)}"
    return device_sa(adapters, plan)


def converge(adapters, plan):
    lifecycle.wait_for("convergence", lambda: lifecycle.read_status(plan.lab, adapters).unconverged_reasons(), 60)


def ping(adapters, plan, count=3) -> int:
    azure_vm = plan.scenario.nodes["azure-vm"].links["vnet-workload"]
    code, output = adapters.runtime.exec(container(plan, "onprem-host"),
                                         ["ping", "-c", str(count), "-i", "0.2", "-W", "2", str(azure_vm)],
                                         timeout_s=20)
    return code


@pytest.fixture(scope="module")
def azure_lab(adapters, state_dir):
    plan, status, _ = start_lab(adapters, "azure")
    yield plan
    assert forwarded_out(adapters, plan) == 0
    lifecycle.down(plan.lab, adapters)


def test_every_ike_row_of_azures_default_policy_is_accepted_and_rekeys(adapters, azure_lab):
    plan = azure_lab
    for proposal, negotiated in AZURE_IKE_ROWS:
        configure_device(adapters, plan, proposal, RECOMMENDED[1])
        first = initiate(adapters, plan)
        assert first.algorithms == negotiated, proposal
        again = rekey_ike(adapters, plan)
        assert again.state == "ESTABLISHED" and again.algorithms == negotiated, (proposal, again)


# About 2.5 min for 26 rows: `make test` has the recommended set and a PFS custom policy, rekeyed from both ends.
@pytest.mark.sweep
def test_every_esp_row_azure_accepts_as_responder_is_accepted_and_pfs_rows_rekey_with_pfs(adapters, azure_lab):
    plan = azure_lab
    for proposal in AZURE_ESP_ROWS:
        configure_device(adapters, plan, RECOMMENDED[0], proposal)
        child = installed_children(initiate(adapters, plan))[0]
        group = proposal.rsplit("-", 1)[-1]
        # The first CHILD_SA rides IKE_AUTH, which carries no key exchange: PFS shows at the rekey.
        assert "MODP" not in child.algorithms, proposal
        rekeyed = rekey_child(adapters, plan)
        if group in GROUP_NAMES:
            assert rekeyed.algorithms.endswith("/" + GROUP_NAMES[group]), (proposal, rekeyed.algorithms)
        else:
            assert "MODP" not in rekeyed.algorithms, (proposal, rekeyed.algorithms)


def test_the_recommended_set_carries_traffic_and_bgp_through_rekeys_from_both_ends(adapters, azure_lab):
    plan = azure_lab
    configure_device(adapters, plan, *RECOMMENDED)
    sa = initiate(adapters, plan)
    assert sa.algorithms == "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024"
    assert installed_children(sa)[0].algorithms == "AES_GCM_16-256"
    # The gateway rekeys as Azure does: without PFS, so a device that has none keeps its tunnel.
    assert rekey_child(adapters, plan, node="azure-gw-0").algorithms == "AES_GCM_16-256"
    assert rekey_child(adapters, plan).algorithms == "AES_GCM_16-256"
    assert rekey_ike(adapters, plan).algorithms == "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024"
    converge(adapters, plan)
    assert ping(adapters, plan) == 0


def test_any_to_any_selectors_are_accepted_and_narrowed_to_the_tunnel(adapters, azure_lab):
    plan = azure_lab
    configure_device(adapters, plan, *RECOMMENDED, selectors=("0.0.0.0/0", "0.0.0.0/0"))
    child = installed_children(initiate(adapters, plan))[0]
    tunnel = plan.tunnels[0]
    assert (child.local_ts, child.remote_ts) == ([f"{tunnel.device_endpoint}/32"], [f"{tunnel.gateway_endpoint}/32"])


def test_a_device_offering_a_proposal_azure_lacks_is_refused(adapters, azure_lab):
    plan = azure_lab
    # DH group 14 for IKE: not in the default policy (only with a custom policy).
    configure_device(adapters, plan, "aes256-sha256-modp2048", RECOMMENDED[1])
    code, output = swanctl(adapters, plan, DEVICE, "--initiate", "--child", plan.tunnels[0].name, "--timeout", "10")
    assert code != 0
    assert "NO_PROPOSAL_CHOSEN" in output or "INVALID_KE_PAYLOAD" in output, output[-2000:]


def _custom_scenario(tmp_path, policy: dict):
    _, scenario = load_scenario("active-standby")
    raw = scenario.model_dump(mode="json", exclude_defaults=False)
    raw["tunnels"][0]["ipsec_policy"] = policy
    path = tmp_path / "custom-policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_custom_policy_with_pfs_establishes_and_rekeys_with_pfs_from_both_ends(adapters, state_dir, tmp_path):
    from lab.plan.load import load_plan
    plan = load_plan(str(_custom_scenario(tmp_path, CUSTOM_POLICY)), "azure", lab=f"it-{uuid.uuid4().hex[:6]}")
    plan, status, _ = start_lab(adapters, plan=plan)
    try:
        assert status.converged, status.unconverged_reasons()
        configure_device(adapters, plan, *CUSTOM_DEVICE)
        sa = initiate(adapters, plan)
        assert sa.algorithms == "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
        assert rekey_child(adapters, plan).algorithms == "AES_GCM_16-256/MODP_2048"
        assert rekey_child(adapters, plan, node="azure-gw-0").algorithms == "AES_GCM_16-256/MODP_2048"
        converge(adapters, plan)
        assert ping(adapters, plan) == 0
        # The policy is all the gateway takes: the default recommended set no longer connects.
        configure_device(adapters, plan, *RECOMMENDED)
        code, output = swanctl(adapters, plan, DEVICE, "--initiate", "--child", plan.tunnels[0].name, "--timeout", "10")
        assert code != 0, output[-2000:]
        assert forwarded_out(adapters, plan) == 0
    finally:
        lifecycle.down(plan.lab, adapters)


def test_a_disallowed_custom_policy_is_refused_in_one_line_before_anything_is_made(adapters, state_dir, tmp_path):
    name = f"it-{uuid.uuid4().hex[:6]}"
    path = _custom_scenario(tmp_path, dict(CUSTOM_POLICY, ipsec_integrity="SHA256"))
    result = subprocess.run([sys.executable, "-m", "lab.ui.cli", "up", str(path), "--lab", name],
                            capture_output=True, text=True, timeout=120)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, lines
    assert "tunnels[0].ipsec_policy.ipsec_integrity: SHA256 with GCMAES256" in lines[0]
    assert adapters.runtime.lab_objects({"lab.name": name}) == []


def test_policy_based_selectors_carry_the_sites_prefixes_by_policy_beside_the_tunnel_link(adapters, state_dir,
                                                                                          tmp_path):
    from lab.plan.load import load_plan
    _, scenario = load_scenario("active-standby")
    raw = scenario.model_dump(mode="json")
    raw["tunnels"][0]["policy_based_selectors"] = True
    path = tmp_path / "policy-based.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    plan, status, _ = start_lab(adapters, plan=load_plan(str(path), "azure", lab=f"it-{uuid.uuid4().hex[:6]}"))
    try:
        assert status.converged, status.unconverged_reasons()
        tunnel = plan.tunnels[0]
        # A device written from Azure's page: every on-prem prefix with every VNet prefix (and the
        # tunnel's /32 pair, which the lab needs for its link).
        configure_device(adapters, plan, *RECOMMENDED, selectors=(
            f"{tunnel.device_endpoint}/32,192.168.10.0/24", f"{tunnel.gateway_endpoint}/32,10.1.0.0/16"))
        child = installed_children(initiate(adapters, plan))[0]
        assert (sorted(child.local_ts), sorted(child.remote_ts)) == (
            sorted([f"{tunnel.device_endpoint}/32", "192.168.10.0/24"]), sorted([f"{tunnel.gateway_endpoint}/32", "10.1.0.0/16"]))
        rekey_child(adapters, plan)
        converge(adapters, plan)
        # The VNet's prefix rides the SA by policy (strongSwan's table 220), not the BGP route.
        code, routes = adapters.runtime.exec(container(plan, DEVICE), ["ip", "route", "show", "table", "220"])
        assert code == 0 and "10.1.0.0/16 dev ipsec0" in routes, routes
        assert ping(adapters, plan) == 0
        assert forwarded_out(adapters, plan) == 0
    finally:
        lifecycle.down(plan.lab, adapters)
