"""Typed models of a scenario, a timer profile and the resolved lab plan.

Pure data: imports nothing from the rest of the package. Field checks live
here; checks that span fields (references, overlaps) live in topology.py,
which collects every problem before reporting.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z][a-z0-9-]*[a-z0-9]$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- scenario (what the YAML says) -------------------------------------------------


class Network(Strict):
    # The scenario's own addressing: it lives inside the containers only, so
    # it may be anything, even the host's own subnet (see Segment).
    subnet: IPv4Network


class AddressOn(Strict):
    network: str
    address: IPv4Address


class Gateway(Strict):
    mode: Literal["active-standby"]
    asn: int = Field(ge=1, le=4294967295)
    instances: list[str] = Field(min_length=2)
    public_ip: AddressOn
    bgp_peer_ip: AddressOn
    vnet_router: str


class Node(Strict):
    kind: str
    links: dict[str, IPv4Address] = Field(min_length=1)
    zone: int | None = None
    asn: int | None = Field(default=None, ge=1, le=4294967295)
    bgp_peer_ip: IPv4Address | None = None
    address_space: list[IPv4Network] = []
    router: IPv4Address | None = None


class Tunnel(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=24)
    device: str
    gateway: str


class Scenario(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=24)
    description: str
    profile: str = "azure"
    networks: dict[str, Network] = Field(min_length=1)
    tunnel_pool: IPv4Network = IPv4Network("100.64.0.0/22")
    gateways: dict[str, Gateway] = {}
    nodes: dict[str, Node] = Field(min_length=1)
    tunnels: list[Tunnel] = []
    # Workload host pairs that exchange probe traffic during a failover run.
    probes: list[tuple[str, str]] = []


# --- timer profile -----------------------------------------------------------------


class IkeTimers(Strict):
    dpd_delay_s: float = Field(gt=0)
    dpd_timeout_s: float = Field(gt=0)
    ike_lifetime_s: int = Field(gt=0)
    child_lifetime_s: int = Field(gt=0)
    child_lifetime_kb: int = Field(gt=0)


class BgpTimers(Strict):
    keepalive_s: int = Field(ge=1)
    hold_s: int = Field(ge=3)
    connect_retry_s: int = Field(ge=1)
    # How long FRR batches updates before sending them; None keeps FRR's 1 s.
    coalesce_ms: int | None = Field(default=None, ge=0)


class VrrpTimers(Strict):
    advert_interval_s: float = Field(gt=0)


class BfdTimers(Strict):
    interval_ms: int = Field(ge=10)
    multiplier: int = Field(ge=2)


class Target(Strict):
    value: float = Field(gt=0)
    source: str


class Targets(Strict):
    planned_s: Target
    unplanned_s: Target


class Convergence(Strict):
    # RFC 6412 "Sustained Convergence Validation Time": how long traffic must
    # flow at the offered rate, with no loss, before convergence counts as
    # complete (RFC 6412 recommends at least 5 s).
    sustained_s: float = Field(default=5.0, gt=0)


class Profile(Strict):
    name: str
    description: str
    ike: IkeTimers
    bgp: BgpTimers
    vrrp: VrrpTimers
    bfd: BfdTimers | None = None
    targets: Targets
    convergence: Convergence = Convergence()
    sources: dict[str, str] = {}


# --- resolved plan (what gets built) -----------------------------------------------


class TunnelPlan(Strict):
    """One IKEv2 tunnel and the routed link carried inside it.

    Userspace ESP has one TUN device, so outbound traffic picks its SA by
    traffic selector alone: each tunnel's CHILD_SA covers just a /32 pair,
    and a VXLAN link between those /32s gives the tunnel a routed interface
    for BGP and data, like Azure's route-based (VTI) tunnels.
    """

    name: str
    index: int
    device: str
    gateway: str
    gateway_public_ip: IPv4Address
    device_public_ip: IPv4Address
    gateway_endpoint: IPv4Address
    device_endpoint: IPv4Address
    gateway_link_ip: IPv4Address
    device_link_ip: IPv4Address
    link_prefixlen: int = 30
    vni: int
    interface: str


class BgpSessionPlan(Strict):
    """One BGP session as one node configures it; the peer configures its mirror image."""

    node: str
    peer_address: IPv4Address
    peer_asn: int
    source: IPv4Address
    description: str
    multihop: bool                         # eBGP between loopback-style peer IPs, over a tunnel
    static_via: IPv4Address | None = None  # how the peer address is reached: the tunnel's link
    next_hop_self: bool = False
    tunnel: str | None = None              # the tunnel the session rides on


class Segment(Strict):
    """The Docker bridge that carries one scenario network as a plain L2 segment.

    Docker's IPAM holds only a small transport subnet, allocated per lab from
    a pool that avoids the host's routes and every other Docker network; each
    node drops its transport address at start and takes its scenario address.
    So labs of the same scenario run side by side, and the host never holds,
    routes or answers for a lab address.
    """

    network: str
    bridge: str                               # Linux bridge name on the engine's host
    subnet: IPv4Network                       # transport subnet (Docker's IPAM)
    attachments: dict[str, IPv4Address]       # node -> its transport address

    @property
    def bridge_address(self) -> IPv4Address:
        return next(self.subnet.hosts())


class NodePlan(Strict):
    name: str
    kind: str
    container: str
    links: dict[str, IPv4Address]
    zone: int | None = None


class LabPlan(Strict):
    """A scenario resolved for one lab instance: names, addresses, timers."""

    lab: str
    scenario: Scenario
    profile: Profile
    nodes: dict[str, NodePlan]
    tunnels: list[TunnelPlan]
    bgp_sessions: list[BgpSessionPlan]
    segments: dict[str, Segment]
    # Every bridge of the lab starts with it: the host's forwarding guard matches on it.
    bridge_prefix: str

    def network_name(self, network: str) -> str:
        return f"lab-{self.lab}-{network}"

    def instance_gateway(self, node: str) -> tuple[str, Gateway] | None:
        for name, gateway in self.scenario.gateways.items():
            if node in gateway.instances:
                return name, gateway
        return None

    def gateway_instances(self) -> list[str]:
        """Every gateway instance of the scenario, gateways in order."""
        return [i for g in self.scenario.gateways.values() for i in g.instances]

    def tunnels_of(self, node: str) -> list[TunnelPlan]:
        owner = self.instance_gateway(node)
        return [
            t for t in self.tunnels
            if t.device == node or (owner is not None and t.gateway == owner[0])
        ]

    def sessions_of(self, node: str) -> list[BgpSessionPlan]:
        return [b for b in self.bgp_sessions if b.node == node]

    def routed_prefixes(self) -> list[IPv4Network]:
        """Every prefix a workload host may need to reach: the sites' address spaces."""
        prefixes: list[IPv4Network] = []
        for node in self.scenario.nodes.values():
            prefixes.extend(node.address_space)
        return prefixes
