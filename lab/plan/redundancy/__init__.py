"""Gateway redundancy modes as strategies, picked by a gateway's `mode`.

A strategy owns what differs between Azure's modes: how instances are
addressed, whether a tunnel is shared by the instances or each has its own,
the configs that brings (VRRP for a shared IP), what "active" means and
when a gateway has settled, how an instance leaves for maintenance, and
which events mark the phases of a failover. Planning, rendering, status,
faults and the experiment ask the strategy; none of them names a mode.

A new mode is one module here plus its entry in STRATEGIES.
"""
from __future__ import annotations

from lab.plan.redundancy.active_active import ActiveActive
from lab.plan.redundancy.active_standby import ActiveStandby
from lab.plan.redundancy.base import InstanceAddress, Strategy

STRATEGIES: dict[str, Strategy] = {s.mode: s for s in (ActiveStandby(), ActiveActive())}


def strategy_for(mode: str) -> Strategy:
    """The strategy of a gateway mode (the model only lets known modes through)."""
    return STRATEGIES[mode]


__all__ = ["STRATEGIES", "InstanceAddress", "Strategy", "strategy_for"]
