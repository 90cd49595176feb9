"""The console's picture of a running lab: a status read now and then, kept current by events.

Pure. A `LabStatus` (read every few seconds, and after each fault or repair) sets everything; the
control events that arrive in between (IKE and CHILD SAs, BGP and BFD sessions, VRRP) change the
piece they are about at once, so the page colours a tunnel down the moment charon says so rather than
at the next read. What the stream doesn't carry (ESP packet rates, which path carries each prefix,
whether a container runs) comes from the reads: rates are packet counters over the time between two.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lab.model import daemon_events as ev
from lab.model.schema import LabPlan
from lab.run.paths import route_paths
from lab.run.status import LabStatus

UP, DOWN, UNKNOWN = "up", "down", "unknown"


@dataclass
class TunnelEnd:
    node: str
    tunnel: str
    ike: str = UNKNOWN          # strongSwan's IKE_SA state (ESTABLISHED, CONNECTING, ...), or up/down from an event
    child: str = UNKNOWN        # the CHILD_SA's (INSTALLED, ...)
    remote: str = ""
    packets_in: int = 0
    packets_out: int = 0
    pps_in: float | None = None
    pps_out: float | None = None

    @property
    def up(self) -> bool:
        return self.ike in ("ESTABLISHED", UP) and self.child in ("INSTALLED", UP)


@dataclass
class SessionEnd:
    node: str
    peer: str
    description: str = ""
    state: str = UNKNOWN        # FRR's (Established, Active, ...)
    bfd: str = UNKNOWN          # up / down, from BFD's state changes


@dataclass
class LiveState:
    lab: str
    scenario: str
    profile: str
    nodes: dict[str, dict] = field(default_factory=dict)              # name -> kind, status, health, running
    tunnels: dict[str, TunnelEnd] = field(default_factory=dict)       # "node|tunnel"
    sessions: dict[str, SessionEnd] = field(default_factory=dict)     # "node|peer address"
    vrrp: dict[str, dict] = field(default_factory=dict)               # group -> address, holders, routers
    active: dict[str, list[str]] = field(default_factory=dict)        # gateway -> its active instances
    paths: list[dict] = field(default_factory=list)
    converged: bool = False
    unconverged: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    read_at: float | None = None       # when the last status was read (the caller's clock, seconds)
    events_since_read: int = 0

    @classmethod
    def of(cls, plan: LabPlan) -> "LiveState":
        state = cls(plan.lab, plan.scenario.name, plan.profile.name)
        for node in plan.nodes.values():
            state.nodes[node.name] = {"kind": node.kind, "status": UNKNOWN, "health": None, "running": False}
        for group in plan.vrrp_groups:
            state.vrrp[group.name] = {"address": ", ".join(str(a[0]) for a in group.addresses), "holders": [],
                                      "routers": list(group.routers)}
        return state

    # -- a status read ---------------------------------------------------------------------------
    def take_status(self, plan: LabPlan, status: LabStatus, at: float) -> None:
        """Everything from one read; ESP rates from the packet counters since the previous read."""
        elapsed = None if self.read_at is None else at - self.read_at
        previous = self.tunnels
        self.nodes = {n.node: {"kind": n.kind, "status": n.status, "health": n.health,
                               "running": n.status == "running"} for n in status.nodes}
        for name, node in plan.nodes.items():
            self.nodes.setdefault(name, {"kind": node.kind, "status": "missing", "health": None, "running": False})
        self.tunnels = {}
        for row in status.tunnels:
            key = f"{row.node}|{row.tunnel}"
            end = TunnelEnd(row.node, row.tunnel, row.ike_state, row.child_state, row.remote,
                            row.packets_in, row.packets_out)
            before = previous.get(key)
            if elapsed and elapsed > 0 and before is not None and before.remote == end.remote:
                end.pps_in = max(0, end.packets_in - before.packets_in) / elapsed
                end.pps_out = max(0, end.packets_out - before.packets_out) / elapsed
            self.tunnels[key] = end
        bfd = {key: s.bfd for key, s in self.sessions.items()}
        self.sessions = {f"{b.node}|{b.peer}": SessionEnd(b.node, b.peer, b.description, b.state,
                                                          bfd.get(f"{b.node}|{b.peer}", UNKNOWN))
                         for b in status.bgp}
        for group in status.vrrp:
            self.vrrp[group.group] = {"address": group.address, "holders": list(group.holders),
                                      "routers": list(group.routers)}
        self.active = {g.gateway: list(g.active) for g in status.gateways}
        self.paths = [asdict(p) for p in route_paths(plan, status.routes)]
        self.converged = status.converged
        self.unconverged = status.unconverged_reasons()
        self.faults = list(status.faults_in_place)
        self.read_at = at
        self.events_since_read = 0

    # -- an event --------------------------------------------------------------------------------
    def take_event(self, plan: LabPlan, event: ev.Event) -> bool:
        """Applies one control event; True when it changed something the page shows."""
        kind, node = event.kind, event.node
        first = event.detail.split(" ", 1)[0] if event.detail else ""
        changed = False
        if kind in (ev.IKE_UP, ev.IKE_DOWN, ev.CHILD_UP, ev.CHILD_DOWN) and first:
            key = f"{node}|{first}"
            end = self.tunnels.get(key) or TunnelEnd(node, first)
            if kind in (ev.IKE_UP, ev.IKE_DOWN):
                end.ike = UP if kind == ev.IKE_UP else DOWN
                if kind == ev.IKE_DOWN:
                    end.child = DOWN
            else:
                end.child = UP if kind == ev.CHILD_UP else DOWN
            if not end.up:
                end.pps_in = end.pps_out = None
            self.tunnels[key] = end
            changed = True
        elif kind in (ev.BGP_UP, ev.BGP_DOWN) and first:
            session = self.sessions.get(f"{node}|{first}") or SessionEnd(node, first)
            session.state = "Established" if kind == ev.BGP_UP else "Down"
            self.sessions[f"{node}|{first}"] = session
            changed = True
        elif kind in (ev.BFD_UP, ev.BFD_DOWN) and first:
            session = self.sessions.get(f"{node}|{first}") or SessionEnd(node, first)
            session.bfd = UP if kind == ev.BFD_UP else DOWN
            self.sessions[f"{node}|{first}"] = session
            changed = True
        elif kind in (ev.VRRP_MASTER, ev.VRRP_BACKUP, ev.VRRP_FAULT, ev.VRRP_STOP):
            for group in plan.groups_of(node):
                holders = [h for h in self.vrrp.get(group.name, {}).get("holders", []) if h != node]
                if kind == ev.VRRP_MASTER:
                    holders.append(node)
                self.vrrp.setdefault(group.name, {"address": "", "routers": list(group.routers)})["holders"] = holders
                if group.moves_tunnels:
                    gateway = plan.instance_gateway(node)
                    if gateway is not None:
                        self.active[gateway[0]] = list(holders)
                changed = True
        if changed:
            self.events_since_read += 1
        return changed

    def as_dict(self) -> dict:
        return {
            "lab": self.lab, "scenario": self.scenario, "profile": self.profile,
            "nodes": self.nodes,
            "tunnels": [asdict(t) | {"up": t.up} for t in self.tunnels.values()],
            "sessions": [asdict(s) for s in self.sessions.values()],
            "vrrp": self.vrrp, "active": self.active, "paths": self.paths,
            "converged": self.converged, "unconverged": self.unconverged, "faults": self.faults,
            "events_since_read": self.events_since_read,
        }
