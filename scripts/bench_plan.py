#!/usr/bin/env python3
"""Benchmark: seconds to plan a lab of N branch sites, with no Docker (load → check → resolve → plan_segments).

Each site is the active-standby scenario's on-premises side once more: a VPN
device, a workload host, their LAN and one tunnel (--devices 2: two devices
sharing the LAN's first hop, as in dual-redundancy). Every 100 tunnels get a
hub of their own (an active-standby gateway on VpnGw5, the SKU that takes 100,
with its VNet router and VM), so every scenario is one Azure takes. Sites run
25, 50, 100, 200 and the most lab/model/limits.yaml takes. Columns: load+check
(read, scan, validate, check), resolve (tunnels, sessions, VRRP, segments on
an empty host), segments (plan_segments alone, with a /16 of the transport
pool already taken by others), and x(N/2), total(N) / total(N/2): planning
that is linear in the sites reads about 2.

Then plan_segments alone, past the lab's limits, where it used to grow with
the cube of the network count (250 networks: 13.5 s, 1,000: over 300 s).
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml

from lab.model.azure import azure_rules
from lab.model.limits import lab_limits
from lab.model.schema import Scenario
from lab.plan.segments import plan_segments
from lab.plan.load import load_profile, load_scenario
from lab.plan.resolve import resolve

SKU = "VpnGw5"
SITES = (25, 50, 100, 200)
BEYOND_LIMITS = (250, 500, 1000, 2000)
INTERNET = IPv4Network("198.51.0.0/16")   # the built-in's 198.51.100.0/24, grown to hold every device
FIRST_DEVICE = IPv4Address("198.51.4.0")  # devices from here on, below the hubs' 198.51.100+h.x
SITE_LANS = IPv4Network("10.128.0.0/9")   # a /24 a site, clear of the hubs' 10.1+h.0.0/16


def _hub(h: int) -> tuple[dict, dict, dict]:
    """Hub h's networks, gateway and nodes: the active-standby scenario's Azure side, shifted by h."""
    suffix = f"-{h}" if h else ""
    # Network names become interface names: 15 characters at most.
    gw_net, vnet = (f"gw-subnet{suffix}", f"vnet{suffix}") if h else ("gateway-subnet", "vnet-workload")
    inst, router = [f"azure-gw{suffix}-0", f"azure-gw{suffix}-1"], f"vnet-router{suffix}"
    public, inside = f"198.51.{100 + h}", f"10.{1 + h}"
    networks = {gw_net: {"subnet": f"{inside}.255.0/27"}, vnet: {"subnet": f"{inside}.1.0/24"}}
    gateway = {"mode": "active-standby", "asn": 65515, "instances": inst, "sku": SKU, "vnet_router": router,
               "public_ip": {"network": "internet", "address": f"{public}.100"},
               "bgp_peer_ip": {"network": gw_net, "address": f"{inside}.255.30"}}
    nodes = {name: {"kind": "azure-gateway-instance",
                    "links": {"internet": f"{public}.{10 + i}", gw_net: f"{inside}.255.{4 + i}"}}
             for i, name in enumerate(inst)}
    nodes[router] = {"kind": "vnet-router", "links": {gw_net: f"{inside}.255.10", vnet: f"{inside}.1.1"},
                     "asn": 65515, "address_space": [f"{inside}.0.0/16"]}
    nodes[f"azure-vm{suffix}"] = {"kind": "workload-host", "links": {vnet: f"{inside}.1.4"}, "router": f"{inside}.1.1"}
    return networks, {f"azure-gw{suffix}": gateway}, nodes


def branch_scenario(sites: int, devices: int = 1) -> dict:
    """N branch sites, each a LAN with a workload host and `devices` VPN devices (two share the
    LAN's first hop by VRRP, as in dual-redundancy), each device with its tunnel to its site's hub."""
    per_hub = azure_rules().skus.limits[SKU].tunnels // devices
    doc: dict = {"name": "bench-plan", "description": f"{sites} branch sites", "profile": "azure",
                 "networks": {"internet": {"subnet": str(INTERNET)}}, "tunnel_pool": "100.64.0.0/16",
                 "gateways": {}, "nodes": {}, "tunnels": [], "first_hop": {},
                 "probes": [["site-0-host", "azure-vm"]]}
    for h in range(math.ceil(sites / per_hub)):
        networks, gateways, nodes = _hub(h)
        doc["networks"].update(networks)
        doc["gateways"].update(gateways)
        doc["nodes"].update(nodes)
    for k in range(sites):
        lan_name, lan = f"lan-{k}", IPv4Network((int(SITE_LANS.network_address) + 256 * k, 24))
        hub = k // per_hub
        routers = [f"site-{k}-{d}" for d in range(devices)]
        for d, device in enumerate(routers):
            n = k * devices + d
            doc["nodes"][device] = {"kind": "onprem-vpn-device", "asn": 4200000000 + n,
                                    "links": {"internet": str(FIRST_DEVICE + n),
                                              lan_name: str(lan[1] if devices == 1 else lan[2 + d])},
                                    "bgp_peer_ip": str(IPv4Address("10.250.0.1") + n), "address_space": [str(lan)]}
            doc["tunnels"].append({"name": device, "device": device, "gateway": f"azure-gw-{hub}" if hub else "azure-gw"})
        if devices > 1:
            doc["first_hop"][lan_name] = {"network": lan_name, "address": str(lan[1]), "routers": routers}
        doc["networks"][lan_name] = {"subnet": str(lan)}
        doc["nodes"][f"site-{k}-host"] = {"kind": "workload-host", "links": {lan_name: str(lan[10])},
                                          "router": str(lan[1])}
    return doc


def largest_within_limits(devices: int) -> int:
    """The most sites whose nodes, networks and tunnels stay within lab/model/limits.yaml."""
    limits, sites = lab_limits(), 1
    while True:
        doc = branch_scenario(sites + 1, devices)
        if (len(doc["nodes"]) > limits.nodes.value or len(doc["networks"]) > limits.networks.value
                or len(doc["tunnels"]) > limits.tunnels.value):
            return sites
        sites += 1


def _best_of(runs: int, step) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(runs):
        start = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - start)
    return best, result


def _ratio(seconds: dict[int, float], n: int) -> str:
    return f"{seconds[n] / seconds[n // 2]:.2f}" if n % 2 == 0 and n // 2 in seconds else "-"


def bench_sites(sites: list[int], devices: int, runs: int, folder: Path) -> None:
    profile = load_profile("azure")
    print(f"{'sites':>5} {'nodes':>5} {'nets':>5} {'tunnels':>7} {'KB':>6} {'load+check':>10} {'resolve':>8} "
          f"{'segments':>8} {'total s':>8} {'x(N/2)':>6}")
    totals: dict[int, float] = {}
    for n in sites:
        path = folder / f"sites-{n}.yaml"
        doc = branch_scenario(n, devices)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        load_s, (_, scenario) = _best_of(runs, lambda: load_scenario(str(path)))
        resolve_s, _ = _best_of(runs, lambda: resolve(scenario, profile, "bench"))
        # A host whose first /16 of the pool others hold: the old scan crossed it block by block.
        taken = [IPv4Network("172.28.0.0/16")]
        segments_s, _ = _best_of(runs, lambda: plan_segments(scenario, "bench", taken))
        totals[n] = load_s + resolve_s
        print(f"{n:>5} {len(doc['nodes']):>5} {len(doc['networks']):>5} {len(doc['tunnels']):>7} "
              f"{path.stat().st_size / 1024:>6.0f} {load_s:>10.3f} {resolve_s:>8.3f} {segments_s:>8.3f} "
              f"{totals[n]:>8.3f} {_ratio(totals, n):>6}")


def bench_segments_alone(sites: list[int], runs: int) -> None:
    print(f"\nplan_segments alone, past the limits (a scenario built in memory, unchecked):\n"
          f"{'sites':>5} {'nets':>5} {'seconds':>8} {'x(N/2)':>6}")
    seconds: dict[int, float] = {}
    for n in sites:
        scenario = Scenario.model_validate(branch_scenario(n))
        seconds[n], _ = _best_of(runs, lambda: plan_segments(scenario, "bench", []))
        print(f"{n:>5} {len(scenario.networks):>5} {seconds[n]:>8.3f} {_ratio(seconds, n):>6}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="*", help=f"default: {', '.join(map(str, SITES))} and the most "
                        "the limits take")
    parser.add_argument("--beyond", type=int, nargs="*", default=list(BEYOND_LIMITS),
                        help="sites for plan_segments alone (no limits apply)")
    parser.add_argument("--devices", type=int, choices=(1, 2), default=1, help="VPN devices a site")
    parser.add_argument("--runs", type=int, default=3, help="each figure is the best of this many")
    args = parser.parse_args()
    sites = args.sites or [*SITES, largest_within_limits(args.devices)]
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as folder:
        bench_sites(sites, args.devices, args.runs, Path(folder))
    bench_segments_alone(args.beyond, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
