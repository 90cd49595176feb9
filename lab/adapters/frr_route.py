"""FRR, through `vtysh -c '... json'` run in the node's container."""
from __future__ import annotations

import json

from lab.model.errors import LabError
from lab.run.ports import BgpPath, BgpPeerState


class FrrRoute:
    def __init__(self, node: str, container: str, runtime):
        self.node = node
        self.container = container
        self.runtime = runtime

    def _json(self, command: str) -> dict:
        code, output = self.runtime.exec(self.container, ["vtysh", "-c", command], timeout_s=10)
        if code != 0:
            raise LabError(f"{self.node}: vtysh {command!r} failed: {output.strip()[:200]}")
        try:
            return json.loads(output or "{}")
        except json.JSONDecodeError:
            raise LabError(f"{self.node}: vtysh {command!r} gave no JSON: {output.strip()[:200]}") from None

    def bgp_peers(self) -> list[BgpPeerState]:
        data = self._json("show bgp neighbors json")
        peers = []
        for address, peer in data.items():
            if not isinstance(peer, dict) or "bgpState" not in peer:
                continue
            received = 0
            for af in (peer.get("addressFamilyInfo") or {}).values():
                received += int(af.get("acceptedPrefixCounter", 0))
            peers.append(
                BgpPeerState(
                    peer=address,
                    remote_as=int(peer.get("remoteAs", 0)),
                    state=peer["bgpState"],
                    prefixes_received=received,
                    uptime_ms=peer.get("bgpTimerUpMsec"),
                    description=peer.get("nbrDesc", ""),
                )
            )
        return peers

    def routes(self) -> dict[str, list[str]]:
        """Prefix -> protocols that installed it, from zebra's RIB."""
        data = self._json("show ip route json")
        return {prefix: [r.get("protocol", "?") for r in entries if r.get("selected")] for prefix, entries in data.items()}

    def bgp_next_hops(self) -> dict[str, list[str]]:
        """Prefix -> the next hops zebra forwards on, for each BGP route installed (several: ECMP)."""
        data = self._json("show ip route bgp json")
        found: dict[str, list[str]] = {}
        for prefix, entries in data.items():
            for route in entries:
                if not route.get("selected"):
                    continue
                hops = [f"{h['ip']} ({h['interfaceName']})" if h.get("interfaceName") else h.get("ip", "?")
                        for h in route.get("nexthops", []) if h.get("fib") and h.get("ip")]
                found[prefix] = hops
        return found

    def bgp_paths(self, prefix: str) -> list[BgpPath]:
        """Every path the BGP table holds for `prefix`, the best first; none when it holds no route."""
        data = self._json(f"show bgp ipv4 unicast {prefix} json")
        paths = []
        for path in data.get("paths", []):
            best = path.get("bestpath") or {}
            hop = next((h.get("ip", "?") for h in path.get("nexthops", [])), "?")
            peer = path.get("peer") or {}
            paths.append(BgpPath(
                next_hop=hop, peer=peer.get("hostname") or peer.get("peerId", "?"),
                local_pref=path.get("locPrf"), weight=int(path.get("weight", 0)),
                # "Local" for the node's own; "" for a path from its own AS.
                as_path=(path.get("aspath") or {}).get("string", ""),
                best=bool(best.get("overall")), multipath=bool(path.get("multipath")),
                reason=best.get("selectionReason", "")))
        return sorted(paths, key=lambda p: not p.best)

    def _configure(self, *commands: str) -> None:
        argv = ["vtysh", "-c", "configure terminal"]
        for command in commands:
            argv += ["-c", command]
        code, output = self.runtime.exec(self.container, argv, timeout_s=10)
        if code != 0 or "%" in output:
            raise LabError(f"{self.node}: vtysh {' / '.join(commands)!r} failed: {output.strip()[:200]}")

    def shut_down_peer(self, asn: int, peer: str, bfd_local: str | None) -> None:
        """Ends a BGP session administratively (NOTIFICATION Cease) and, with
        `bfd_local`, its multihop BFD session too (AdminDown), so the peer
        drops both now rather than when their timers run out."""
        self._configure(f"router bgp {asn}", f"neighbor {peer} shutdown")
        if bfd_local:
            self._configure("bfd", f"peer {peer} multihop local-address {bfd_local}", "shutdown")

    def bring_up_peer(self, asn: int, peer: str, bfd_local: str | None) -> None:
        """Undoes `shut_down_peer`: the session (and its BFD session) may come up again."""
        self._configure(f"router bgp {asn}", f"no neighbor {peer} shutdown")
        if bfd_local:
            self._configure("bfd", f"peer {peer} multihop local-address {bfd_local}", "no shutdown")
