"""Node kinds: what each one can do, which fields it takes, what it runs and which configs it gets.

Kinds are data, all registered here in one place. The core asks a kind what
it can do (`Can`), never which kind it is: planning, status and faults read
capabilities, so a new kind (an MSEE, an edge router) is a new entry here
and no new code path elsewhere. A kind validates its own node fields with
its own model. It names its config renderers by key (lab/render/configs.py
holds the table), so the model never imports the renderers.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Network

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Can(Enum):
    """What a node of a kind can do."""
    ROUTE = "route (BGP)"
    RUN_IKE = "run IKE"
    HOLD_FIRST_HOP = "hold a first-hop address (VRRP)"
    BE_FAULT_TARGET = "be a fault target"
    BE_ZONAL = "be placed in a zone"
    START_TUNNELS = "start tunnels to a VPN gateway (an on-premises VPN device)"
    ROUTE_VNET = "route the VNet (fed by its gateways)"
    SEND_PROBES = "send and receive probe traffic"
    EDGE_CIRCUITS = "end ExpressRoute circuits at a peering location (an MSEE)"


# --- each kind's own node fields ----------------------------------------------------


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Asn = int


class NoFields(_Fields):
    """A gateway instance: its gateway says everything (ASN, addresses)."""


class VpnDeviceFields(_Fields):
    asn: Asn = Field(ge=1, le=4294967295)
    bgp_peer_ip: IPv4Address
    address_space: list[IPv4Network] = Field(min_length=1)


class EdgeRouterFields(_Fields):
    asn: Asn = Field(ge=1, le=4294967295)
    address_space: list[IPv4Network] = Field(min_length=1)


class VnetRouterFields(_Fields):
    asn: Asn = Field(ge=1, le=4294967295)
    address_space: list[IPv4Network] = Field(min_length=1)


# Microsoft's ASN on every MSEE (ExpressRoute routing requirements).
MSEE_ASN = 12076


class MseeFields(_Fields):
    asn: Asn = MSEE_ASN

    @field_validator("asn")
    @classmethod
    def _microsoft(cls, asn: int) -> int:
        if asn != MSEE_ASN:
            raise ValueError(f"an MSEE's ASN is Microsoft's {MSEE_ASN} (ExpressRoute routing requirements), not {asn}")
        return asn


class HostFields(_Fields):
    router: IPv4Address


# The image's check: every daemon the node has a config for (images/node/healthcheck.sh).
READY_CHECK = ("lab-healthcheck",)


@dataclass(frozen=True)
class Kind:
    name: str
    can: frozenset[Can]
    # The node fields the kind takes, validated by its model (`zone` and `links` are every node's).
    fields: type[_Fields]
    # The daemons it may run; the entrypoint starts those the node has configs for.
    daemons: tuple[str, ...]
    # Keys of lab.render.configs.RENDERERS, in the order the node's files are rendered.
    renderers: tuple[str, ...]
    # The gateway type (lab/plan/gateway_types/) whose instances this kind plays; None: no gateway's.
    instance_of: str | None = None
    needs_tun: bool = False
    # Exactly what the kind's daemons need, from none (Docker's defaults are dropped); never
    # privileged. Why each one: CAPABILITY_REASONS.
    capabilities: tuple[str, ...] = ("NET_ADMIN", "NET_RAW")
    # Extra groups of the node's processes (charon's updown hook runs vtysh with no capabilities).
    groups: tuple[str, ...] = ()
    # Limits, from measured use (README: memory per kind at idle and at its peak in a failover).
    memory_mib: int = 64
    pids: int = 64
    # Readiness: a command in the node that exits 0 once its daemons run and answer, and else prints
    # what is missing. `lab` runs it only while it waits for the node, never on a timer.
    ready_check: tuple[str, ...] = READY_CHECK

    def able(self, capability: Can) -> bool:
        return capability in self.can

    @property
    def runs_ike(self) -> bool:
        """strongSwan runs here: status and observation read its SAs and events."""
        return Can.RUN_IKE in self.can

    @property
    def runs_bgp(self) -> bool:
        """FRR's bgpd runs here: status reads its sessions, observation its log."""
        return Can.ROUTE in self.can

    def field_problems(self, node: str, values: dict[str, object]) -> list[str]:
        """The node's own fields checked by the kind's model: one line per problem, naming the field."""
        try:
            self.fields.model_validate({k: v for k, v in values.items() if v not in (None, [])})
        except ValidationError as exc:
            return [_field_problem(self.name, node, error) for error in exc.errors()]
        return []

    def default(self, field: str) -> object:
        """A field's value when the node leaves it out (an MSEE's ASN), else None."""
        info = self.fields.model_fields.get(field)
        return None if info is None or info.is_required() else info.default


def _field_problem(kind: str, node: str, error: dict) -> str:
    field = ".".join(str(part) for part in error["loc"])
    where = f"nodes.{node}.{field}"
    if error["type"] == "extra_forbidden":
        return f"{where}: a {kind} has no {error['loc'][0]}"
    if error["type"] == "missing":
        return f"{where}: required for a {kind}"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


# Why each capability a kind is given is needed, as measured from `--cap-drop ALL` (one removed at a time).
CAPABILITY_REASONS = {
    "NET_ADMIN": "links, addresses, routes and nft rules; charon's TUN device and routes; keepalived's "
                 "shared addresses; zebra installing routes",
    "NET_RAW": "ping, arping and tcpdump; keepalived's VRRP socket; zebra, bgpd and bfdd ask for it at start",
    "SYS_ADMIN": "zebra, bgpd and bfdd (FRR 8.4) exit at start without it, though they use it only for "
                 "network-namespace VRFs, which the lab doesn't have",
    "NET_BIND_SERVICE": "bgpd (179), bfdd (3784) and charon (500, 4500) bind ports below 1024",
    "SETUID": "FRR's daemons switch to user frr",
    "SETGID": "FRR's daemons set their groups; keepalived sets groups before every notify script",
    "CHOWN": "the entrypoint installs FRR's configs owned by frr; FRR makes /run/frr its own",
    "FOWNER": "setting the mode of FRR's files, which belong to frr",
    "DAC_OVERRIDE": "root (vtysh, the healthcheck, the entrypoint) reading and writing /etc/frr, frr's 0750",
}
# Nodes running FRR: everything above. Docker's other defaults (KILL, MKNOD, AUDIT_WRITE, SETFCAP,
# SETPCAP, FSETID, SYS_CHROOT) are not needed and not given.
FRR_CAPABILITIES = ("NET_ADMIN", "NET_RAW", "SYS_ADMIN", "NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN",
                    "FOWNER", "DAC_OVERRIDE")
# charon keeps only NET_ADMIN, and no-new-privileges keeps its updown hook from regaining more:
# vtysh there reaches FRR's sockets and config as a member of FRR's groups.
FRR_GROUPS = ("frr", "frrvty")


_VPN_NODE = frozenset({Can.ROUTE, Can.RUN_IKE, Can.BE_FAULT_TARGET})
_ROUTER = frozenset({Can.ROUTE, Can.BE_FAULT_TARGET})

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        # One VM instance of an Azure VPN gateway (IKEv2, BGP; VRRP when its mode shares the IPs).
        Kind(
            name="azure-gateway-instance",
            can=_VPN_NODE | {Can.BE_ZONAL},
            fields=NoFields,
            instance_of="vpn",
            daemons=("charon", "bgpd", "keepalived"),
            renderers=("network", "strongswan", "frr", "keepalived"),
            needs_tun=True,
            capabilities=FRR_CAPABILITIES,
            groups=FRR_GROUPS,
            memory_mib=192,
            pids=256,
        ),
        # An on-premises VPN device (IKEv2 initiator, eBGP; VRRP on its LAN when it shares a first hop).
        Kind(
            name="onprem-vpn-device",
            can=_VPN_NODE | {Can.START_TUNNELS, Can.HOLD_FIRST_HOP},
            fields=VpnDeviceFields,
            daemons=("charon", "bgpd", "keepalived"),
            renderers=("network", "strongswan", "frr", "keepalived"),
            needs_tun=True,
            capabilities=FRR_CAPABILITIES,
            groups=FRR_GROUPS,
            memory_mib=192,
            pids=256,
        ),
        # The VNet's routing (Azure SDN), fed by the gateway instances over iBGP. Regional: no zone.
        Kind(
            name="vnet-router",
            can=frozenset({Can.ROUTE, Can.ROUTE_VNET}),
            fields=VnetRouterFields,
            daemons=("bgpd",),
            renderers=("network", "frr"),
            capabilities=FRR_CAPABILITIES,
            memory_mib=128,
            pids=128,
        ),
        # One instance of an ExpressRoute virtual network gateway: eBGP to the MSEEs, iBGP to the VNet.
        Kind(
            name="expressroute-gateway-instance",
            can=_ROUTER | {Can.BE_ZONAL},
            fields=NoFields,
            instance_of="expressroute",
            daemons=("bgpd", "bfdd"),
            renderers=("network", "frr"),
            capabilities=FRR_CAPABILITIES,
            memory_mib=128,
            pids=128,
        ),
        # A Microsoft Enterprise Edge router at the circuit's peering location (ASN 12076).
        Kind(
            name="msee",
            can=_ROUTER | {Can.EDGE_CIRCUITS},
            fields=MseeFields,
            daemons=("bgpd", "bfdd"),
            renderers=("network", "frr"),
            capabilities=FRR_CAPABILITIES,
            memory_mib=128,
            pids=128,
        ),
        # An on-premises edge router (the circuit's CE): eBGP and BFD to the MSEEs, iBGP on-premises.
        Kind(
            name="onprem-edge-router",
            can=_ROUTER,
            fields=EdgeRouterFields,
            daemons=("bgpd", "bfdd"),
            renderers=("network", "frr"),
            capabilities=FRR_CAPABILITIES,
            memory_mib=128,
            pids=128,
        ),
        # A workload VM or host that sends and receives probe traffic.
        Kind(
            name="workload-host",
            can=frozenset({Can.SEND_PROBES, Can.BE_ZONAL}),
            fields=HostFields,
            daemons=(),
            renderers=("network",),
        ),
    )
}


def able(kind_name: str, capability: Can) -> bool:
    kind = KINDS.get(kind_name)
    return kind is not None and capability in kind.can


def runs_ike(kind_name: str) -> bool:
    return able(kind_name, Can.RUN_IKE)


def runs_bgp(kind_name: str) -> bool:
    return able(kind_name, Can.ROUTE)


def instance_of(kind_name: str) -> str | None:
    kind = KINDS.get(kind_name)
    return kind.instance_of if kind is not None else None


def ready_check(kind_name: str) -> tuple[str, ...]:
    kind = KINDS.get(kind_name)
    return kind.ready_check if kind is not None else READY_CHECK


def kinds_that(capability: Can) -> str:
    """The kinds able to do `capability`, for messages that name them."""
    return " or ".join(k.name for k in KINDS.values() if capability in k.can)


def kinds_of_type(gateway_type: str) -> str:
    return " or ".join(k.name for k in KINDS.values() if k.instance_of == gateway_type)
