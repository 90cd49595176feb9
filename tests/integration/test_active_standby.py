"""The default lab, for real: IKEv2 with userspace ESP, eBGP over it, VRRP standby."""
import threading
import time


from lab.run import lifecycle
from lab.model.events import EventStream, Recorder, Stage, StageChanged
from lab.adapters.frr_route import FrrRoute
from lab.render.deploy_plan import IMAGE
from lab.failover.runner import fail_back
from lab.run.lifecycle import CONVERGED_WITHIN_S, HEALTHY_WITHIN_S

OUTSIDE = ["192.0.2.1", "203.0.113.1", "1.1.1.1"]


def container(plan, node):
    return plan.nodes[node].container


def ping(adapters, plan, src, dst, count=5):
    code, output = adapters.runtime.exec(container(plan, src), ["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst],
                                         timeout_s=20)
    return code, output


def tunnel_row(status, node):
    rows = [t for t in status.tunnels if t.node == node]
    assert len(rows) == 1, status.tunnels
    return rows[0]


def test_lab_converges_within_bound(running_lab):
    plan, status, elapsed = running_lab
    assert status.converged, status.unconverged_reasons()
    assert elapsed < HEALTHY_WITHIN_S + CONVERGED_WITHIN_S
    assert "userspace ESP" in status.data_plane
    assert tunnel_row(status, "onprem-0").ike_state == "ESTABLISHED"
    assert tunnel_row(status, "onprem-0").child_state == "INSTALLED"
    assert status.gateways[0].active == ["azure-gw-0"]
    onprem_bgp = [b for b in status.bgp if b.node == "onprem-0"]
    assert [(b.state, b.prefixes_received > 0) for b in onprem_bgp] == [("Established", True)]


def test_esp_counters_rise_while_hosts_ping(running_lab, adapters):
    plan, _, _ = running_lab
    before = lifecycle.read_status(plan.lab, adapters)
    code, output = ping(adapters, plan, "onprem-host", "10.1.1.4", count=5)
    assert code == 0, output
    code, output = ping(adapters, plan, "azure-vm", "192.168.10.10", count=5)
    assert code == 0, output
    after = lifecycle.read_status(plan.lab, adapters)
    for node in ("onprem-0", "azure-gw-0"):
        assert tunnel_row(after, node).packets_out - tunnel_row(before, node).packets_out >= 10
        assert tunnel_row(after, node).packets_in - tunnel_row(before, node).packets_in >= 10


def test_pings_cross_the_internet_only_as_esp(running_lab, adapters):
    """On the internet segment the pings appear as UDP-encapsulated ESP, never as ICMP."""
    plan, _, _ = running_lab
    captures = {}

    def capture(name, expression):
        captures[name] = adapters.runtime.exec(
            container(plan, "onprem-0"),
            ["tcpdump", "-l", "-n", "-i", "internet", "-c", "200", expression], timeout_s=6)

    threads = [threading.Thread(target=capture, args=("esp", "udp port 4500")),
               threading.Thread(target=capture, args=("icmp", "icmp"))]
    for t in threads:
        t.start()
    time.sleep(1.0)  # let tcpdump open its capture before the pings start
    ping(adapters, plan, "onprem-host", "10.1.1.4", count=5)
    for t in threads:
        t.join()
    assert "UDP-encap" in captures["esp"][1] and "ESP(spi=" in captures["esp"][1], captures["esp"][1]
    assert "ICMP" not in captures["icmp"][1], captures["icmp"][1]


def test_bgp_routes_on_both_sides(running_lab, adapters):
    plan, _, _ = running_lab
    onprem = FrrRoute("onprem-0", container(plan, "onprem-0"), adapters.runtime).routes()
    assert onprem.get("10.1.0.0/16") == ["bgp"]
    vnet = FrrRoute("vnet-router", container(plan, "vnet-router"), adapters.runtime).routes()
    assert vnet.get("192.168.10.0/24") == ["bgp"]


def test_forwarded_traffic_crosses_and_nothing_can_leave(running_lab, adapters):
    plan, _, _ = running_lab
    # Routed through onprem-0, the tunnel, azure-gw-0 and vnet-router.
    code, output = ping(adapters, plan, "onprem-host", "10.1.1.4", count=3)
    assert code == 0 and " 0% packet loss" in output, output
    # No node has a route off the lab: a route lookup sends nothing.
    for c in adapters.runtime.containers({"lab.name": plan.lab}):
        links = adapters.links_for(c)
        for address in OUTSIDE:
            assert links.route_lookup(address) is None, f"{c.node} can route to {address}"


def test_up_again_is_idempotent(running_lab, adapters):
    plan, _, _ = running_lab
    events = EventStream()
    seen = Recorder()
    events.subscribe(seen)
    before = {c.name: c.pid for c in adapters.runtime.containers({"lab.name": plan.lab})}
    status = lifecycle.up(plan, adapters, events)
    after = {c.name: c.pid for c in adapters.runtime.containers({"lab.name": plan.lab})}
    assert status.converged
    assert before == after
    assert sum(e.stage is Stage.CREATING_NODES and "unchanged" in e.detail for e in seen.of(StageChanged)) == len(plan.nodes)


def test_standby_takes_over_when_the_active_steps_down(running_lab, adapters):
    plan, _, _ = running_lab
    # Graceful step-down: keepalived leaves with a priority-0 advert, the
    # notify hook deletes the IKE_SA, and azure-gw-1 takes both addresses.
    code, output = adapters.runtime.exec(container(plan, "azure-gw-0"), ["pkill", "-TERM", "-x", "keepalived"])
    assert code == 0, output

    def not_failed_over():
        status = lifecycle.read_status(plan.lab, adapters)
        missing = [] if status.gateways[0].active == ["azure-gw-1"] else [f"active: {status.gateways[0].active}"]
        sessions = [b for b in status.bgp if b.node == "onprem-0" or (b.node == "vnet-router" and b.peer == "10.1.255.5")]
        missing += [f"{b.node} BGP {b.peer}: {b.state}, {b.prefixes_received} prefixes" for b in sessions
                    if b.state != "Established" or b.prefixes_received == 0]
        gw1 = [t for t in status.tunnels if t.node == "azure-gw-1" and t.child_state == "INSTALLED"]
        if not gw1:
            missing.append(f"no tunnel on azure-gw-1: {status.tunnels}")
        return missing

    lifecycle.wait_for("takeover by azure-gw-1", not_failed_over, within_s=90)
    code, output = ping(adapters, plan, "onprem-host", "10.1.1.4", count=3)
    assert code == 0, output
    status = lifecycle.read_status(plan.lab, adapters)
    assert not [t for t in status.tunnels if t.node == "azure-gw-0"], "the old active still holds an IKE_SA"
    # Tests run in any order: leave the lab as the others expect it, azure-gw-0 active.
    adapters.runtime.exec(container(plan, "azure-gw-0"), ["lab-vrrp", "start"])
    fail_back(plan, adapters, {"azure-gw": ["azure-gw-0"]})


def host_net(adapters, script):
    """A shell script in the engine host's network namespace (NET_ADMIN only)."""
    return adapters.runtime.client.containers.run(IMAGE, ["sh", "-c", script], entrypoint=[], network_mode="host",
                                                  cap_drop=["ALL"], cap_add=["NET_ADMIN"], remove=True)


# A stand-in for the host's uplink that keeps everything on this machine: a veth pair in the host's
# namespace that isn't a Docker bridge (Docker's own rules let bridge traffic out to such a link),
# on a benchmarking prefix (RFC 2544) that is routed nowhere.
UPLINK, UPLINK_PEER, UPLINK_NET, OUTSIDE_ADDRESS = "azltest0", "azltest1", "198.18.255.252/30", "198.18.255.254"


def test_the_host_drops_what_a_node_routes_off_the_lab(running_lab, adapters):
    """Even a node that does route to the host (its Docker address and route put back by hand)
    gets nothing forwarded towards an uplink: the lab's guard drops it, and counts it."""
    plan, _, _ = running_lab
    placed = lifecycle.place_segments(plan, adapters)
    segment = placed.segments["onprem-lan"]
    node = container(plan, "onprem-host")
    transport = f"{segment.attachments['onprem-host']}/{segment.subnet.prefixlen}"
    host_net(adapters, f"ip link add {UPLINK} type veth peer name {UPLINK_PEER} && "
                       f"ip addr add {UPLINK_NET.replace('252/', '253/')} dev {UPLINK} && "
                       f"ip link set {UPLINK_PEER} up && ip link set {UPLINK} up")
    try:
        before = adapters.host.counters(f"azlab-{plan.lab}")
        script = (f"ip addr add {transport} dev onprem-lan && "
                  f"ip route add {OUTSIDE_ADDRESS}/32 via {segment.bridge_address} && "
                  f"ping -c 3 -i 0.2 -W 1 {OUTSIDE_ADDRESS}; "
                  f"ip route del {OUTSIDE_ADDRESS}/32; ip addr del {transport} dev onprem-lan")
        code, output = adapters.runtime.exec(node, ["bash", "-c", script], timeout_s=20)
        assert "0 received" in output, output
        after = adapters.host.counters(f"azlab-{plan.lab}")
    finally:
        host_net(adapters, f"ip link del {UPLINK}")
    assert after["out of the lab"] >= before["out of the lab"] + 3
    assert after["forwarded out of the lab"] == before["forwarded out of the lab"] == 0


def test_nodes_have_no_name_service_path_out(running_lab, adapters):
    plan, _, _ = running_lab
    node = container(plan, "azure-vm")
    code, resolv = adapters.runtime.exec(node, ["cat", "/etc/resolv.conf"])
    assert "nameserver" not in resolv, resolv
    # A lookup sent straight to Docker's embedded resolver is dropped in the node.
    query = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(1)\ntry:\n"
             "    s.sendto(b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com"
             "\\x00\\x00\\x01\\x00\\x01', ('127.0.0.11', 53))\n    s.recv(512)\n    print('answered')\n"
             "except OSError as e:\n    print('no answer', e)")
    code, output = adapters.runtime.exec(node, ["python3", "-c", query])
    assert "no answer" in output, output
    code, rules = adapters.runtime.exec(node, ["nft", "list", "table", "ip", "lab-isolation"])
    assert "counter packets 0 " not in rules, rules


def test_nat_is_off_on_every_lab_network(running_lab, adapters):
    plan, _, _ = running_lab
    for net in adapters.runtime.client.networks.list(filters={"label": f"lab.name={plan.lab}"}):
        options = net.attrs["Options"]
        assert options["com.docker.network.bridge.enable_ip_masquerade"] == "false", net.name
        assert options["com.docker.network.bridge.name"].startswith(plan.bridge_prefix), net.name
