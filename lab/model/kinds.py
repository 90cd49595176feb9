"""Node kinds: what each role runs and which configs it gets.

Kinds are data, all registered here in one place; a kind names its config
renderers by key (lab/render/configs.py holds the table), so the model
never imports the renderers. A new scenario reuses these; a new role (an
ExpressRoute edge, say) is a new entry, not a new code path in deploy or
status.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(Enum):
    """The part a kind plays in a scenario: planning, status and faults ask for roles, never for kind names."""
    GATEWAY_INSTANCE = "gateway instance"
    VPN_DEVICE = "VPN device"
    VNET_ROUTER = "VNet router"
    WORKLOAD_HOST = "workload host"


# The image's check: every daemon the node has a config for (images/node/healthcheck.sh).
READY_CHECK = ("lab-healthcheck",)


@dataclass(frozen=True)
class Kind:
    name: str
    role: Role
    # The daemons it may run; the entrypoint starts those the node has configs for.
    daemons: tuple[str, ...]
    # Keys of lab.render.configs.RENDERERS, in the order the node's files are rendered.
    renderers: tuple[str, ...]
    needs_tun: bool = False
    required_fields: tuple[str, ...] = ()
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

    @property
    def runs_ike(self) -> bool:
        """strongSwan runs here: status and observation read its SAs and events."""
        return "charon" in self.daemons

    @property
    def runs_bgp(self) -> bool:
        """FRR's bgpd runs here: status reads its sessions, observation its log."""
        return "bgpd" in self.daemons


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


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        # One VM instance of an Azure VPN gateway (IKEv2, BGP; VRRP when its mode shares the IPs).
        Kind(
            name="azure-gateway-instance",
            role=Role.GATEWAY_INSTANCE,
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
            role=Role.VPN_DEVICE,
            daemons=("charon", "bgpd", "keepalived"),
            renderers=("network", "strongswan", "frr", "keepalived"),
            needs_tun=True,
            required_fields=("asn", "bgp_peer_ip", "address_space"),
            capabilities=FRR_CAPABILITIES,
            groups=FRR_GROUPS,
            memory_mib=192,
            pids=256,
        ),
        # The VNet's routing (Azure SDN), fed by the gateway instances over iBGP.
        Kind(
            name="vnet-router",
            role=Role.VNET_ROUTER,
            daemons=("bgpd",),
            renderers=("network", "frr"),
            required_fields=("asn", "address_space"),
            capabilities=FRR_CAPABILITIES,
            memory_mib=128,
            pids=128,
        ),
        # A workload VM or host that sends and receives probe traffic.
        Kind(
            name="workload-host",
            role=Role.WORKLOAD_HOST,
            daemons=(),
            renderers=("network",),
            required_fields=("router",),
        ),
    )
}


def has_role(kind_name: str, role: Role) -> bool:
    kind = KINDS.get(kind_name)
    return kind is not None and kind.role is role


def runs_ike(kind_name: str) -> bool:
    kind = KINDS.get(kind_name)
    return kind is not None and kind.runs_ike


def runs_bgp(kind_name: str) -> bool:
    kind = KINDS.get(kind_name)
    return kind is not None and kind.runs_bgp


def ready_check(kind_name: str) -> tuple[str, ...]:
    kind = KINDS.get(kind_name)
    return kind.ready_check if kind is not None else READY_CHECK


def kind_name_of(role: Role) -> str:
    """The kind that plays `role` (one per role today), for messages that name it."""
    return next(k.name for k in KINDS.values() if k.role is role)
