"""`lab status` fits 80 columns for every built-in scenario, with no state or address cut;
`--wide` shows every column, whole."""
import re
import time

import pytest
from rich.console import Console

from lab.plan.load import builtin_scenarios, load_plan
from lab.run.ports import BgpPeerState, ChildSaState, ContainerInfo, IkeSaState
from lab.run.status import collect_status
from lab.ui.status_view import WIDE_ONLY, print_status

IKE_ALGORITHMS = "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024"
ESP_ALGORITHMS = "AES_GCM_16-256/MODP_2048"
# The longest states the daemons report, so the widest rows are drawn.
IKE_STATES = ["ESTABLISHED", "CONNECTING", "REKEYING", "DESTROYING"]
CHILD_STATES = ["INSTALLED", "INSTALLING", "REKEYED", "DESTROYING"]
BGP_STATES = ["Established", "OpenConfirm", "Active", "Connect"]
HEALTHS = ["healthy", "starting", "unhealthy"]
PPS = 54321.9


class PlannedLab:
    """A lab as the engine and the agents would show it, from a plan's own labels and addresses:
    each tunnel's SA with its far end's public IP, each planned session, every shared address held,
    ECMP over every tunnel of a node; states and counters as long as they get."""

    def __init__(self, plan):
        from lab.render.deploy_plan import plan_deploy
        self.plan = plan
        self.specs = {s.hostname: s for s in plan_deploy(plan, {t.name: "k" for t in plan.tunnels}).nodes}
        self.shared = {}    # shared address -> its first router
        for spec in self.specs.values():
            for entry in filter(None, spec.labels.get("lab.vrrp", "").split(",")):
                self.shared.setdefault(entry.partition("=")[2], spec.hostname)

    def containers(self, labels):
        # A host restarting (it is not read), the others running, healthy or not.
        return [ContainerInfo(s.name, n, kind, *(("restarting", None) if kind == "workload-host" else
                                                  ("running", HEALTHS[i % len(HEALTHS)])), 1, "h", s.labels)
                for i, (n, s) in enumerate(self.specs.items()) for kind in [s.labels["lab.kind"]]]

    def ike_for(self, c):
        plan = self.plan

        class Ike:
            def list_sas(self):
                sas = []
                for i, t in enumerate(plan.tunnels_of(c.node)):
                    remote = t.gateway_public_ip if c.node == t.device else t.device_public_ip
                    grown = int(PPS * time.monotonic())     # a rate of about PPS
                    sas.append(IkeSaState(t.name, IKE_STATES[i % 4], "l", str(remote), 1, [ChildSaState(
                        t.name, CHILD_STATES[i % 4], grown, grown, 100 * grown, 100 * grown, [], [], ESP_ALGORITHMS)],
                        IKE_ALGORITHMS))
                return sas
        return Ike()

    def routes_for(self, c):
        sessions = self.plan.sessions_of(c.node)
        hops = [f"{t.gateway_link_ip if c.node == t.device else t.device_link_ip} ({t.interface})"
                for t in self.plan.tunnels_of(c.node)] or ["10.1.255.4", "10.1.255.5"]

        class Routes:
            def bgp_peers(self):
                return [BgpPeerState(str(b.peer_address), b.peer_asn, BGP_STATES[i % 4], 12, 1, b.description)
                        for i, b in enumerate(sessions)]

            def bgp_next_hops(self):
                return {"10.1.0.0/16": hops, "192.168.100.0/24": hops[:1]}

            def bgp_paths(self, prefix):
                return []
        return Routes()

    def links_for(self, c):
        lab = self

        class Links:
            def kernel_option(self, option):
                return "not set", "/proc/config.gz"

            def link_kinds(self):
                return {"ipsec0": "tun"}

            def addresses(self):
                own = [str(a) for a in lab.plan.scenario.nodes[c.node].links.values()]
                return {"all": own + [a for a, holder in lab.shared.items() if holder == c.node]}
        return Links()


def status_of(scenario: str, window_s: float = 0.02):
    lab = PlannedLab(load_plan(scenario, "fast", lab="t"))
    status = collect_status("t", lab, lab.ike_for, lab.routes_for, lab.links_for, rate_window_s=window_s)
    status.guard = {"forwarded out of the lab": 0, "dropped at the lab's edge": 12345}
    status.faults_in_place = ["link-down on azure-gw-0"]
    return status


def rendered(status, width: int, wide: bool = False) -> str:
    console = Console(width=width, record=True)
    print_status(status, console, wide=wide)
    return console.export_text()


def whole(value: str, text: str) -> bool:
    """The value appears with nothing of a longer name or address glued to either side."""
    return re.search(rf"(?<![\w.\-/]){re.escape(value)}(?![\w.\-/])", text) is not None


def values_that_must_be_whole(status) -> list[str]:
    found = [status.lab]
    for g in status.gateways:
        found += [g.gateway, g.mode, *g.instances, *g.public_ips.values()]
    for v in status.vrrp:
        found += [v.group, v.address, *v.holders, *v.routers]
    for t in status.tunnels:
        settled = t.ike_state == "ESTABLISHED" and t.child_state == "INSTALLED"
        found += [t.node, t.tunnel, t.remote] + ([] if settled else [t.ike_state, t.child_state])
    for b in status.bgp:
        found += [b.node, b.peer, b.state]
    for r in status.routes:
        found += [r.node, r.prefix, *(hop.split()[0] for hop in r.next_hops)]
    for n in status.nodes:
        found += [n.node, n.kind, n.status] + ([n.health] if n.health else [])
    return found


@pytest.mark.parametrize("scenario", builtin_scenarios())
def test_status_fits_80_columns_and_cuts_no_state_or_address(scenario):
    status = status_of(scenario)
    assert len(status.tunnels) >= 2 and status.bgp and status.routes
    text = rendered(status, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    missing = [v for v in values_that_must_be_whole(status) if not whole(v, text)]
    assert missing == []
    # What is left out is said, and is left out.
    assert WIDE_ONLY in text and "MODP_1024" not in text


def test_the_many_tunnels_of_dual_redundancy_each_get_their_row_and_far_end():
    status = status_of("dual-redundancy")
    text = rendered(status, 80)
    assert len(status.tunnels) == 8     # 2 devices x 2 instances, both ends
    for t in status.tunnels:
        assert re.search(rf"│ {re.escape(t.node)} +│ {re.escape(t.tunnel)} +│ {re.escape(t.remote)} +│", text), t


def test_without_a_rate_the_narrow_view_shows_the_packet_totals():
    status = status_of("active-standby", window_s=0)
    text = rendered(status, 80)
    assert "ESP pkts in/out" in text and "pkt/s" not in text
    assert whole(f"{status.tunnels[0].packets_in}/{status.tunnels[0].packets_out}", text)


@pytest.mark.parametrize("scenario", builtin_scenarios())
def test_wide_shows_every_column_whole_at_200(scenario):
    status = status_of(scenario)
    text = rendered(status, 200, wide=True)
    assert max(len(line) for line in text.splitlines()) <= 200
    assert "…" not in text and WIDE_ONLY not in text
    missing = [v for v in values_that_must_be_whole(status) if not whole(v, text)]
    assert missing == []
    assert whole(IKE_ALGORITHMS, text) and whole(ESP_ALGORITHMS, text)
    assert "Mbit/s" in text and "prefixes received" in text
    for t in status.tunnels:
        assert whole(f"{t.packets_in}/{t.packets_out}", text) and whole(f"{t.pps_in:g}/{t.pps_out:g}", text)
    for r in status.routes:
        assert ", ".join(r.next_hops) in text


def test_wide_into_a_narrow_console_is_printed_whole_past_its_width():
    # A pipe's console is 80 columns: `--wide` there is asked for to see everything.
    text = rendered(status_of("dual-redundancy"), 80, wide=True)
    assert "…" not in text and whole(IKE_ALGORITHMS, text)
    assert max(len(line) for line in text.splitlines()) > 80
