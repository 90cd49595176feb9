"""Typed models of a scenario, a timer profile and the resolved lab plan.

Pure data: imports nothing from the rest of the package. Field checks live
here; checks that span fields (references, overlaps) live in
lab/plan/checks.py, which collects every problem before reporting.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from lab.model import names
from lab.model.names import Key, LabName, NetworkName, NodeName, ShortName, Text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- scenario (what the YAML says) -------------------------------------------------


class Network(Strict):
    # The scenario's own addressing: it lives inside the containers only, so
    # it may be anything, even the host's own subnet (see Segment).
    subnet: IPv4Network


class AddressOn(Strict):
    network: NetworkName
    # A shared address (active-standby's VIP); None: each instance uses its own on `network`.
    address: IPv4Address | None = None


# Where a gateway's instances run (Azure's availability zones): spread over zones, all in one
# zone, or regional (no zone). lab/plan/zones.py checks the instances' zones against it.
ZonePlacement = Literal["zone-redundant", "zonal", "regional"]


class VpnGateway(Strict):
    """An Azure VPN gateway: its instances end the site-to-site tunnels."""
    type: Literal["vpn"] = "vpn"
    # A redundancy strategy's name (lab/plan/redundancy/): checked against those registered.
    mode: Key
    asn: int = Field(ge=1, le=4294967295)
    instances: list[NodeName] = Field(min_length=2)
    public_ip: AddressOn
    bgp_peer_ip: AddressOn
    # Azure's custom APIPA BGP addresses, one per instance (active-active only);
    # with them the gateway never opens a BGP session: the device must.
    apipa_bgp_ips: list[IPv4Address] = []
    vnet_router: NodeName
    # Azure's gateway SKU (lab/model/azure.yaml): how many tunnels it takes, whether it goes in
    # zones. None: VpnGw1AZ where the gateway is placed in zones, else VpnGw1.
    sku: Key | None = None
    zones: ZonePlacement = "regional"


class CircuitLink(Strict):
    """One link of an ExpressRoute circuit: a peering (by name) between the CE and one MSEE."""
    peering: ShortName


class ExpressRouteGateway(Strict):
    """An ExpressRoute virtual network gateway: its instances peer with the circuit's MSEEs."""
    type: Literal["expressroute"]
    # ExpressRoute gateways are active-active (every instance carries).
    mode: Key = "active-active"
    asn: int = Field(default=65515, ge=1, le=4294967295)
    instances: list[NodeName] = Field(min_length=2)
    vnet_router: NodeName
    # The GatewaySubnet: where the instances meet the VNet router.
    network: NetworkName
    # Microsoft's backbone: where the instances meet the MSEEs.
    backbone: NetworkName
    # The circuit's two links, primary first (Azure's SLA needs both).
    circuit: list[CircuitLink]
    sku: Key | None = None
    zones: ZonePlacement = "regional"


def _gateway_type(value: object) -> str:
    found = value.get("type", "vpn") if isinstance(value, dict) else getattr(value, "type", "vpn")
    return found if found in ("vpn", "expressroute") else "vpn"


Gateway = Annotated[Union[Annotated[VpnGateway, Tag("vpn")], Annotated[ExpressRouteGateway, Tag("expressroute")]],
                    Discriminator(_gateway_type)]
AnyGateway = VpnGateway | ExpressRouteGateway


class FirstHop(Strict):
    """A LAN's first-hop redundancy: routers sharing one gateway address by VRRP."""
    network: NetworkName
    address: IPv4Address
    # The first router listed holds the address first; no pre-emption.
    routers: list[NodeName] = Field(min_length=2)


class Node(Strict):
    kind: NodeName
    links: dict[NetworkName, IPv4Address] = Field(min_length=1)
    zone: int | None = None
    asn: int | None = Field(default=None, ge=1, le=4294967295)
    bgp_peer_ip: IPv4Address | None = None
    address_space: list[IPv4Network] = []
    router: IPv4Address | None = None


class PeeringSide(Strict):
    """One end of a BGP peering and its own policy toward the other end."""
    node: NodeName
    bfd: bool = False
    # Set on the routes this side learns from the other (higher wins; BGP's default is 100).
    local_pref: int | None = Field(default=None, ge=0, le=4294967295)
    # This router's own preference for the other side's routes (FRR/Cisco weight: higher wins, never sent).
    weight: int | None = Field(default=None, ge=0, le=65535)
    # How many more times this side's ASN is put on the routes it sends the other.
    as_path_prepend: int = Field(default=0, ge=0, le=10)
    # Routes this side passes on (iBGP) get its own address as next hop.
    next_hop_self: bool = False


class Peering(Strict):
    """A BGP session that is not a tunnel's: two routers on one network (a circuit link, on-premises iBGP)."""
    name: ShortName
    network: NetworkName
    sides: tuple[PeeringSide, PeeringSide]
    # The session's own BGP timers (an MSEE's, say); None: the profile's.
    keepalive_s: int | None = Field(default=None, ge=1)
    hold_s: int | None = Field(default=None, ge=3)
    # BFD timers where both sides run it: Azure's ExpressRoute default, 300 ms x 3.
    bfd_interval_ms: int = Field(default=300, ge=10)
    bfd_multiplier: int = Field(default=3, ge=2)
    # What traffic over this session rides, for status and reports ("the VPN, through onprem-0").
    path: Text | None = None

    @model_validator(mode="after")
    def _timers(self) -> "Peering":
        if (self.keepalive_s is None) != (self.hold_s is None):
            raise ValueError("keepalive_s and hold_s go together")
        if self.hold_s is not None and self.keepalive_s is not None and self.hold_s < 3 * self.keepalive_s:
            raise ValueError(f"hold_s {self.hold_s} must be at least three keepalives ({3 * self.keepalive_s})")
        return self


class IpsecPolicy(Strict):
    """Azure's custom IPsec/IKE policy of one connection, in Azure's own names.

    Every algorithm is required, as Azure allows no partial policy; the allowed
    values (and the rules between them) are Azure's, in lab/model/azure.yaml.
    """
    ike_encryption: Key
    ike_integrity: Key
    dh_group: Key
    ipsec_encryption: Key
    ipsec_integrity: Key
    pfs_group: Key
    sa_lifetime_s: int = 27000
    sa_data_kb: int = 102400000


class Tunnel(Strict):
    """An Azure connection: one on-premises device to one gateway."""
    name: ShortName
    device: NodeName
    gateway: NodeName
    # None: Azure's default policy (its documented offer and acceptance lists).
    ipsec_policy: IpsecPolicy | None = None
    # Azure's UsePolicyBasedTrafficSelectors: the connection's selectors are every on-premises
    # prefix with every VNet prefix, not any-to-any, and the device must propose exactly those.
    policy_based_selectors: bool = False


class SuiteRun(Strict):
    """One timed failover of a scenario's suite (`make failover-all`): a fault, its target, the profiles."""
    fault: Key
    # None: the fault's default target on the plan (the active instance, the circuit's primary link, ...).
    target: Text | None = None
    profiles: list[Key] = ["azure", "fast"]


class Scenario(Strict):
    name: ShortName
    description: Text
    # A built-in profile's name or a profile file's path (found by lab/plan/load.py).
    profile: Text = "azure"
    networks: dict[NetworkName, Network] = Field(min_length=1)
    tunnel_pool: IPv4Network = IPv4Network("100.64.0.0/22")
    gateways: dict[NodeName, Gateway] = {}
    nodes: dict[NodeName, Node] = Field(min_length=1)
    tunnels: list[Tunnel] = []
    first_hop: dict[NodeName, FirstHop] = {}
    # BGP sessions that are not tunnels' (ExpressRoute circuit links, on-premises iBGP).
    peerings: list[Peering] = []
    # Workload host pairs that exchange probe traffic during a failover run.
    probes: list[tuple[NodeName, NodeName]] = []
    # UDP flows (source ports) the probes spread over, so ECMP hashes them onto every path.
    probe_flows: int = Field(default=1, ge=1, le=64)
    # The planned and unplanned failovers `make failover-all` times on this scenario.
    suite: list[SuiteRun] = []


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


class DocumentedFigure(Strict):
    value: float = Field(gt=0)
    source: Text


class Target(Strict):
    """The figure a verdict is given against, and the other figures documented for the same event.

    Azure's pages give different figures for one event across versions: the
    verdict takes the strictest, reports show them all.
    """
    value: float = Field(gt=0)
    source: Text
    also: list[DocumentedFigure] = []

    @model_validator(mode="after")
    def _strictest(self) -> "Target":
        looser = [f.value for f in self.also if f.value < self.value]
        if looser:
            raise ValueError(f"the verdict's figure {self.value:g} s must be the strictest; also lists {looser[0]:g} s")
        return self


class Targets(Strict):
    planned_s: Target
    unplanned_s: Target
    # A fault whose target differs from its class's (planned/unplanned), by fault name.
    per_fault: dict[Key, Target] = {}


class Convergence(Strict):
    # RFC 6412 "Sustained Convergence Validation Time": how long traffic must
    # flow at the offered rate, with no loss, before convergence counts as
    # complete (RFC 6412 recommends at least 5 s).
    sustained_s: float = Field(default=5.0, gt=0)
    # RFC 6412 "Forwarding Delay Threshold", in probe intervals: a probe that arrives later
    # than this after it was sent counts as lost (lab/failover/metrics.py).
    threshold_intervals: int = Field(default=5, ge=1, le=250)


class Profile(Strict):
    # Reaches container labels and the default results folder.
    name: NodeName
    description: Text
    ike: IkeTimers
    bgp: BgpTimers
    vrrp: VrrpTimers
    bfd: BfdTimers | None = None
    targets: Targets
    convergence: Convergence = Convergence()
    sources: dict[Key, Text] = {}
    # Azure's rules this profile breaks on purpose (keys of lab/model/azure.py's DEPARTURES);
    # a departure not declared here is refused when the profile is loaded.
    departs_from_azure: list[Key] = []


# --- resolved plan (what gets built) -----------------------------------------------


class TunnelPlan(Strict):
    """One IKEv2 tunnel and the routed link carried inside it.

    Userspace ESP has one TUN device, so outbound traffic picks its SA by
    traffic selector alone: each tunnel's CHILD_SA covers just a /32 pair,
    and a VXLAN link between those /32s gives the tunnel a routed interface
    for BGP and data, like Azure's route-based (VTI) tunnels.
    """

    name: str
    device: str
    gateway: str
    # The instances that can serve this tunnel: all of them behind a shared
    # IP (active-standby), exactly one when each has its own (active-active).
    instances: tuple[str, ...]
    gateway_public_ip: IPv4Address
    gateway_bgp_ip: IPv4Address
    # The gateway never opens the BGP session (Azure with APIPA addresses).
    gateway_bgp_passive: bool = False
    device_public_ip: IPv4Address
    gateway_endpoint: IPv4Address
    device_endpoint: IPv4Address
    gateway_link_ip: IPv4Address
    device_link_ip: IPv4Address
    link_prefixlen: int = 30
    vni: int
    interface: str
    # The connection's custom IPsec/IKE policy; None: Azure's default policy.
    ipsec_policy: IpsecPolicy | None = None
    # Policy-based selectors: the prefixes each side's CHILD_SA carries beyond the /32 pair
    # (the VNet's address space, the device's), so traffic rides the SA by policy.
    gateway_prefixes: tuple[IPv4Network, ...] = ()
    device_prefixes: tuple[IPv4Network, ...] = ()


class VrrpGroupPlan(Strict):
    """Routers sharing addresses by VRRP: an active-standby gateway, or a LAN's first hop."""

    name: str
    vrid: int
    routers: tuple[str, ...]                 # in order: the first holds the addresses first
    interface: str                           # the network the adverts go over
    addresses: tuple[tuple[IPv4Address, int, str], ...]  # address, prefix length, network
    # A gateway's group moves tunnels with it (keepalived's notify hook); a LAN's moves nothing.
    moves_tunnels: bool = False


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
    passive: bool = False                  # wait for the peer to open it (Azure's APIPA sessions)
    # Where the session comes from: a tunnel's, a peering's (by name), or a gateway's own.
    peering: str | None = None
    bfd: BfdTimers | None = None           # BFD with the peer, at these timers; None: no BFD
    local_pref: int | None = None          # set on routes learned from the peer
    weight: int | None = None              # this node's weight for routes learned from the peer
    as_path_prepend: int = 0               # own ASN put on routes sent to the peer this many more times
    keepalive_s: int | None = None         # the session's own timers; None: the profile's
    hold_s: int | None = None
    # What traffic over this session rides (status's paths): "VPN tunnel onprem-0", "ExpressRoute er-primary".
    path: str = ""
    # Which way traffic it routes goes: "expressroute", "vpn", or "" (neither: on-premises, the VNet).
    carrier: str = ""


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
    # Its BGP ASN: its gateway's, its own, or its kind's (an MSEE's); None: it runs no BGP.
    asn: int | None = None


class LabPlan(Strict):
    """A scenario resolved for one lab instance: names, addresses, timers."""

    lab: LabName
    scenario: Scenario
    profile: Profile
    nodes: dict[str, NodePlan]
    tunnels: list[TunnelPlan]
    bgp_sessions: list[BgpSessionPlan]
    vrrp_groups: list[VrrpGroupPlan]
    # Nodes that see several equal-cost paths (active-active, dual redundancy): BGP multipath.
    multipath_nodes: frozenset[str] = frozenset()
    segments: dict[str, Segment]
    # Every bridge of the lab starts with it: the host's forwarding guard matches on it.
    bridge_prefix: str

    def network_name(self, network: str) -> str:
        return names.network_name(self.lab, network)

    def instance_gateway(self, node: str) -> tuple[str, AnyGateway] | None:
        for name, gateway in self.scenario.gateways.items():
            if node in gateway.instances:
                return name, gateway
        return None

    def gateway_instances(self) -> list[str]:
        """Every gateway instance of the scenario, gateways in order."""
        return [i for g in self.scenario.gateways.values() for i in g.instances]

    def tunnels_of(self, node: str) -> list[TunnelPlan]:
        return [t for t in self.tunnels if t.device == node or node in t.instances]

    def groups_of(self, node: str) -> list[VrrpGroupPlan]:
        return [g for g in self.vrrp_groups if node in g.routers]

    def public_network(self, node: str) -> str | None:
        """The network where a VPN node's tunnels run (its internet-facing link)."""
        owner = self.instance_gateway(node)
        if owner is not None:
            return owner[1].public_ip.network if isinstance(owner[1], VpnGateway) else None
        return next((self.scenario.gateways[t.gateway].public_ip.network for t in self.tunnels_of(node)), None)

    def target_for(self, fault: str, planned: bool) -> Target:
        targets = self.profile.targets
        return targets.per_fault.get(fault) or (targets.planned_s if planned else targets.unplanned_s)

    def sessions_of(self, node: str) -> list[BgpSessionPlan]:
        return [b for b in self.bgp_sessions if b.node == node]

    def routed_prefixes(self) -> list[IPv4Network]:
        """Every prefix a workload host may need to reach: the sites' address spaces."""
        prefixes: list[IPv4Network] = []
        for node in self.scenario.nodes.values():
            prefixes.extend(node.address_space)
        return prefixes
