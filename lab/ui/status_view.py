"""Rendering result values for people (rich tables) and scripts (JSON)."""
from __future__ import annotations

import json

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from lab.model.azure import azure_rules
from lab.plan.redundancy import strategy_for
from lab.run.status import LabStatus


def _state(text: str, good: set[str]) -> Text:
    return Text(text, style="green" if text in good else "red")


def render_status(status: LabStatus) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row("lab", f"{status.lab} (scenario {status.scenario}, profile {status.profile})")
    head.add_row("data plane", status.data_plane)
    head.add_row("engine kernel ESP", status.host_kernel_esp)
    verdict = Text("converged", style="bold green") if status.converged else Text("not converged", style="bold red")
    head.add_row("state", verdict)
    if status.guard:
        leaked = status.guard.get("forwarded out of the lab", 0)
        stopped = sum(v for k, v in status.guard.items() if k != "forwarded out of the lab")
        head.add_row("host guard", Text(f"{leaked} packets forwarded out of the lab; {stopped} stopped at the lab's edge",
                                        style="green" if leaked == 0 else "bold red"))
    for line in status.departures:
        head.add_row("departs from Azure", Text(line, style="yellow"))
    if status.faults_in_place:
        head.add_row("faults in place", Text(", ".join(status.faults_in_place) + " (`lab repair` undoes them)", style="yellow"))

    gateways = Table(title="Gateways (SKU: Azure's aggregate throughput, for reference)", title_justify="left")
    for col in ("gateway", "mode", "SKU", "instance", "public IP", "state"):
        gateways.add_column(col)
    skus = azure_rules().skus.limits
    for gw in status.gateways:
        sku = f"{gw.sku} ({skus[gw.sku].throughput_mbps} Mbit/s)" if gw.sku in skus else gw.sku or "-"
        for i in gw.instances:
            state = Text("active", style="green") if i in gw.active else Text(
                "standby" if strategy_for(gw.mode).has_standbys else "not live",
                style="" if strategy_for(gw.mode).has_standbys else "red")
            gateways.add_row(gw.gateway, gw.mode, sku, i, gw.public_ips.get(i, "?"), state)

    shared = Table(title="Shared addresses (VRRP)", title_justify="left")
    for col in ("group", "address", "held by", "routers"):
        shared.add_column(col)
    for g in status.vrrp:
        shared.add_row(g.group, g.address, ", ".join(g.holders) or Text("none", style="red"), ", ".join(g.routers))

    window = f"; ESP packets/s over the last {status.rate_window_s:g} s" if status.rate_window_s else ""
    tunnels = Table(title=f"Tunnels (IKEv2 / ESP{window})", title_justify="left")
    for col in ("node", "tunnel", "remote", "SAs", "pkt/s in/out", "ESP pkts in/out"):
        tunnels.add_column(col)
    negotiated = Table(title="Negotiated algorithms (IKE SA, CHILD SA)", title_justify="left")
    for col in ("node", "tunnel", "IKE", "ESP"):
        negotiated.add_column(col)
    for t in status.tunnels:
        settled = t.ike_state == "ESTABLISHED" and t.child_state == "INSTALLED"
        rate = Text("-") if t.pps_in is None else Text(f"{t.pps_in:g}/{t.pps_out:g}",
                                                       style="bold green" if t.carrying else "")
        tunnels.add_row(t.node, t.tunnel, t.remote,
                        Text("up", style="green") if settled else Text(f"IKE {t.ike_state}, CHILD {t.child_state}",
                                                                       style="red"),
                        rate, f"{t.packets_in}/{t.packets_out}")
        negotiated.add_row(t.node, t.tunnel, t.ike_algorithms or "-", t.esp_algorithms or "-")

    routes = Table(title="BGP routes in use (several next hops: ECMP)", title_justify="left")
    for col in ("node", "prefix", "next hops"):
        routes.add_column(col)
    for r in status.routes:
        routes.add_row(r.node, r.prefix, Text(", ".join(r.next_hops) or "none",
                                              style="bold" if len(r.next_hops) > 1 else ""))

    bgp = Table(title="BGP sessions", title_justify="left")
    for col in ("node", "peer", "description", "state", "prefixes received"):
        bgp.add_column(col)
    for b in status.bgp:
        bgp.add_row(b.node, b.peer, b.description, _state(b.state, {"Established"}), str(b.prefixes_received))

    nodes = Table(title="Nodes", title_justify="left")
    for col in ("node", "kind", "container", "health"):
        nodes.add_column(col)
    for n in status.nodes:
        nodes.add_row(n.node, n.kind, n.status, n.health or "-")

    parts = [head, gateways] + ([shared] if status.vrrp else []) + [tunnels, negotiated, bgp, routes, nodes]
    reasons = status.unconverged_reasons()
    if reasons:
        parts.append(Text("waiting on: " + "; ".join(reasons), style="yellow"))
    return Group(*parts)


def status_json(status: LabStatus) -> str:
    return json.dumps(status.to_dict(), indent=2, sort_keys=True)


def print_status(status: LabStatus, console: Console) -> None:
    console.print(render_status(status))


CONNECTION_FIELDS = [
    ("Azure's side", [
        ("gateway", lambda c: f"{c.gateway} ({', '.join(c.gateway_instances)})"),
        ("gateway public IP", lambda c: c.gateway_public_ip),
        ("gateway BGP peer IP, ASN", lambda c: f"{c.gateway_bgp_ip}, AS {c.gateway_asn}"
                                                 + ("" if c.gateway_opens_bgp else " (never opens the session: the device must)")),
        ("device public IP", lambda c: c.device_public_ip),
        ("device BGP IP, ASN", lambda c: f"{c.device_bgp_ip}, AS {c.device_asn}"),
        ("IPsec/IKE policy", lambda c: c.policy),
        ("gateway accepts (IKE)", lambda c: c.gateway_ike.replace(",", ", ")),
        ("gateway accepts (ESP)", lambda c: c.gateway_esp.replace(",", ", ")),
        ("the lab's device offers", lambda c: f"IKE {c.suggested_ike}; ESP {c.suggested_esp}"),
        ("lifetimes, DPD", lambda c: f"IKE SA {c.ike_lifetime_s} s, CHILD SA {c.child_lifetime_s} s, "
                                     f"DPD timeout {c.dpd_timeout_s:g} s"),
        ("shared key", lambda c: c.psk_file),
    ]),
    ("What the lab needs beyond Azure's documents", [
        ("encapsulation", lambda c: c.encapsulation),
        ("traffic selectors", lambda c: f"device {c.device_ts} <-> gateway {c.gateway_ts} (a proposal of any-to-any, "
                                        "or of more, is narrowed to these)"),
        ("routed link (VXLAN)", lambda c: f"VNI {c.vxlan_vni}, UDP {c.vxlan_port}, between the two /32s; device "
                                          f"{c.device_link}, gateway {c.gateway_link} (MAC {c.gateway_link_mac}, "
                                          f"static neighbour), MTU {c.link_mtu}"),
        ("BGP", lambda c: "over the VXLAN link, to the gateway's BGP peer IP (a static route via its link address)"),
    ]),
]


def render_connections(connections) -> Group:
    tables = []
    for c in connections:
        table = Table(title=f"Connection {c.tunnel}: {c.device} to {c.gateway}", title_justify="left", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        for heading, rows in CONNECTION_FIELDS:
            table.add_row(Text(heading, style="underline"), "")
            for label, value in rows:
                table.add_row(label, value(c))
        tables.append(table)
    return Group(*tables)
