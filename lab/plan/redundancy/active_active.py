"""active-active: each instance has its own public IP and BGP peer IP and both
carry traffic; each device builds a tunnel and a BGP session to each, and
routing (BGP multipath, ECMP) spreads flows over them. Losing an instance
costs the flows on its tunnels until its peers withdraw its paths."""
from __future__ import annotations

from ipaddress import IPv4Network

from lab.model.schema import Gateway, Scenario
from lab.plan.redundancy.base import GatewayView, InstanceAddress, Strategy

# Azure's custom APIPA BGP address range for VPN gateways.
APIPA_RANGE = (IPv4Network("169.254.21.0/24"), IPv4Network("169.254.22.0/24"))


class ActiveActive(Strategy):
    mode = "active-active"
    summary = "each instance has its own public IP and BGP peer IP; both carry traffic (ECMP)"
    shares_tunnels = False
    multipath = True

    def check(self, s: Scenario, name: str, gw: Gateway) -> list[str]:
        problems = [f"gateways.{name}.{field}.address: an active-active gateway has no shared address "
                    f"(each instance uses its own on {getattr(gw, field).network})"
                    for field in ("public_ip", "bgp_peer_ip") if getattr(gw, field).address is not None]
        if gw.apipa_bgp_ips and len(gw.apipa_bgp_ips) != len(gw.instances):
            problems.append(f"gateways.{name}.apipa_bgp_ips: one per instance ({len(gw.instances)}), "
                            f"{len(gw.apipa_bgp_ips)} given")
        if len(set(gw.apipa_bgp_ips)) != len(gw.apipa_bgp_ips):
            problems.append(f"gateways.{name}.apipa_bgp_ips: each instance needs its own address")
        devices = {spec.bgp_peer_ip: n for n, spec in s.nodes.items() if spec.bgp_peer_ip is not None}
        for i, address in enumerate(gw.apipa_bgp_ips):
            if address in devices:
                problems.append(f"gateways.{name}.apipa_bgp_ips[{i}]: {address} is nodes.{devices[address]}'s "
                                "bgp_peer_ip")
            if not any(address in r for r in APIPA_RANGE):
                problems.append(f"gateways.{name}.apipa_bgp_ips[{i}]: {address} is outside "
                                "169.254.21.0 - 169.254.22.255, Azure's APIPA range for VPN gateways")
        return problems

    def addresses(self, s: Scenario, gw: Gateway) -> dict[str, InstanceAddress]:
        """Each instance's own addresses (on a checked scenario: one APIPA address per instance, if any)."""
        found = {}
        for i, instance in enumerate(gw.instances):
            links = s.nodes[instance].links
            if gw.apipa_bgp_ips:
                found[instance] = InstanceAddress(links[gw.public_ip.network], gw.apipa_bgp_ips[i], True)
            else:
                found[instance] = InstanceAddress(links[gw.public_ip.network], links[gw.bgp_peer_ip.network])
        return found

    def unsettled(self, gw: GatewayView) -> list[str]:
        return [f"gateway {gw.name}: instance {i} is not live" for i in gw.instances if i not in gw.active]
