"""Zone placement: where a gateway's instances (and zonal workload hosts) run, checked against Azure.

A gateway says how it is placed (`zones`: zone-redundant, zonal, regional) and
each instance node says its zone; the rules and their sources are data
(lab/model/azure.yaml, `zones`). Whether a kind may take a zone at all is the
kind's capability, checked in lab/plan/checks.py. Each problem is one line
naming its field.
"""
from __future__ import annotations

from lab.model.azure import AzureRules, azure_rules
from lab.model.kinds import Can, able
from lab.model.schema import AnyGateway, ExpressRouteGateway, Scenario, VpnGateway
from lab.plan.gateway_types import type_of


def check_zones(s: Scenario) -> list[str]:
    rules = azure_rules()
    problems = _zone_numbers(s, rules)
    for name, gw in s.gateways.items():
        problems += _instance_count(name, gw, rules)
        problems += _placement(s, name, gw, rules)
        problems += _az_sku(name, gw, rules)
    return problems


def _zone_numbers(s: Scenario, rules: AzureRules) -> list[str]:
    numbers = rules.zones.numbers
    return [f"nodes.{name}.zone: {node.zone} is not a zone: an Azure region's zones are "
            f"{', '.join(map(str, numbers))} ({rules.zones.numbers_source})"
            for name, node in s.nodes.items()
            if node.zone is not None and able(node.kind, Can.BE_ZONAL) and node.zone not in numbers]


def _instance_count(name: str, gw: AnyGateway, rules: AzureRules) -> list[str]:
    wanted = rules.zones.vpn_instances
    if not isinstance(gw, VpnGateway) or len(gw.instances) == wanted:
        return []
    return [f"gateways.{name}.instances: a VPN gateway has exactly two instances, {len(gw.instances)} are "
            f"given ({rules.zones.vpn_instances_source})"]


def _placement(s: Scenario, name: str, gw: AnyGateway, rules: AzureRules) -> list[str]:
    """Each instance's zone against the gateway's `zones` (instances not yet known are refused elsewhere)."""
    placed = {i: s.nodes[i].zone for i in gw.instances if i in s.nodes}
    where = f"gateway {name} is {gw.zones}"
    if gw.zones == "regional":
        return [f"nodes.{i}.zone: {where}: its instances go in no zone (make it zonal or zone-redundant)"
                for i, zone in placed.items() if zone is not None]
    problems = [f"nodes.{i}.zone: required: {where}, so each of its instances goes in a zone"
                for i, zone in placed.items() if zone is None]
    zoned = {i: zone for i, zone in placed.items() if zone is not None}
    if problems or not zoned:
        return problems
    if gw.zones == "zonal":
        first, zone = next(iter(zoned.items()))
        return [f"nodes.{i}.zone: {where}: all its instances go in one zone ({first}'s, zone {zone}), "
                f"not zone {other}" for i, other in zoned.items() if other != zone]
    if isinstance(gw, ExpressRouteGateway):
        least = rules.zones.expressroute_min_zones
        spread = sorted(set(zoned.values()))
        if len(spread) < least:
            return [f"gateways.{name}.instances: a zone-redundant ExpressRoute gateway spans at least {least} "
                    f"zones; its instances are in zone{'s' if len(spread) > 1 else ''} {', '.join(map(str, spread))} only "
                    f"({rules.zones.expressroute_source})"]
        return []
    # A zone-redundant VPN gateway: its two instances in two different zones, the third zone empty.
    seen: dict[int, str] = {}
    for i, zone in zoned.items():
        if zone in seen:
            problems.append(f"nodes.{i}.zone: {where}: its two instances go in two different zones, and "
                            f"{seen[zone]} is in zone {zone} too ({rules.zones.vpn_instances_source})")
        seen.setdefault(zone, i)
    return problems


def _az_sku(name: str, gw: AnyGateway, rules: AzureRules) -> list[str]:
    """A gateway in zones (zone-redundant or zonal) needs an AZ SKU; an unknown VPN SKU is refused elsewhere."""
    if gw.zones == "regional":
        return []
    sku = type_of(gw).default_sku(gw)
    field = f"gateways.{name}.sku"
    if isinstance(gw, VpnGateway):
        limits = rules.skus.limits.get(sku)
        if limits is None or limits.az:
            return []
        instead = (f"needs {limits.az_peer}, its AZ peer with the same limits" if limits.az_peer
                   else f"needs an AZ SKU ({', '.join(rules.skus.az_skus())}); {sku} has no AZ peer")
        return [f"{field}: {sku} is not an AZ SKU: a gateway in zones ({gw.zones}) {instead} "
                f"({rules.zones.sku_source})"]
    known = rules.expressroute_skus.az
    if sku not in known:
        return [f"{field}: unknown ExpressRoute gateway SKU {sku!r} (known: {', '.join(known)})"]
    if known[sku]:
        return []
    az = ", ".join(k for k, is_az in known.items() if is_az)
    return [f"{field}: {sku} is not an AZ SKU: a gateway in zones ({gw.zones}) needs one of {az} "
            f"({rules.expressroute_skus.source})"]
