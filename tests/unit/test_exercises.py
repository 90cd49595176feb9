"""`lab exercise` without Docker: the exercises' data, the pure judging part of each check on
made-up states (and on the configs the lab renders), the record of a started exercise, the CLI's errors."""
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.model.errors import LabError
from lab.model.ipsec import device_proposals, gateway_proposals
from lab.model.schema import IpsecPolicy
from lab.plan.load import load_plan
from lab.render.configs import render_strongswan, retransmit_schedule
from lab.run.paths import PathRow
from lab.run.ports import BgpPath, IkeSaState
from lab.run.state import LAB_FILES, lab_dir, make_lab_dir, write_private
from lab.training import exercises as ex
from lab.ui import exercise_cli
from lab.ui.cli import app

ROOT = Path(__file__).resolve().parents[2]


# -- the data -------------------------------------------------------------------------------------
def test_the_exercises_load_numbered_one_to_four_each_with_its_own_check():
    known = ex.exercises()
    assert sorted(known) == [1, 2, 3, 4]
    assert sorted(e.check for e in known.values()) == sorted(ex.CHECKS)
    assert len({e.slug for e in known.values()}) == 4


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_every_exercise_has_a_hint_a_pasteable_solution_and_its_docs_page(number):
    e = ex.get_exercise(number)
    assert e.text("hint", "mylab") and e.text("situation", "mylab") and e.check_takes
    commands = e.solution_commands("mylab")
    assert commands and all(c.startswith("lab ") and "--lab mylab" in c for c in commands), commands
    page = ROOT / e.docs
    assert page.is_file(), page
    assert e.title in page.read_text()
    assert e.docs.removeprefix("docs/exercises/") in (ROOT / "docs/exercises/README.md").read_text()


PAGES = sorted((ROOT / "docs/exercises").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s#]+)[^)]*\)")
QUOTED_PATH = re.compile(r"`((?:lab|tests|docs)/[\w./-]*)`")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_trainers_pages_point_only_at_what_exists(page):
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    broken = [t for t in LINK.findall(text) if "://" not in t and not (page.parent / t).exists()]
    broken += [p for p in QUOTED_PATH.findall(text) if not (ROOT / p).exists()]
    assert not broken, broken


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_the_nodes_and_tunnels_the_commands_name_are_the_scenarios(number):
    e = ex.get_exercise(number)
    plan = load_plan(e.scenario, e.profile, "x")
    lines = e.solution_commands("x") + [" ".join(step.argv) for step in e.weakening.in_node]
    nodes = {step.node for step in e.weakening.in_node}
    nodes |= {m.group(1) for c in lines for m in [re.search(r"lab exec --lab x (\S+) --", c)] if m}
    assert nodes <= set(plan.nodes), nodes - set(plan.nodes)
    tunnels = {m for c in lines for m in re.findall(r"--(?:ike|child) (\S+)", c)}
    assert tunnels <= {t.name for t in plan.tunnels}, tunnels


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_the_scenario_copy_loads_with_the_exercises_profile_and_its_edits(number, tmp_path):
    e = ex.get_exercise(number)
    copy = tmp_path / ex.SCENARIO_COPY
    copy.write_text(ex.render_copy(e, "x"))
    plan = load_plan(str(copy), None, "x")
    assert (plan.scenario.name, plan.profile.name) == (e.scenario, e.profile)
    assert copy.read_text().startswith(f"# Exercise {number} ")
    if number == 4:
        # The circuit's routes ranked at 50 on the customer edge, the device's side as built in.
        sides = [p.sides for p in plan.scenario.peerings]
        assert [s[0].local_pref for s in sides] == [50, 50, None] and sides[2][1].local_pref == 50


def test_an_edit_of_a_value_the_scenario_no_longer_holds_or_a_path_it_lacks_is_refused():
    data = {"peerings": [{"sides": [{"local_pref": 150}]}]}
    ex.apply_edit(data, ex.ScenarioEdit(path="peerings.0.sides.0.local_pref", was=150, value=50))
    assert data["peerings"][0]["sides"][0]["local_pref"] == 50
    with pytest.raises(LabError, match="holds 50, not 150: the scenario changed"):
        ex.apply_edit(data, ex.ScenarioEdit(path="peerings.0.sides.0.local_pref", was=150, value=50))
    with pytest.raises(LabError, match=r"no peerings.3.sides \(at '3'\)"):
        ex.apply_edit(data, ex.ScenarioEdit(path="peerings.3.sides", was=None, value=1))


def test_the_exercises_files_are_the_labs_own_so_lab_down_removes_them():
    assert ex.RECORD_FILE in LAB_FILES and ex.SCENARIO_COPY in LAB_FILES


# -- exercise 1: retransmission ---------------------------------------------------------------------
AA = load_plan("active-active", "azure", "x")
UNPLANNED = AA.target_for("kill", planned=False)


def rendered(plan, node, name):
    return render_strongswan(plan, node)[f"strongswan/{name}"]


def test_strongswans_defaults_give_up_after_165_s_and_the_labs_azure_settings_after_azures_45_s():
    assert ex.Retransmission().give_up_s == pytest.approx(4 * sum(1.8 ** k for k in range(6)))
    assert ex.Retransmission().give_up_s == pytest.approx(165.06, abs=0.01)
    lab_own = ex.retransmission_of(ex.parse_settings(rendered(AA, "onprem-0", "strongswan.conf")))
    timeout, tries = retransmit_schedule(AA.profile.ike.dpd_timeout_s)
    assert (lab_own.timeout_s, lab_own.base, lab_own.tries) == (timeout, 1.0, tries)
    assert lab_own.give_up_s == pytest.approx(AA.profile.ike.dpd_timeout_s)
    # A limit caps each wait.
    assert ex.Retransmission(limit_s=10.0).give_up_s == pytest.approx(4 + 7.2 + 10 * 4)


def without_retransmission(text):
    """What exercise 1's weakening does to the file (its sed, in Python)."""
    return "\n".join(line for line in text.splitlines()
                     if "retransmi" not in line and "IKEv2 has no DPD timeout" not in line)


def test_the_device_on_strongswans_defaults_misses_the_unplanned_target_and_the_labs_settings_meet_it():
    conf = rendered(AA, "onprem-0", "strongswan.conf")
    conns = ex.parse_settings(rendered(AA, "onprem-0", "swanctl.conf"))["connections"]
    delays = {name: ex.duration_s(c["dpd_delay"]) for name, c in conns.items()}
    assert delays == {"onprem-0-0": 10.0, "onprem-0-1": 10.0}
    weak = ex.retransmission_of(ex.parse_settings(without_retransmission(conf)))
    assert weak == ex.Retransmission()
    [line] = ex.judge_retransmission("onprem-0", weak, delays, UNPLANNED)
    assert "165.1 s" in line and "strongSwan's defaults" in line and "about 175 s" in line
    assert "over the unplanned target of 90 s" in line and "not timed" in line
    lab_own = ex.retransmission_of(ex.parse_settings(conf))
    assert ex.judge_retransmission("onprem-0", lab_own, delays, UNPLANNED) == []


def test_a_connection_without_dpd_never_notices_and_a_bad_value_is_one_line():
    [line] = ex.judge_retransmission("d", ex.Retransmission(5.0, 1.0, 8), {"t": None}, UNPLANNED)
    assert "no dpd_delay" in line and "goes unnoticed" in line
    with pytest.raises(LabError, match="retransmit_tries = 'many' is no number"):
        ex.retransmission_of(ex.parse_settings("charon {\n retransmit_tries = many\n}\n"))
    assert [ex.duration_s(t) for t in ("10s", "1m", "2", "1.5h")] == [10, 60, 2, 5400]
    with pytest.raises(ValueError):
        ex.duration_s("soon")


def sa(name, age, state="ESTABLISHED"):
    return IkeSaState(name=name, state=state, local_host="", remote_host="", established_s=age, children=[])


def test_an_sa_made_before_the_settings_changed_still_runs_the_old_ones():
    tunnels = ["onprem-0-0", "onprem-0-1"]
    assert ex.judge_sa_ages("onprem-0", tunnels, [sa("onprem-0-0", 3), sa("onprem-0-1", 5)], 20.0) == []
    [old] = ex.judge_sa_ages("onprem-0", tunnels, [sa("onprem-0-0", 3), sa("onprem-0-1", 300)], 20.0)
    assert "onprem-0-1 was made 300 s ago, before /etc/strongswan.conf last changed (20 s ago)" in old
    [missing] = ex.judge_sa_ages("onprem-0", tunnels, [sa("onprem-0-0", 3), sa("onprem-0-1", 1, "CONNECTING")], 20.0)
    assert "tunnel onprem-0-1 has no established IKE SA" in missing


def test_the_settings_parser_reads_sections_values_and_comments():
    parsed = ex.parse_settings('# top\ncharon {\n  retransmit_timeout = 2.5 # two and a half\n'
                               '  plugins {\n    vici {\n      socket = "unix:///run/x"\n    }\n  }\n}\n'
                               'include conf.d/*.conf\nconnections {\n  a : b {\n    dpd_delay = 10s\n  }\n}\n')
    assert parsed == {"charon": {"retransmit_timeout": "2.5", "plugins": {"vici": {"socket": "unix:///run/x"}}},
                      "connections": {"a": {"dpd_delay": "10s"}}}


# -- exercise 2: proposals --------------------------------------------------------------------------
AS = load_plan("active-standby", "fast", "x")
DEFAULT = gateway_proposals(None)


def device_conn(plan, node, tunnel):
    return ex.parse_settings(rendered(plan, node, "swanctl.conf"))["connections"][tunnel]


def test_the_labs_own_device_config_is_one_azure_allows():
    conn = device_conn(AS, "onprem-0", "onprem-0")
    assert ex.judge_proposals("onprem-0", "onprem-0", "ike", conn["proposals"], DEFAULT.ike, "Azure's default") == []
    esp = conn["children"]["onprem-0"]["esp_proposals"]
    assert ex.judge_proposals("onprem-0", "onprem-0", "esp", esp, DEFAULT.esp, "Azure's default") == []


def test_dh_group_14_for_ike_is_refused_naming_the_group_in_azures_words():
    [line] = ex.judge_proposals("onprem-0", "onprem-0", "ike", "aes256-sha256-modp2048", DEFAULT.ike,
                                "Azure's default IPsec/IKE policy", "the source")
    assert line == ("onprem-0: tunnel onprem-0's IKE proposal aes256-sha256-modp2048 is none Azure's default "
                    "IPsec/IKE policy allows (its DH group modp2048 (DHGroup14/DHGroup2048): it takes modp1024 "
                    "(DHGroup2)); the source")


@pytest.mark.parametrize("kind, proposal, says", [
    ("ike", "aes256-md5-modp1024", "its integrity/PRF md5 (MD5): it takes sha1 (SHA1), sha256 (SHA256)"),
    ("ike", "aes256gcm16-prfsha256-ecp256", "its encryption aes256gcm16 (GCMAES256)"),
    ("esp", "aes128gcm16", "its encryption aes128gcm16 (GCMAES128)"),
    ("esp", "aes256-sha256-modp4096", "its PFS group modp4096 (none of Azure's)"),
    ("esp", "aes256gcm16-modp2048", "no combination of its algorithms is one it lists"),
    ("ike", "default", "'default' (strongSwan's own list)"),
])
def test_each_disallowed_proposal_is_named_with_why(kind, proposal, says):
    allowed = DEFAULT.ike if kind == "ike" else DEFAULT.esp
    [line] = ex.judge_proposals("d", "t", kind, proposal, allowed, "Azure's default")
    assert says in line, line


def test_one_line_per_refused_proposal_and_none_for_an_allowed_one_in_the_list():
    lines = ex.judge_proposals("d", "t", "ike", "aes256-sha256-modp2048,aes128-sha1-modp1024,3des-md5-modp1024",
                               DEFAULT.ike, "Azure's default")
    assert [line.split(" is none")[0].rsplit(" ", 1)[1] for line in lines] == ["aes256-sha256-modp2048",
                                                                                "3des-md5-modp1024"]
    # strongSwan's other spellings are the same algorithms.
    assert ex.judge_proposals("d", "t", "ike", "aes256-sha2_256-modp1024", DEFAULT.ike, "x") == []
    assert ex.judge_proposals("d", "t", "esp", "aes256gcm128", DEFAULT.esp, "x") == []


def test_a_custom_policy_is_judged_against_itself():
    policy = IpsecPolicy(ike_encryption="GCMAES256", ike_integrity="SHA384", dh_group="DHGroup24",
                         ipsec_encryption="AES256", ipsec_integrity="SHA256", pfs_group="PFS2048")
    gateway, device = gateway_proposals(policy), device_proposals(policy)
    assert ex.judge_proposals("d", "t", "ike", device.ike, gateway.ike, "custom") == []
    assert ex.judge_proposals("d", "t", "esp", device.esp, gateway.esp, "custom") == []
    # Azure's recommended default set is not this connection's policy.
    assert ex.judge_proposals("d", "t", "ike", device_proposals(None).ike, gateway.ike, "custom")


def test_a_tunnel_without_an_established_ike_sa_is_named():
    [tunnel] = AS.tunnels
    [line] = ex.judge_ike_sas("onprem-0", [tunnel], [sa("onprem-0", None, "CONNECTING")])
    assert line.startswith("onprem-0: no IKE SA with gateway azure-gw on tunnel onprem-0 (to 198.51.100.100)")
    assert ex.judge_ike_sas("onprem-0", [tunnel], [sa("onprem-0", 4)]) == []


# -- exercise 3: a blackhole's verdict ---------------------------------------------------------------
def test_active_standby_has_one_tunnel_per_device_and_active_active_two():
    assert ex.gateway_shape(AS, "azure-gw-0") == ex.GatewayShape("azure-gw", "active-standby", 1)
    assert ex.gateway_shape(load_plan("active-active", "fast", "x"), "azure-gw-1").tunnels_per_device == 2
    assert ex.gateway_shape(AS, "onprem-0") is None


def test_a_failed_blackhole_on_active_standby_says_there_is_no_second_path():
    directions = [("onprem-host → azure-vm", None), ("azure-vm → onprem-host", None)]
    lines = ex.judge_blackhole("azure-gw-0", "FAIL", 2.0, directions, ex.GatewayShape("azure-gw", "active-standby", 1))
    assert lines[0] == ("blackhole on azure-gw-0: FAIL, traffic not back within the 2 s target "
                        "(onprem-host → azure-vm: not back, azure-vm → onprem-host: not back)")
    assert "runs active-standby: one tunnel" in lines[1] and "lost until the path is repaired" in lines[1]
    assert len(lines) == 2


def test_a_passed_blackhole_is_solved_and_a_slow_one_with_two_tunnels_only_says_so():
    two = ex.GatewayShape("azure-gw", "active-active", 2)
    assert ex.judge_blackhole("azure-gw-0", "PASS", 2.0, [("a → b", 1.04)], two) == []
    [line] = ex.judge_blackhole("azure-gw-0", "FAIL", 2.0, [("a → b", 3.5)], two)
    assert line.endswith("(a → b: 3.50 s)")
    [invalid] = ex.judge_blackhole("azure-gw-0", "INVALID", 2.0, [], two, ["run 1: probes not clean"])
    assert "could not be measured (run 1: probes not clean)" in invalid


# -- exercise 4: paths -------------------------------------------------------------------------------
ER = load_plan("expressroute-failover", "fast", "x")
UP = {"er-primary": "Established", "er-secondary": "Established"}


def path(hop, lp, as_path, best=False, multipath=False, reason=""):
    return BgpPath(next_hop=hop, peer=hop, local_pref=lp, weight=0, as_path=as_path, best=best,
                   multipath=multipath, reason=reason)


CIRCUIT_PATHS = [path("172.16.0.2", 50, "12076 65515"), path("172.16.0.6", 50, "12076 65515")]


def test_the_vpn_carrying_at_the_customer_edge_while_the_circuit_is_up_names_local_preference():
    rows = [PathRow("onprem-ce", "10.1.0.0/16", "vpn", ["the VPN, through onprem-0"], ["192.168.10.2"]),
            # The device's own choice is the VPN by design (it ranks the CE's routes at 50): not judged.
            PathRow("onprem-0", "10.1.0.0/16", "vpn", ["VPN tunnel onprem-0"], ["100.64.0.1"]),
            PathRow("vnet-router", "192.168.10.0/24", "expressroute", ["ExpressRoute gateway er-gw (er-gw-0)"],
                    ["10.1.255.12"])]
    bgp = {("onprem-ce", "10.1.0.0/16"): [path("192.168.10.2", 100, "65515", True, reason="Local Pref"),
                                          *CIRCUIT_PATHS]}
    [line] = ex.judge_paths(ER, rows, UP, bgp)
    assert line == ("onprem-ce: 10.1.0.0/16 is carried by the VPN (the VPN, through onprem-0) while the circuit is "
                    "up: BGP decided by local preference, 100 on the VPN's path over 50 on the circuit's "
                    "(ExpressRoute, primary link)")


def test_the_as_path_deciding_is_named_with_both_lengths():
    rows = [PathRow("onprem-ce", "10.1.0.0/16", "vpn", ["the VPN, through onprem-0"], ["192.168.10.2"])]
    bgp = {("onprem-ce", "10.1.0.0/16"): [path("192.168.10.2", None, "65515", True, reason="AS Path"),
                                          path("172.16.0.2", None, "12076 65515")]}
    [line] = ex.judge_paths(ER, rows, UP, bgp)
    assert line.endswith("BGP decided by AS path length, 1 ASes (65515) on the VPN's path over 2 ASes (12076 65515) "
                         "on the circuit's (ExpressRoute, primary link)")


def test_the_circuit_carrying_is_solved_and_a_circuit_down_is_said():
    rows = [PathRow("onprem-ce", "10.1.0.0/16", "expressroute", ["ExpressRoute, primary link"] * 2,
                    ["172.16.0.2", "172.16.0.6"])]
    assert ex.judge_paths(ER, rows, UP, {}) == []
    [down] = ex.judge_paths(ER, rows, {"er-primary": "Idle", "er-secondary": "Connect"}, {})
    assert down == "the circuit is down (er-primary: Idle, er-secondary: Connect): the check judges the paths while it is up"
    [none] = ex.judge_paths(AS, [], {}, {})
    assert "has no ExpressRoute circuit" in none


def test_the_routers_that_choose_are_those_with_sessions_of_both_carriers():
    assert ex.choosing_between_carriers(ER) == {"onprem-ce", "vnet-router"}
    assert {b.peering for b in ex.circuit_sessions(ER)} == {"er-primary", "er-secondary"}
    assert {b.node for b in ex.circuit_sessions(ER)} == {"onprem-ce"}


# -- the record ------------------------------------------------------------------------------------
def test_a_record_written_is_read_back_and_is_private():
    make_lab_dir("ex1")
    ex.write_record("ex1", ex.get_exercise(1))
    record = ex.read_record("ex1")
    assert (record.exercise, record.slug, record.lab) == (1, "retransmission-defaults", "ex1")
    assert (ex.record_path("ex1").stat().st_mode & 0o777) == 0o600
    assert ex.read_record("ex2") is None


@pytest.mark.parametrize("text, says", [
    ("{not json", "not an exercise record (not valid JSON)"),
    ('{"exercise": 1}', "not an exercise record (Field required)"),
    ('{"exercise": 1, "slug": "retransmission-defaults", "lab": "ex1", "started_at": "t", "extra": 1}',
     "not an exercise record (Extra inputs are not permitted)"),
    ('{"exercise": 9, "slug": "retransmission-defaults", "lab": "ex1", "started_at": "t"}',
     "records exercise 9 (retransmission-defaults) of lab ex1, none `lab exercise list` has for this lab"),
    ('{"exercise": 1, "slug": "vpn-wins", "lab": "ex1", "started_at": "t"}', "records exercise 1 (vpn-wins)"),
    ('{"exercise": 1, "slug": "retransmission-defaults", "lab": "other", "started_at": "t"}', "of lab other"),
    ("[1, 2]", "not an exercise record"),
])
def test_a_corrupt_or_unknown_record_is_one_line(text, says):
    write_private(make_lab_dir("ex1") / ex.RECORD_FILE, text)
    with pytest.raises(LabError) as raised:
        ex.read_record("ex1")
    message = str(raised.value)
    assert says in message and "\n" not in message, message
    assert message.startswith(str(lab_dir("ex1") / ex.RECORD_FILE))


# -- the CLI ---------------------------------------------------------------------------------------
class FakeRuntime:
    def __init__(self, labs=()):
        self.labs = labs

    def ping(self):
        pass

    def containers(self, labels):
        return [type("C", (), {"labels": {"lab.name": lab}})() for lab in self.labs]


class FakeAdapters:
    def __init__(self, labs=()):
        self.runtime = FakeRuntime(labs)


def run(*args):
    return CliRunner().invoke(app, ["exercise", *args])


def one_line_error(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.fixture
def engine(monkeypatch):
    """The CLI's adapters: an engine with the labs a test puts on it."""
    fake = FakeAdapters()
    monkeypatch.setattr(exercise_cli, "_adapters", lambda: fake)
    return fake.runtime


@pytest.mark.parametrize("args, says", [
    (["start", "9"], "exercise 9: no such exercise (1 to 4; `lab exercise list`)"),
    (["start", "x"], "N: 'x' is no exercise number"),
    (["hint", "0"], "exercise 0: no such exercise"),
    (["solution", "1.5"], "N: '1.5' is no exercise number"),
    (["check", "--lab", "Bad"], "--lab: 'Bad' is not a valid lab name"),
])
def test_bad_input_is_one_line_exit_2(args, says, engine):
    assert says in one_line_error(run(*args))


def test_check_without_a_lab_or_an_exercise_says_so(engine):
    assert "no exercise lab is running: `lab exercise start N` starts one" in one_line_error(run("check"))
    assert "lab ex3 is not running" in one_line_error(run("check", "--lab", "ex3"))
    engine.labs = ["plain"]
    make_lab_dir("plain")
    assert "lab plain: no exercise was started on it" in one_line_error(run("check", "--lab", "plain"))
    assert "no exercise lab is running" in one_line_error(run("hint"))


def test_check_prints_one_line_per_problem_or_one_saying_solved(engine, monkeypatch):
    engine.labs = ["ex2"]
    make_lab_dir("ex2")
    ex.write_record("ex2", ex.get_exercise(2))
    found = ["onprem-0: no IKE SA", "onprem-0: tunnel onprem-0's IKE proposal x is none"]
    monkeypatch.setattr(ex, "check", lambda lab, adapters, events: (ex.get_exercise(2), list(found)))
    result = run("check")
    assert (result.exit_code, result.stdout.splitlines()) == (1, found)
    found.clear()
    result = run("check", "--lab", "ex2")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "solved: exercise 2 (The tunnel stays down: NO_PROPOSAL_CHOSEN) on lab ex2: no problem left"]


def test_hint_and_solution_of_the_running_exercise_or_of_the_one_named(engine):
    result = run("solution", "1", "--lab", "mine")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ex.get_exercise(1).solution_lines("mine")
    engine.labs = ["ex4"]
    make_lab_dir("ex4")
    ex.write_record("ex4", ex.get_exercise(4))
    hint = run("hint")
    assert hint.exit_code == 0 and "--lab ex4" in hint.stdout and "local preference" not in hint.stdout


def test_list_shows_every_exercise():
    result = run("list")
    assert result.exit_code == 0
    for e in ex.exercises().values():
        assert e.title in " ".join(result.stdout.split())


def test_a_running_lab_that_runs_no_exercise_is_never_taken_down(engine):
    engine.labs = ["ex1"]
    make_lab_dir("ex1")
    line = one_line_error(run("start", "1"))
    assert "lab ex1 is running and runs no exercise: choose another --lab, or `lab down --lab ex1` first" in line
    # The refusal touched nothing: no record, no scenario copy.
    assert ex.read_record("ex1") is None and not (lab_dir("ex1") / ex.SCENARIO_COPY).exists()
