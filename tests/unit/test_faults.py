"""Each fault's actions and its restore, against fakes of the ports, in order."""
import pytest

from lab.model.errors import LabError
from lab.model.names import container_name
from lab.failover.faults import FAULTS, FaultTarget, check_target, get_fault, resolve_target
from lab.run.ports import ContainerInfo
from lab.plan.load import load_plan


class Recorder:
    """Fakes of the runtime, VICI, FRR and netlink ports, writing one shared log."""

    def __init__(self):
        self.log = []

    # runtime
    def containers(self, labels):
        node = labels.get("lab.node", "azure-gw-0")
        return [ContainerInfo(container_name("t", node), node, "azure-gateway-instance", "running", "healthy", 42, "h")]

    def kill(self, name, signal_name="SIGKILL"):
        self.log.append(("kill", name, signal_name))

    def start(self, name):
        self.log.append(("start", name))

    def pause(self, name):
        self.log.append(("pause", name))

    def unpause(self, name):
        self.log.append(("unpause", name))

    def exec(self, name, argv, timeout_s=10.0):
        self.log.append(("exec", name, " ".join(argv)))
        return 0, ""

    # VICI, FRR, netlink
    def terminate(self, ike, timeout_s):
        self.log.append(("ike-delete", ike))

    def restart(self, name):
        self.log.append(("restart", name))

    def shut_down_peer(self, asn, peer, bfd_local):
        self.log.append(("bgp-shutdown", asn, peer, bfd_local))

    def set_link(self, name, up):
        self.log.append(("link-up" if up else "link-down", name))

    def block_udp_ports(self, ports, blocked):
        self.log.append(("block" if blocked else "unblock", tuple(ports)))

    def fence(self, on):
        self.log.append(("fence" if on else "unfence",))

    def cut(self, name, on):
        self.log.append(("cut" if on else "uncut", name))


@pytest.fixture
def target():
    plan = load_plan("active-standby", "fast", lab="t")
    fake = Recorder()
    return wire(plan, "azure-gw-0", fake), fake


def wire(plan, text, fake):
    return FaultTarget(plan, resolve_target(plan, text), fake, lambda c: fake, lambda c: fake, lambda c: fake)


def test_every_fault_is_registered_with_a_summary():
    assert list(FAULTS)[:5] == ["kill", "maintenance", "pause", "link-down", "blackhole"]
    assert {"circuit-down", "msee-down", "peering-location-down", "zone-down"} <= set(FAULTS)
    assert [f.name for f in FAULTS.values() if f.planned] == ["maintenance"]
    assert all(f.summary for f in FAULTS.values())


def test_unknown_fault_is_one_line_listing_the_known_ones():
    with pytest.raises(LabError, match="unknown fault 'reboot': choose from kill, maintenance, pause, link-down, blackhole, "):
        get_fault("reboot")


def test_maintenance_drains_bgp_and_deletes_ike_before_giving_up_the_ip(target):
    t, fake = target
    get_fault("maintenance").inject(t)
    assert fake.log == [
        ("block", (500,)),
        ("bgp-shutdown", 65515, "10.10.255.1", "10.1.255.30"),
        ("ike-delete", "onprem-0"),
        ("exec", "lab-t-azure-gw-0", "lab-vrrp stop"),
    ]
    fake.log.clear()
    get_fault("maintenance").restore(t)
    assert fake.log == [("restart", "lab-t-azure-gw-0")]


@pytest.mark.parametrize("fault, injected, restored", [
    ("kill", [("kill", "lab-t-azure-gw-0", "SIGKILL")], [("start", "lab-t-azure-gw-0")]),
    # Fenced before it freezes; thawed, it leaves VRRP while still fenced, then rejoins.
    ("pause", [("fence",), ("pause", "lab-t-azure-gw-0")],
     [("unpause", "lab-t-azure-gw-0"), ("exec", "lab-t-azure-gw-0", "lab-vrrp stop"), ("unfence",),
      ("exec", "lab-t-azure-gw-0", "lab-vrrp start")]),
    ("link-down", [("link-down", "internet")], [("link-up", "internet")]),
    ("blackhole", [("block", (500, 4500))], [("unblock", (500, 4500))]),
])
def test_unplanned_faults_and_their_restores(target, fault, injected, restored):
    t, fake = target
    get_fault(fault).inject(t)
    assert fake.log == injected
    fake.log.clear()
    get_fault(fault).restore(t)
    assert fake.log == restored


def test_targets_are_data_resolved_through_the_plan():
    plan = load_plan("dual-redundancy", lab="t")
    assert resolve_target(plan, "azure-gw-1").nodes == ("azure-gw-1",)
    assert resolve_target(plan, "onprem-1").nodes == ("onprem-1",)
    assert resolve_target(plan, "gateway:azure-gw").nodes == ("azure-gw-0", "azure-gw-1")
    link = resolve_target(plan, "link:onprem-0/onprem-lan")
    assert (link.nodes, link.interface) == (("onprem-0",), "onprem-lan")


@pytest.mark.parametrize("text, message", [
    ("vnet-router", "'vnet-router' is not a node of scenario dual-redundancy that faults can hit"),
    ("gateway:nope", "no gateway 'nope'"),
    ("zone:4", "an Azure region's zones are 1, 2, 3"),
    ("link:onprem-0/gateway-subnet", "onprem-0 has no link on 'gateway-subnet' \\(its links: internet, onprem-lan\\)"),
    ("link:nobody/internet", "no node 'nobody'"),
    ("rack:3", "unknown target form 'rack'"),
])
def test_a_target_that_names_nothing_is_one_line(text, message):
    with pytest.raises(LabError, match=message):
        resolve_target(load_plan("dual-redundancy", lab="t"), text)


def in_zone(plan, zone, *nodes):
    """The plan with `nodes` placed in `zone`."""
    placed = {n: spec.model_copy(update={"zone": zone}) if n in nodes else spec
              for n, spec in plan.scenario.nodes.items()}
    return plan.model_copy(update={"scenario": plan.scenario.model_copy(update={"nodes": placed})})


def test_each_fault_refuses_a_target_it_cannot_hit():
    plan = load_plan("dual-redundancy", lab="t")
    for text in ("onprem-0", "gateway:azure-gw"):
        with pytest.raises(LabError, match="takes one gateway instance out of service"):
            check_target(plan, get_fault("maintenance"), text)
    # A zone holds only what can be zonal: a VNet router placed there by hand is regional all the same.
    zoned = in_zone(plan, 1, "azure-gw-0", "onprem-host", "vnet-router")
    assert resolve_target(zoned, "zone:1").nodes == ("azure-gw-0", "onprem-host")
    with pytest.raises(LabError, match="onprem-host runs no IKE"):
        check_target(zoned, get_fault("blackhole"), "zone:1")
    with pytest.raises(LabError, match="onprem-host has no internet-facing link"):
        check_target(zoned, get_fault("link-down"), "zone:1")
    assert check_target(zoned, get_fault("kill"), "zone:1").nodes == ("azure-gw-0", "onprem-host")
    with pytest.raises(LabError, match="fault kill hits nodes, not links"):
        check_target(plan, get_fault("kill"), "link:onprem-0/internet")
    assert check_target(plan, get_fault("link-down"), "link:onprem-0/onprem-lan").interface == "onprem-lan"


def test_active_active_maintenance_drains_without_vrrp_and_a_gateway_kill_hits_every_instance():
    plan = load_plan("dual-redundancy", "fast", lab="t")
    fake = Recorder()
    get_fault("maintenance").inject(wire(plan, "azure-gw-0", fake))
    assert fake.log == [
        ("block", (500,)),
        ("bgp-shutdown", 65515, "10.10.255.1", "169.254.21.1"),
        ("bgp-shutdown", 65515, "10.20.255.1", "169.254.21.1"),
        ("ike-delete", "onprem-0-0"),
        ("ike-delete", "onprem-1-0"),
    ]
    fake.log.clear()
    done = get_fault("kill").inject(wire(plan, "gateway:azure-gw", fake))
    assert fake.log == [("kill", "lab-t-azure-gw-0", "SIGKILL"), ("kill", "lab-t-azure-gw-1", "SIGKILL")]
    assert done == "azure-gw-0: container SIGKILLed; azure-gw-1: container SIGKILLed"


def test_a_device_fault_cuts_its_own_internet_link_and_a_lan_router_rejoins_vrrp():
    plan = load_plan("dual-redundancy", lab="t")
    fake = Recorder()
    get_fault("link-down").inject(wire(plan, "onprem-1", fake))
    get_fault("pause").restore(wire(plan, "onprem-1", fake))
    assert fake.log == [("link-down", "internet"), ("unpause", "lab-t-onprem-1"),
                        ("exec", "lab-t-onprem-1", "lab-vrrp stop"), ("unfence",),
                        ("exec", "lab-t-onprem-1", "lab-vrrp start")]


def test_a_profile_may_give_one_fault_a_target_of_its_own():
    plan = load_plan("active-standby", "azure", lab="t")
    assert plan.target_for("kill", planned=False).value == 90
    assert plan.target_for("maintenance", planned=True).value == 5
    targets = plan.profile.targets.model_copy(update={"per_fault": {
        "blackhole": plan.profile.targets.planned_s.model_copy(update={"value": 60.0, "source": "a test", "also": []})}})
    custom = plan.model_copy(update={"profile": plan.profile.model_copy(update={"targets": targets})})
    assert (custom.target_for("blackhole", planned=False).value, custom.target_for("kill", planned=False).value) == (60, 90)
