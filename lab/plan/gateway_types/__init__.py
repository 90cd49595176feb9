"""Gateway types, picked by a gateway's `type`: a VPN gateway, an ExpressRoute gateway.

A new type is one module here plus its entry in GATEWAY_TYPES.
"""
from __future__ import annotations

from lab.model.schema import AnyGateway
from lab.plan.gateway_types.base import GatewayType
from lab.plan.gateway_types.expressroute import ExpressRoute
from lab.plan.gateway_types.vpn import Vpn
from lab.plan.redundancy import Strategy

GATEWAY_TYPES: dict[str, GatewayType] = {t.type: t for t in (Vpn(), ExpressRoute())}


def type_of(gw: AnyGateway) -> GatewayType:
    return GATEWAY_TYPES[gw.type]


def strategy_of(gw: AnyGateway) -> Strategy:
    """The gateway's redundancy strategy, as its type says (a checked scenario's)."""
    return type_of(gw).strategy(gw.mode)


def strategy_named(gateway_type: str, mode: str) -> Strategy:
    """A strategy from a container's labels (an older lab's: a VPN gateway)."""
    kind = GATEWAY_TYPES.get(gateway_type or "vpn", GATEWAY_TYPES["vpn"])
    return kind.strategy(mode if mode in kind.modes() else kind.modes()[0])


__all__ = ["GATEWAY_TYPES", "GatewayType", "strategy_named", "strategy_of", "type_of"]
