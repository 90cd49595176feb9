"""Zone placement rules, zone targets and the zone-down fault, against fakes of the ports."""
import threading
from importlib import resources

import pytest
import yaml

from lab.failover.faults import FaultTarget, check_target, get_fault, resolve_target
from lab.model.azure import azure_rules
from lab.model.errors import LabError
from lab.model.names import container_name
from lab.model.schema import Scenario
from lab.plan.checks import check_scenario
from lab.plan.gateway_types import type_of
from lab.plan.load import load_plan, load_scenario
from lab.run.ports import ContainerInfo


def problems_of(base, change):
    """The problems of a built-in scenario with `change` made to its YAML."""
    document = yaml.safe_load((resources.files("lab") / "scenarios" / f"{base}.yaml").read_text())
    change(document)
    return check_scenario(Scenario.model_validate(document))


def set_zone(node, zone):
    def change(d):
        if zone is None:
            d["nodes"][node].pop("zone", None)
        else:
            d["nodes"][node]["zone"] = zone
    return change


# -- placement -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["zone-redundant", "zonal"])
def test_the_zone_scenarios_are_valid_and_default_to_vpngw1az(name):
    _, scenario = load_scenario(name)
    gateway = scenario.gateways["azure-gw"]
    assert gateway.sku is None and type_of(gateway).default_sku(gateway) == "VpnGw1AZ"
    assert check_scenario(scenario) == []


def test_zone_redundant_puts_its_two_instances_in_two_zones_and_leaves_the_third_empty():
    _, scenario = load_scenario("zone-redundant")
    assert [scenario.nodes[i].zone for i in scenario.gateways["azure-gw"].instances] == [1, 2]
    assert scenario.nodes["azure-vm"].zone is None
    assert problems_of("zone-redundant", set_zone("azure-gw-1", 1)) == [
        "nodes.azure-gw-1.zone: gateway azure-gw is zone-redundant: its two instances go in two different zones, "
        f"and azure-gw-0 is in zone 1 too ({azure_rules().zones.vpn_instances_source})"]


def test_a_gateway_in_zones_needs_a_zone_on_every_instance():
    assert problems_of("zone-redundant", set_zone("azure-gw-1", None)) == [
        "nodes.azure-gw-1.zone: required: gateway azure-gw is zone-redundant, so each of its instances goes in a zone"]
    assert problems_of("zonal", set_zone("azure-gw-0", None))[0].startswith("nodes.azure-gw-0.zone: required: ")


def test_zonal_puts_every_instance_in_one_zone():
    _, scenario = load_scenario("zonal")
    assert {scenario.nodes[n].zone for n in ("azure-gw-0", "azure-gw-1", "azure-vm")} == {1}
    assert problems_of("zonal", set_zone("azure-gw-1", 2)) == [
        "nodes.azure-gw-1.zone: gateway azure-gw is zonal: all its instances go in one zone (azure-gw-0's, zone 1), "
        "not zone 2"]


def test_a_regional_gateway_has_no_instance_in_a_zone():
    assert problems_of("active-active", set_zone("azure-gw-0", 1)) == [
        "nodes.azure-gw-0.zone: gateway azure-gw is regional: its instances go in no zone (make it zonal or "
        "zone-redundant)"]


@pytest.mark.parametrize("zone", [0, 4])
def test_zones_are_one_to_three(zone):
    found = problems_of("zone-redundant", set_zone("azure-gw-1", zone))
    assert len(found) == 1 and found[0].startswith(
        f"nodes.azure-gw-1.zone: {zone} is not a zone: an Azure region's zones are 1, 2, 3 (")


def test_a_zonal_workload_host_takes_a_zone_and_a_regional_kind_does_not():
    assert problems_of("active-active", set_zone("azure-vm", 3)) == []
    # The kind's own check (lab/plan/checks.py), said once: the zone rules don't repeat it.
    assert problems_of("zone-redundant", set_zone("vnet-router", 1)) == [
        "nodes.vnet-router.zone: a vnet-router is regional, it goes in no zone"]


def test_a_vpn_gateway_has_exactly_two_instances():
    def three(d):
        d["gateways"]["azure-gw"]["instances"].append("azure-gw-2")
        d["nodes"]["azure-gw-2"] = {"kind": "azure-gateway-instance", "zone": 3,
                                    "links": {"internet": "198.51.100.12", "gateway-subnet": "10.1.255.6"}}
    assert problems_of("zone-redundant", three) == [
        "gateways.azure-gw.instances: a VPN gateway has exactly two instances, 3 are given "
        f"({azure_rules().zones.vpn_instances_source})"]


@pytest.mark.parametrize("sku, needs", [
    ("VpnGw1", "needs VpnGw1AZ, its AZ peer with the same limits"),
    ("VpnGw4", "needs VpnGw4AZ, its AZ peer with the same limits"),
    ("Basic", "needs an AZ SKU (VpnGw1AZ, VpnGw2AZ, VpnGw3AZ, VpnGw4AZ, VpnGw5AZ); Basic has no AZ peer"),
])
def test_a_gateway_in_zones_refuses_a_sku_that_is_not_az(sku, needs):
    for base, placement in (("zone-redundant", "zone-redundant"), ("zonal", "zonal")):
        found = problems_of(base, lambda d: d["gateways"]["azure-gw"].update(sku=sku))
        assert found == [f"gateways.azure-gw.sku: {sku} is not an AZ SKU: a gateway in zones ({placement}) {needs} "
                         f"({azure_rules().zones.sku_source})"]
    assert problems_of("active-active", lambda d: d["gateways"]["azure-gw"].update(sku=sku)) == []


def test_az_skus_have_their_regional_peers_limits():
    limits = azure_rules().skus.limits
    assert azure_rules().skus.az_skus() == [f"VpnGw{n}AZ" for n in range(1, 6)]
    for n in range(1, 6):
        regional, az = limits[f"VpnGw{n}"], limits[f"VpnGw{n}AZ"]
        assert (regional.az, regional.az_peer, az.az) == (False, f"VpnGw{n}AZ", True)
        assert (regional.tunnels, regional.throughput_mbps) == (az.tunnels, az.throughput_mbps)
    assert (limits["Basic"].az, limits["Basic"].az_peer) == (False, None)


def place_er(zones, placement="zone-redundant", sku=None):
    def change(d):
        gateway = d["gateways"]["er-gw"]
        gateway["zones"] = placement
        if sku:
            gateway["sku"] = sku
        for node, zone in zip(gateway["instances"], zones):
            d["nodes"][node]["zone"] = zone
    return change


def test_a_zone_redundant_expressroute_gateway_spans_at_least_three_zones():
    assert problems_of("expressroute-failover", place_er([1, 2])) == [
        "gateways.er-gw.instances: a zone-redundant ExpressRoute gateway spans at least 3 zones; its instances are "
        f"in zones 1, 2 only ({azure_rules().zones.expressroute_source})"]
    assert problems_of("expressroute-failover", place_er([1, 1], "zonal")) == []


def test_an_expressroute_gateway_in_zones_needs_an_az_sku():
    found = problems_of("expressroute-failover", place_er([2, 2], "zonal", sku="Standard"))
    assert found == ["gateways.er-gw.sku: Standard is not an AZ SKU: a gateway in zones (zonal) needs one of "
                     f"ErGw1AZ, ErGw2AZ, ErGw3AZ, ErGwScale ({azure_rules().expressroute_skus.source})"]
    assert problems_of("expressroute-failover", place_er([2, 2], "zonal", sku="ErGw9")) == [
        "gateways.er-gw.sku: unknown ExpressRoute gateway SKU 'ErGw9' (known: Standard, HighPerformance, "
        "UltraPerformance, ErGw1AZ, ErGw2AZ, ErGw3AZ, ErGwScale)"]


# -- zone targets ----------------------------------------------------------------------------------
def test_a_zone_target_is_every_zonal_node_in_the_zone():
    redundant, zonal = load_plan("zone-redundant", lab="t"), load_plan("zonal", lab="t")
    assert resolve_target(redundant, "zone:1").nodes == ("azure-gw-0",)
    assert resolve_target(redundant, "zone:2").nodes == ("azure-gw-1",)
    assert resolve_target(zonal, "zone:1").nodes == ("azure-gw-0", "azure-gw-1", "azure-vm")


def test_a_zone_with_no_node_is_a_target_that_hits_nothing():
    plan = load_plan("zone-redundant", lab="t")
    assert resolve_target(plan, "zone:3").nodes == ()
    assert resolve_target(load_plan("active-active", lab="t"), "zone:1").nodes == ()


@pytest.mark.parametrize("text", ["zone:4", "zone:0", "zone:one", "zone:"])
def test_a_zone_outside_one_to_three_is_refused_in_one_line(text):
    with pytest.raises(LabError, match=rf"^--target '{text}': an Azure region's zones are 1, 2, 3 \(write zone:1 to "
                                       r"zone:3\)$"):
        resolve_target(load_plan("zone-redundant", lab="t"), text)


def test_on_premises_and_regional_nodes_are_never_in_a_zone_target():
    plan = load_plan("zone-redundant", lab="t")
    # Placed in zone 1 past the checks (which refuse it): a zone target still leaves them alone.
    forced = {n: spec.model_copy(update={"zone": 1}) if n in ("onprem-0", "vnet-router") else spec
              for n, spec in plan.scenario.nodes.items()}
    plan = plan.model_copy(update={"scenario": plan.scenario.model_copy(update={"nodes": forced})})
    assert resolve_target(plan, "zone:1").nodes == ("azure-gw-0",)


# -- the zone-down fault ---------------------------------------------------------------------------
class Ports:
    """Fakes of the runtime and netlink ports, logging what the fault does (kills come from threads)."""

    def __init__(self):
        self.log = []
        self.killing = set()
        self.lock = threading.Lock()
        self.started = 0

    def containers(self, labels):
        node = labels.get("lab.node", "azure-gw-0")
        return [ContainerInfo(container_name("t", node), node, "workload-host", "running", "healthy", 42, "h")]

    def kill(self, name, signal_name="SIGKILL"):
        with self.lock:
            self.log.append(("kill", name, signal_name))

    def start(self, name):
        self.log.append(("start", name))

    def cut(self, name, on):
        self.log.append(("cut" if on else "uncut", name))

    def fence(self, on):
        with self.lock:
            self.log.append(("fence",) if on else ("unfence",))


def wire(plan, text, ports):
    def after_start():
        ports.started += 1
    return FaultTarget(plan, check_target(plan, get_fault("zone-down"), text), ports, lambda c: ports,
                       lambda c: ports, lambda c: ports, after_start=after_start)


def test_zone_down_on_an_empty_zone_is_a_non_event_and_says_so():
    plan, ports = load_plan("zone-redundant", "fast", lab="t"), Ports()
    target = wire(plan, "zone:3", ports)
    fault = get_fault("zone-down")
    assert fault.inject(target) == "zone 3 holds no node of this lab: nothing went down"
    assert fault.restore(target) == "zone 3 held no node of this lab: nothing to bring back"
    assert ports.log == [] and ports.started == 0


def test_zone_down_kills_the_zones_gateway_instance_and_the_restore_starts_it():
    plan, ports = load_plan("zone-redundant", "fast", lab="t"), Ports()
    target = wire(plan, "zone:1", ports)
    fault = get_fault("zone-down")
    assert fault.inject(target) == "azure-gw-0: cut off on every link, then SIGKILLed"
    assert ports.log == [("cut", "internet"), ("cut", "gateway-subnet"), ("kill", "lab-t-azure-gw-0", "SIGKILL")]
    ports.log.clear()
    assert fault.restore(target) == "container started again"
    assert ports.log == [("start", "lab-t-azure-gw-0")] and ports.started == 1


def test_zone_down_on_a_zonal_deployment_takes_everything_and_isolates_the_probe_host():
    plan, ports = load_plan("zonal", "fast", lab="t"), Ports()
    target = wire(plan, "zone:1", ports)
    fault = get_fault("zone-down")
    detail = fault.inject(target)
    assert detail == ("azure-gw-0: cut off on every link, then SIGKILLed; azure-gw-1: cut off on every link, then "
                      "SIGKILLed; azure-vm: cut off on every link (it carries the probes, so it is isolated, not killed)")
    assert sorted(ports.log) == [("cut", "gateway-subnet"), ("cut", "gateway-subnet"), ("cut", "internet"),
                                 ("cut", "internet"), ("cut", "vnet-workload"), ("kill", "lab-t-azure-gw-0", "SIGKILL"),
                                 ("kill", "lab-t-azure-gw-1", "SIGKILL")]
    ports.log.clear()
    fault.restore(target)
    assert ports.log == [("start", "lab-t-azure-gw-0"), ("start", "lab-t-azure-gw-1"), ("uncut", "vnet-workload")]


def test_zone_down_is_unplanned_and_judged_against_azures_zone_figure():
    fault = get_fault("zone-down")
    assert not fault.planned
    for profile in ("azure", "fast"):
        target = load_plan("zone-redundant", profile, lab="t").target_for("zone-down", fault.planned)
        assert target.value == 60 and "typically last up to one minute" in target.source
        assert "reliability-virtual-network-gateway" in target.source


def test_zone_down_takes_only_a_zone_and_defaults_to_the_first_zoned_instances():
    fault = get_fault("zone-down")
    assert fault.default_target(load_plan("zone-redundant", lab="t")) == "zone:1"
    assert fault.default_target(load_plan("zonal", lab="t")) == "zone:1"
    assert fault.default_target(load_plan("active-active", lab="t")) is None
    with pytest.raises(LabError, match=r"^fault zone-down takes a zone: --target zone:N \(1 to 3\), not 'azure-gw-0'$"):
        check_target(load_plan("zone-redundant", lab="t"), fault, "azure-gw-0")
    with pytest.raises(LabError, match=r"not 'azure-gw-0' \(no gateway instance of scenario active-active is in a "
                                       r"zone\)$"):
        check_target(load_plan("active-active", lab="t"), fault, "azure-gw-0")
