"""Each fault's actions and its restore, against fakes of the ports, in order."""
import pytest

from lab.errors import LabError
from lab.faults import FAULTS, FaultTarget, get_fault
from lab.ports import ContainerInfo
from lab.topology import load_plan


class Recorder:
    """Fakes of the runtime, VICI, FRR and netlink ports, writing one shared log."""

    def __init__(self):
        self.log = []

    # runtime
    def containers(self, labels):
        node = labels.get("lab.node", "azure-gw-0")
        return [ContainerInfo(f"lab-t-{node}", node, "azure-gateway-instance", "running", "healthy", 42, "h")]

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


@pytest.fixture
def target():
    plan = load_plan("active-standby", "fast", lab="t")
    fake = Recorder()
    return FaultTarget(plan, "azure-gw-0", fake, lambda c: fake, lambda c: fake, lambda c: fake), fake


def test_every_fault_is_registered_with_a_summary():
    assert list(FAULTS) == ["kill", "maintenance", "pause", "link-down", "blackhole"]
    assert [f.name for f in FAULTS.values() if f.planned] == ["maintenance"]
    assert all(f.summary for f in FAULTS.values())


def test_unknown_fault_is_one_line_listing_the_known_ones():
    with pytest.raises(LabError, match="unknown fault 'reboot': choose from kill, maintenance, pause, link-down, blackhole"):
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
    ("pause", [("pause", "lab-t-azure-gw-0")],
     [("unpause", "lab-t-azure-gw-0"), ("exec", "lab-t-azure-gw-0", "lab-vrrp stop"),
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


def test_a_fault_on_a_node_that_is_no_gateway_instance_is_refused():
    plan = load_plan("active-standby", lab="t")
    fake = Recorder()
    t = FaultTarget(plan, "onprem-0", fake, lambda c: fake, lambda c: fake, lambda c: fake)
    with pytest.raises(LabError, match="onprem-0 is not a gateway instance"):
        get_fault("link-down").inject(t)
