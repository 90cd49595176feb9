"""Pure renderers: a LabPlan and a node name in, config files as text out.

Each returns {path under the node's /lab folder: text}. Nothing here does
I/O besides reading the packaged templates; secrets are passed in.
"""
from __future__ import annotations

import re
import shlex
from ipaddress import IPv4Address, IPv4Network
from typing import Callable

from jinja2 import Environment, PackageLoader, StrictUndefined

from lab.model import names
from lab.model.errors import LabError
from lab.model.ipsec import device_proposals, gateway_proposals
from lab.model.schema import BfdTimers, LabPlan, Profile, TunnelPlan
from lab.plan.gateway_types import strategy_of
from lab.plan.segments import bridge_prefix

class UnsafeValue(LabError):
    """A value that would change a rendered config's meaning (a newline, a quote): never rendered."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters that end a token, a string or a line in strongSwan, FRR, keepalived or nft configs.
_CONFIG_UNSAFE = re.compile(r"[\x00-\x1f\x7f\"'\\{};#!$`]")
_NOT_A_TOKEN = re.compile(r"[^A-Za-z0-9._:/-]")


def _refuse(pattern: re.Pattern[str], value: object) -> str:
    text = str(value)
    if pattern.search(text):
        raise UnsafeValue(f"refusing to render {text[:60]!r} into a node's config")
    return text


def _shell_word(value: object) -> str:
    """Every value in a shell template is one word, whatever it holds (the shell's autoescape)."""
    return shlex.quote(_refuse(_CONTROL, value))


def _environment(finalize: Callable[[object], str]) -> Environment:
    # `finalize` sees every {{ value }}: the checks hold even where a model check was missed.
    return Environment(loader=PackageLoader("lab", "render/templates"), undefined=StrictUndefined,
                       keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, finalize=finalize)


_SHELL = _environment(_shell_word)
_CONFIG = _environment(lambda value: _refuse(_CONFIG_UNSAFE, value))
# keepalived and nft configs hold only names, addresses and numbers: each value one token.
_TOKENS = _environment(lambda value: _refuse(_NOT_A_TOKEN, value))
_TOKEN_TEMPLATES = ("keepalived.conf.j2", "guard.nft.j2")
# The key file escapes its one quoted value itself; a key may hold any printable character.
_SECRETS = _environment(lambda value: _refuse(_CONTROL, value))


VXLAN_PORT = 4789
# ESP-in-UDP plus VXLAN overhead, rounded down: keeps probes and BGP unfragmented.
TUNNEL_MTU = 1300


def _template(name: str, **context: object) -> str:
    env = (_SHELL if name.endswith(".sh.j2") else _SECRETS if name == "psk.conf.j2"
           else _TOKENS if name in _TOKEN_TEMPLATES else _CONFIG)
    return env.get_template(name).render(**context)


def retransmit_schedule(dpd_timeout_s: float) -> tuple[float, int]:
    """strongSwan declares an IKEv2 peer dead after its retransmissions run out.

    IKEv2 has no dpd_timeout, so (timeout, tries) are chosen with base 1.0 such
    that timeout * (tries + 1) == dpd_timeout_s: the whole sequence lasts the
    profile's DPD timeout.
    """
    timeout = 5.0 if dpd_timeout_s >= 15 else dpd_timeout_s / 4
    tries = max(1, round(dpd_timeout_s / timeout) - 1)
    return round(timeout, 3), tries


def _is_gateway_side(plan: LabPlan, node: str) -> bool:
    return plan.instance_gateway(node) is not None


def _is_vnet_router(plan: LabPlan, node: str) -> bool:
    return any(gw.vnet_router == node for gw in plan.scenario.gateways.values())


def _tunnel_ends(plan: LabPlan, node: str, t: TunnelPlan) -> dict[str, object]:
    """The tunnel seen from one end: local/remote public IP, endpoint, link address and policy prefixes."""
    if _is_gateway_side(plan, node):
        return dict(local_public=t.gateway_public_ip, remote_public=t.device_public_ip,
                    local_endpoint=t.gateway_endpoint, remote_endpoint=t.device_endpoint,
                    local_link=t.gateway_link_ip, remote_link=t.device_link_ip,
                    local_prefixes=t.gateway_prefixes, remote_prefixes=t.device_prefixes)
    return dict(local_public=t.device_public_ip, remote_public=t.gateway_public_ip,
                local_endpoint=t.device_endpoint, remote_endpoint=t.gateway_endpoint,
                local_link=t.device_link_ip, remote_link=t.gateway_link_ip,
                local_prefixes=t.device_prefixes, remote_prefixes=t.gateway_prefixes)


def link_mac(address: IPv4Address) -> str:
    """A locally administered MAC derived from the tunnel link's address.

    Both instances of a gateway hold the same link address, so they present
    the same MAC: after a takeover the peer's ARP entry stays right, instead
    of pointing at the old instance until it ages out (~30 s).
    """
    return "02:00:" + ":".join(f"{octet:02x}" for octet in address.packed)


def _tunnel_views(plan: LabPlan, node: str) -> list[dict[str, object]]:
    """Each tunnel of a node, seen from that node, with the BGP peer at its far end."""
    return [
        dict(t=t, bgp_peer=_tunnel_bgp_peer(plan, node, t), **ends, local_mac=link_mac(ends["local_link"]),
             remote_mac=link_mac(ends["remote_link"]), shared=len(t.instances) > 1)
        for t in plan.tunnels_of(node)
        for ends in [_tunnel_ends(plan, node, t)]
    ]


def _instance_loopbacks(plan: LabPlan, node: str) -> list[str]:
    """An instance's BGP address when it is no link address (Azure's APIPA BGP addresses)."""
    owner = plan.instance_gateway(node)
    if owner is None:
        return []
    mine = strategy_of(owner[1]).addresses(plan.scenario, owner[1]).get(node)
    return [str(mine.bgp_ip)] if mine is not None and mine.bgp_on_loopback else []


def host_routes(plan: LabPlan, node: str) -> list[tuple[IPv4Network, IPv4Address]]:
    """A workload host reaches every site prefix it isn't on through its router."""
    spec = plan.scenario.nodes[node]
    if spec.router is None:
        return []
    connected = [plan.scenario.networks[n].subnet for n in spec.links]
    return [
        (prefix, spec.router)
        for prefix in plan.routed_prefixes()
        if not any(prefix.subnet_of(c) for c in connected)
    ]


def render_network(plan: LabPlan, node: str) -> dict[str, str]:
    spec = plan.scenario.nodes[node]
    loopbacks = [str(spec.bgp_peer_ip)] if spec.bgp_peer_ip else []
    loopbacks += _instance_loopbacks(plan, node)
    tunnels = _tunnel_views(plan, node)
    loopbacks += [str(t["local_endpoint"]) for t in tunnels]
    links = [
        dict(network=net, transport=plan.segments[net].attachments[node], address=address,
             prefixlen=plan.scenario.networks[net].subnet.prefixlen)
        for net, address in spec.links.items()
    ]
    text = _template(
        "network.sh.j2",
        node=node,
        links=links,
        loopbacks=loopbacks,
        tunnels=tunnels,
        routes=host_routes(plan, node),
        vxlan_port=VXLAN_PORT,
        mtu=TUNNEL_MTU,
    )
    return {"network.sh": text}


def _ipsec_view(plan: LabPlan, node: str, t: TunnelPlan) -> dict[str, object]:
    """One end's proposals and CHILD_SA lifetimes: the connection's custom policy, or Azure's defaults."""
    policy = t.ipsec_policy
    proposals = (gateway_proposals if _is_gateway_side(plan, node) else device_proposals)(policy)
    return dict(proposals=proposals,
                child_lifetime_s=policy.sa_lifetime_s if policy else plan.profile.ike.child_lifetime_s,
                child_lifetime_kb=policy.sa_data_kb if policy else plan.profile.ike.child_lifetime_kb)


def render_strongswan(plan: LabPlan, node: str) -> dict[str, str]:
    profile: Profile = plan.profile
    timeout, tries = retransmit_schedule(profile.ike.dpd_timeout_s)
    gateway_side = _is_gateway_side(plan, node)
    tunnels = [dict(view, **_ipsec_view(plan, node, view["t"])) for view in _tunnel_views(plan, node)]
    return {
        "strongswan/updown.sh": _template("updown.sh.j2", tunnels=tunnels, gateway_side=gateway_side),
        "strongswan/strongswan.conf": _template(
            "strongswan.conf.j2", retransmit_timeout=timeout, retransmit_tries=tries,
        ),
        "strongswan/swanctl.conf": _template(
            "swanctl.conf.j2",
            tunnels=tunnels,
            ike=profile.ike,
            gateway_side=gateway_side,
        ),
    }


def _tunnel_bgp_peer(plan: LabPlan, node: str, t: TunnelPlan) -> IPv4Address:
    """The BGP address at the far end of a tunnel."""
    if _is_gateway_side(plan, node):
        return plan.scenario.nodes[t.device].bgp_peer_ip  # type: ignore[return-value]
    return t.gateway_bgp_ip


def guard_table(lab: str) -> str:
    """The nftables table that keeps a lab's packets in the lab, named so a person can find it."""
    return f"azlab-{names.LAB.check(lab)}"


# The commented rules of guard.nft.j2: a table without all of them is no guard.
GUARD_RULES = ("out of the lab", "into the lab", "to the host", "forwarded out of the lab")


def render_guard(lab: str) -> str:
    """The host's forwarding guard for one lab, as an nft script (idempotent: it replaces the table)."""
    return _template("guard.nft.j2", lab=lab, table=guard_table(lab), prefix=bridge_prefix(lab))


def render_psk_secrets(plan: LabPlan, node: str, psks: dict[str, str]) -> dict[str, str]:
    """The only renderer that sees secrets; its output is written 0600 and never logged."""
    tunnels = _tunnel_views(plan, node)
    if not tunnels or not psks:
        return {}
    return {"secrets/psk.conf": _template("psk.conf.j2", tunnels=tunnels, psks=psks)}


def _bfd_profile_name(plan: LabPlan, timers: BfdTimers) -> str:
    """The profile's own BFD (tunnel sessions) is `lab`; a peering's timers get a profile of their own."""
    return "lab" if timers == plan.profile.bfd else f"bfd-{timers.interval_ms}x{timers.multiplier}"


def _bgp_neighbors(plan: LabPlan, node: str) -> list[dict[str, object]]:
    """The node's planned BGP sessions, in the shape frr.conf.j2 formats, each with its own settings."""
    return [dict(address=b.peer_address, asn=b.peer_asn, source=b.source, multihop=b.multihop,
                 description=b.description, static_via=b.static_via, next_hop_self=b.next_hop_self,
                 passive=b.passive, bfd_profile=_bfd_profile_name(plan, b.bfd) if b.bfd else None,
                 local_pref=b.local_pref, weight=b.weight, as_path_prepend=b.as_path_prepend,
                 keepalive_s=b.keepalive_s, hold_s=b.hold_s, route_map=f"peer-{b.peer_address}")
            for b in plan.sessions_of(node)]


def _router_id(plan: LabPlan, node: str) -> IPv4Address:
    spec = plan.scenario.nodes[node]
    return spec.bgp_peer_ip or min(spec.links.values())


def render_frr(plan: LabPlan, node: str) -> dict[str, str]:
    spec = plan.scenario.nodes[node]
    # A VNet router's address space is originated through a blackhole route:
    # more specific connected subnets still win locally.
    originate = spec.address_space
    profiles = sorted({(_bfd_profile_name(plan, b.bfd), b.bfd) for b in plan.sessions_of(node) if b.bfd},
                      key=lambda p: p[0])
    frr_conf = _template(
        "frr.conf.j2",
        node=node,
        asn=plan.nodes[node].asn,
        router_id=_router_id(plan, node),
        neighbors=_bgp_neighbors(plan, node),
        networks=originate,
        blackhole=originate if _is_vnet_router(plan, node) else [],
        bgp=plan.profile.bgp,
        bfd_profiles=profiles,
        multipath=node in plan.multipath_nodes,
    )
    daemons = _template("daemons.j2", bfd=bool(profiles))
    return {"frr/frr.conf": frr_conf, "frr/daemons": daemons}


def render_keepalived(plan: LabPlan, node: str) -> dict[str, str]:
    """VRRP for every address group the node shares (a gateway's IPs, a LAN's first hop); none: no files."""
    groups = plan.groups_of(node)
    if not groups:
        return {}
    spec = plan.scenario.nodes[node]
    views = [
        dict(group=g, source=spec.links[g.interface],
             peers=[plan.scenario.nodes[r].links[g.interface] for r in g.routers if r != node],
             # The first router listed starts active; no pre-emption, so a returning
             # router doesn't cause a second outage by taking the addresses back.
             priority=200 - 10 * g.routers.index(node))
        for g in groups
    ]
    files = {"keepalived/keepalived.conf": _template(
        "keepalived.conf.j2", node=node, groups=views, advert_int=plan.profile.vrrp.advert_interval_s)}
    if any(g.moves_tunnels for g in groups):
        files["keepalived/notify.sh"] = _template(
            "notify.sh.j2", tunnels=_tunnel_views(plan, node),
            gateway=", ".join(g.name for g in groups if g.moves_tunnels))
    return files


Renderer = Callable[[LabPlan, str], dict[str, str]]

# The renderers a kind names (Kind.renderers, lab/model/kinds.py), by key.
RENDERERS: dict[str, Renderer] = {
    "network": render_network,
    "strongswan": render_strongswan,
    "frr": render_frr,
    "keepalived": render_keepalived,
}


def render_node(plan: LabPlan, node: str, renderers: tuple[str, ...]) -> dict[str, str]:
    """The node's config files: what each renderer its kind names (by key) gives, in order."""
    files: dict[str, str] = {}
    for key in renderers:
        files.update(RENDERERS[key](plan, node))
    return files
