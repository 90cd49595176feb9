"""Links and routes through netlink (pyroute2), inside a node's namespace or the host's."""
from __future__ import annotations

import errno
from contextlib import contextmanager
from typing import Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import LabError

# Ahead of the main table's rule (32766), so a blocked port stays blocked.
BLACKHOLE_RULE_PRIORITY = 100


@contextmanager
def _ipr(netns: str | None, node: str) -> Iterator[IPRoute]:
    try:
        # flags=0: never create a namespace that isn't there.
        ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
    except (OSError, NetlinkError) as exc:
        raise LabError(f"{node}: can't open its network namespace ({exc})") from None
    try:
        yield ipr
    finally:
        ipr.close()


class NetlinkLink:
    def __init__(self, node: str, pid: int):
        self.node = node
        self.netns = f"/proc/{pid}/ns/net"

    def addresses(self) -> dict[str, list[str]]:
        with _ipr(self.netns, self.node) as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            found: dict[str, list[str]] = {}
            for addr in ipr.get_addr(family=2):
                found.setdefault(names.get(addr["index"], "?"), []).append(addr.get_attr("IFA_ADDRESS"))
            return found

    def link_kinds(self) -> dict[str, str]:
        """Interface name -> kind (vxlan, tun, veth, ...); TUN devices report 'tun'."""
        with _ipr(self.netns, self.node) as ipr:
            kinds = {}
            for link in ipr.get_links():
                info = link.get_attr("IFLA_LINKINFO")
                kind = info.get_attr("IFLA_INFO_KIND") if info else None
                kinds[link.get_attr("IFLA_IFNAME")] = kind or "other"
            return kinds

    def set_link(self, name: str, up: bool) -> None:
        with _ipr(self.netns, self.node) as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise LabError(f"{self.node}: no link named {name}")
            ipr.link("set", index=found[0], state="up" if up else "down")

    def block_udp_ports(self, ports: list[int], blocked: bool) -> None:
        """Adds (or removes) policy rules that blackhole UDP to and from `ports`.

        A blackhole rule drops on the route lookup, so it catches what the
        node sends and what it receives, without a packet filter. Received
        packets are looked up in the `local` table first (rule 0), so while
        blocked that lookup moves behind the blackhole rules.
        """
        rules = [dict(action="blackhole", ip_proto=17, priority=BLACKHOLE_RULE_PRIORITY, **{key: f"{port}:{port}"})
                 for port in ports for key in ("dport_range", "sport_range")]
        local_first = dict(table=255, priority=0)
        local_after = dict(table=255, priority=BLACKHOLE_RULE_PRIORITY + 1)
        with _ipr(self.netns, self.node) as ipr:
            if blocked:
                changes = [("add", r) for r in rules] + [("add", local_after), ("del", local_first)]
            else:
                changes = [("add", local_first), ("del", local_after)] + [("del", r) for r in rules]
            for command, rule in changes:
                try:
                    ipr.rule(command, **rule)
                except NetlinkError as exc:
                    # Already there (add) or already gone (del): the state asked for holds.
                    if exc.code not in (errno.EEXIST, errno.ENOENT):
                        raise LabError(f"{self.node}: can't {command} rule {rule} ({exc})") from None

    def route_lookup(self, destination: str) -> str | None:
        """The interface a packet to `destination` would leave by, or None if unroutable.

        A lookup sends nothing, so it can prove no route leaves the machine
        without sending traffic anywhere.
        """
        with _ipr(self.netns, self.node) as ipr:
            try:
                routes = ipr.route("get", dst=destination)
            except NetlinkError:
                return None
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            for route in routes:
                oif = route.get_attr("RTA_OIF")
                return names.get(oif, str(oif))
            return None
