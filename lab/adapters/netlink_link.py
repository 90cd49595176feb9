"""Links and routes through netlink (pyroute2), inside a node's namespace or the host's."""
from __future__ import annotations

from contextlib import contextmanager
from ipaddress import IPv4Network
from typing import Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import LabError


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


def host_routes() -> list[tuple[IPv4Network, str]]:
    """The host's own IPv4 routes (all tables), as (prefix, interface)."""
    with _ipr(None, "host") as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        found = []
        for route in ipr.get_routes(family=2, table=254):
            dst = route.get_attr("RTA_DST")
            if dst is None:
                continue  # the default route overlaps everything by definition
            prefix = IPv4Network(f"{dst}/{route['dst_len']}", strict=False)
            if prefix.is_loopback or prefix.prefixlen == 32 and route["type"] in (2, 3):
                continue  # local and broadcast entries of the host's own addresses
            found.append((prefix, names.get(route.get_attr("RTA_OIF"), "?")))
        return found
