"""Rendering result values for people (rich tables) and scripts (JSON)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from rich.console import Console, Group
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

from lab.model.azure import azure_rules
from lab.run.paths import EXPRESSROUTE, VPN, PathRow
from lab.run.ports import BgpPath
from lab.run.status import LabStatus

# Wide enough for any status: only its natural width is measured against it.
UNBOUNDED = 10_000


def _state(text: str, good: set[str]) -> Text:
    return Text(text, style="green" if text in good else "red")


def _pps(rate: float, wide: bool) -> str:
    """Narrow, a rate of 10 packets/s or more is rounded to a whole number (12345.6 -> 12346)."""
    return f"{rate:g}" if wide or rate < 10 else f"{round(rate)}"


# What `lab status` leaves out to fit 80 columns, and `--wide` shows; said under the tables.
WIDE_ONLY = "SKUs, ESP packet totals and negotiated algorithms: `lab status --wide`"


def _table(title: str, *columns: str, whole: tuple[str, ...] = ()) -> Table:
    """A table whose `whole` columns (names, addresses, states) never wrap; the others wrap at spaces."""
    # As wide as its title at least: a title wraps at the table's width.
    table = Table(title=title, title_justify="left", min_width=len(title))
    for col in columns:
        table.add_column(col, no_wrap=col in whole)
    return table


@dataclass(frozen=True)
class PathReading:
    """A prefix at a router that chooses between paths: what carries it (lab/run/paths.py), and every
    path the router's BGP table holds for it, best first (None: it could not be read, `problem` says why)."""
    row: PathRow
    bgp: list[BgpPath] | None
    problem: str = ""

    def to_dict(self) -> dict:
        return {**self.row.to_dict(), "bgp_paths": None if self.bgp is None else [asdict(p) for p in self.bgp],
                "problem": self.problem}


@dataclass(frozen=True)
class StatusPaths:
    readings: list[PathReading]
    # The plan has sessions of more than one carrier (ExpressRoute and a VPN): only then is the
    # table shown by default; a VPN-only lab's would read "VPN" on every row, its next hops
    # already in the routes table.
    several_carriers: bool

    def to_dict(self) -> list[dict]:
        return [r.to_dict() for r in self.readings]


CARRIER_NAMES = {EXPRESSROUTE: "ExpressRoute", VPN: "VPN"}


def carrier_text(carrier: str, next_hops: list[str]) -> Text:
    """A PathRow's carrier for people: "ExpressRoute", "VPN", "ExpressRoute + VPN"; none in red."""
    if not next_hops:
        return Text("none", style="bold red")
    return Text(" + ".join(CARRIER_NAMES.get(c, c) for c in carrier.split("+")) if carrier else "?")


def _local_pref(path: BgpPath) -> str:
    # FRR's default, which the lab keeps.
    return "100 (default)" if path.local_pref is None else str(path.local_pref)


# The attribute each of BGP's reasons compares, to show the value it beat.
COMPARED = {"Local Pref": _local_pref, "Weight": lambda p: str(p.weight),
            "AS Path": lambda p: f"{len(p.as_path.split())} ASes"}


def why_best(paths: list[BgpPath], wide: bool = False) -> str:
    """BGP's reason, with the value that won and the one it beat (the best path not used beside it);
    `wide`, with the beaten path's peer too (narrow, a long name would be cut)."""
    best = next((p for p in paths if p.best), None)
    if best is None or not best.reason:
        return "-"
    beaten = next((p for p in paths if not p.best and not p.multipath), None)
    compare = COMPARED.get(best.reason)
    if beaten is None or compare is None:
        return best.reason
    return f"{best.reason}: {compare(best)} over {compare(beaten)}" + (f" ({beaten.peer})" if wide else "")


def _path_tables(paths: StatusPaths, wide: bool) -> list[Table]:
    """What carries each prefix and over which session; BGP's best path and why it won (wide: every path)."""
    carried = _table("Paths (at the routers that choose)", "node", "prefix", "carried by",
                     "next hop (session)" if wide else "next hop: session", whole=("node", "prefix", "carried by"))
    columns = (("node", "prefix", "path", "next hop", "peer") if wide else ("node", "prefix")) + (
        "local pref", "weight", "AS path", "why best")
    ranked = _table("BGP's paths (best first; ECMP: used beside it)" if wide else "Best paths (BGP)", *columns,
                    whole=("node", "prefix", "path", "next hop", "peer", "weight"))
    for reading in paths.readings:
        row = reading.row
        hops = [f"{hop} ({via})" if wide else f"{hop.split()[0]}: {via}" for hop, via in zip(row.next_hops, row.via)]
        carried.add_row(row.node, row.prefix, carrier_text(row.carrier, row.next_hops), "\n".join(hops) or "-")
        if reading.bgp is None:
            ranked.add_row(row.node, row.prefix, *(["?"] * (len(columns) - 3)), Text(reading.problem, style="red"))
            continue
        shown = reading.bgp if wide else [p for p in reading.bgp if p.best]
        for n, p in enumerate(shown):
            attrs = (_local_pref(p), str(p.weight), p.as_path or "-", why_best(reading.bgp, wide) if p.best else "")
            own = (row.node, row.prefix) if n == 0 else ("", "")
            if wide:
                kind = "best" if p.best else "ECMP" if p.multipath else "backup"
                ranked.add_row(*own, Text(kind, style="bold" if p.best else ""), p.next_hop, p.peer, *attrs)
            else:
                ranked.add_row(*own, *attrs)
        if not shown:
            ranked.add_row(row.node, row.prefix, *(["-"] * (len(columns) - 3)), Text("no route", style="red"))
    return [carried, ranked]


def render_status(status: LabStatus, wide: bool = False, paths: StatusPaths | None = None) -> Group:
    """The lab now. Without `wide` it fits 80 columns and no name, address or state is cut:
    SKUs, ESP packet totals (but when no rate was measured) and negotiated algorithms are left
    to `wide`; an unsettled tunnel's IKE and CHILD states, and each ECMP next hop, get a line
    of their own; a rate of 10 packets/s or more is a whole number. `paths`, shown where the lab has
    more than one carrier (always with `wide`): what carries each prefix, and BGP's reasons."""
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

    gateway_columns = ("gateway", "mode") + (("SKU",) if wide else ()) + ("instance", "public IP", "state")
    gateways = _table("Gateways (SKU: Azure's aggregate throughput, for reference)" if wide else "Gateways",
                      *gateway_columns, whole=("gateway", "mode", "instance", "public IP", "state"))
    skus = azure_rules().skus.limits
    for gw in status.gateways:
        sku = f"{gw.sku} ({skus[gw.sku].throughput_mbps} Mbit/s)" if gw.sku in skus else gw.sku or "-"
        for n, i in enumerate(gw.instances):
            state = Text("active", style="green") if i in gw.active else Text(
                "standby" if gw.strategy.has_standbys else "not live",
                style="" if gw.strategy.has_standbys else "red")
            # The gateway's own values once, on its first instance's row.
            own = (gw.gateway, gw.mode) + ((sku,) if wide else ()) if n == 0 else ("", "") + (("",) if wide else ())
            gateways.add_row(*own, i, gw.public_ips.get(i, "?"), state)

    shared = _table("Shared addresses (VRRP)", "group", "address", "held by", "routers", whole=("group", "address"))
    for g in status.vrrp:
        shared.add_row(g.group, g.address, ", ".join(g.holders) or Text("none", style="red"), ", ".join(g.routers))

    window = f"; ESP packets/s over the last {status.rate_window_s:g} s" if status.rate_window_s else ""
    # Narrow, the totals stand in for the rate only when none was measured.
    counts = ("pkt/s in/out", "ESP pkts in/out") if wide else (
        ("pkt/s in/out",) if status.rate_window_s else ("ESP pkts in/out",))
    tunnels = _table(f"Tunnels (IKEv2 / ESP{window})", "node", "tunnel", "remote", "SAs", *counts,
                     whole=("node", "tunnel", "remote", "SAs") + counts)
    negotiated = _table("Negotiated algorithms (IKE SA, CHILD SA)", "node", "tunnel", "IKE", "ESP",
                        whole=("node", "tunnel", "IKE", "ESP"))
    for t in status.tunnels:
        settled = t.ike_state == "ESTABLISHED" and t.child_state == "INSTALLED"
        rate = Text("-") if t.pps_in is None else Text(f"{_pps(t.pps_in, wide)}/{_pps(t.pps_out, wide)}",
                                                       style="bold green" if t.carrying else "")
        cells = {"pkt/s in/out": rate, "ESP pkts in/out": f"{t.packets_in}/{t.packets_out}"}
        tunnels.add_row(t.node, t.tunnel, t.remote,
                        Text("up", style="green") if settled else Text(
                            f"IKE {t.ike_state}{', ' if wide else chr(10)}CHILD {t.child_state}", style="red"),
                        *(cells[c] for c in counts))
        negotiated.add_row(t.node, t.tunnel, t.ike_algorithms or "-", t.esp_algorithms or "-")

    routes = _table("BGP routes in use (several next hops: ECMP)", "node", "prefix", "next hops",
                    whole=("node", "prefix"))
    for r in status.routes:
        routes.add_row(r.node, r.prefix, Text((", " if wide else "\n").join(r.next_hops) or "none",
                                              style="bold" if len(r.next_hops) > 1 else ""))

    bgp = _table("BGP sessions", "node", "peer", "description", "state",
                 "prefixes received" if wide else "prefixes", whole=("node", "peer", "state"))
    for b in status.bgp:
        bgp.add_row(b.node, b.peer, b.description, _state(b.state, {"Established"}), str(b.prefixes_received))

    # Docker's health only where a healthcheck runs (a Compose lab): `lab up` checks readiness itself,
    # while it waits, and an idle lab runs none.
    health = any(n.health for n in status.nodes)
    columns = ("node", "kind", "container") + (("health",) if health else ())
    nodes = _table("Nodes", *columns, whole=columns)
    for n in status.nodes:
        nodes.add_row(n.node, n.kind, n.status, *((n.health or "-",) if health else ()))

    chosen = _path_tables(paths, wide) if paths is not None and (wide or paths.several_carriers) else []
    parts = ([head, gateways] + ([shared] if status.vrrp else []) + [tunnels] + ([negotiated] if wide else [])
             + [bgp, routes] + chosen + [nodes])
    reasons = status.unconverged_reasons()
    if reasons:
        parts.append(Text("waiting on: " + "; ".join(reasons), style="yellow"))
    if not wide:
        parts.append(Text(WIDE_ONLY, style="dim"))
    return Group(*parts)


def status_json(status: LabStatus, paths: StatusPaths | None = None) -> str:
    data = status.to_dict()
    if paths is not None:
        data["paths"] = paths.to_dict()
    return json.dumps(data, indent=2, sort_keys=True)


def print_status(status: LabStatus, console: Console, wide: bool = False, paths: StatusPaths | None = None) -> None:
    """Narrow, it fits the console (80 columns and up). Wide, every column at full width, past the
    console's if need be: a pipe's console is 80 columns, and `--wide` is asked for to see it all."""
    view = render_status(status, wide, paths)
    # The tables' width: the head's and the notes' lines wrap at any width.
    needed = max((Measurement.get(console, console.options.update_width(UNBOUNDED), part).maximum
                  for part in view.renderables if isinstance(part, Table) and part.title), default=0) if wide else 0
    if needed <= console.width:
        console.print(view)
    else:
        console.print(Segments(console.render(view, console.options.update_width(needed))), crop=False)


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
