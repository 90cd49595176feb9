"""What every redundancy strategy answers; pure, except `release`, which acts through ports."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol

from lab.model.schema import Gateway, Scenario, VrrpGroupPlan


@dataclass(frozen=True)
class InstanceAddress:
    """Where the devices reach one instance: its tunnel endpoint and its BGP address."""
    public_ip: IPv4Address
    bgp_ip: IPv4Address
    # The BGP address is not a link address (APIPA): it lives on the instance's loopback.
    bgp_on_loopback: bool = False


class Leaving(Protocol):
    """The part of a fault target a strategy uses to take an instance out of service."""
    def vrrp(self, node: str, action: str) -> None: ...


@dataclass(frozen=True)
class GatewayView:
    """A gateway as status sees it: which instances hold their addresses now."""
    name: str
    instances: list[str]
    active: list[str]
    # Tunnels seen established, per instance.
    established: dict[str, int]


class Strategy(ABC):
    mode: str
    summary: str
    # One tunnel per device served by every instance (a shared IP), or one per device x instance.
    shares_tunnels: bool
    # Devices and the VNet see one path per instance, all live: BGP multipath on them.
    multipath: bool = False
    # Some instances wait as standbys while others are active.
    has_standbys: bool = False
    # Losing an active instance is a hand-over (another takes its addresses: the failover's
    # phases follow it) rather than a withdrawal (its peers drop its paths, keep the others).
    hands_over: bool = False

    def check(self, s: Scenario, name: str, gw: Gateway) -> list[str]:
        """Problems with a gateway's fields under this mode, each naming its field."""
        return []

    @abstractmethod
    def addresses(self, s: Scenario, gw: Gateway) -> dict[str, InstanceAddress]:
        """Where the devices reach each instance of a (checked) gateway."""

    def vrrp_group(self, s: Scenario, name: str, gw: Gateway, vrid: int) -> VrrpGroupPlan | None:
        return None

    def is_active(self, public_ip: str, addresses: list[str]) -> bool:
        """Whether an instance holding `addresses` is active (its label gives `public_ip`)."""
        return public_ip in addresses

    @abstractmethod
    def unsettled(self, gw: GatewayView) -> list[str]:
        """Why a gateway has not settled yet; empty once it has."""

    def release(self, target: Leaving, node: str) -> str:
        """The last step of a graceful hand-over, after the drain: what this mode needs more."""
        return ""
