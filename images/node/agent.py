#!/usr/bin/env python3
"""The lab's agent inside a node: VICI and netlink, spoken locally.

`lab` runs it through the engine's exec API, so it reaches every daemon and
namespace with nothing but the Docker API: no /proc/<pid> of the engine's
host, no root on it, and the same whether the engine is local, in Docker
Desktop's VM or across a TCP or SSH link. Each command prints one JSON
document; `watch`, `tail` and `clock` print one JSON object per line. Stamps are the
node's CLOCK_MONOTONIC, which every container of the engine shares with the
probes.

    lab-agent sas                          IKE and CHILD SAs
    lab-agent terminate IKE TIMEOUT_MS     ends an IKE_SA (force after the timeout)
    lab-agent watch --within S EVENT...    VICI events as they come, stamped here
    lab-agent tail --within S FILE...      lines written to the files from now on, stamped when read
    lab-agent links                        interfaces: kinds and IPv4 addresses
    lab-agent set-link NAME up|down        a link's state; prints when it changed
    lab-agent block-udp on|off PORT...     blackhole rules for UDP ports
    lab-agent fence on|off                 the node sends nothing (but on loopback) while on
    lab-agent cut IFNAME on|off            nothing passes the interface while on; it stays up
    lab-agent route-get DESTINATION        the interface a packet would leave by
    lab-agent clock                        per stdin line: monotonic and wall clock
    lab-agent kernel-config OPTION         the engine kernel's value of a config option
"""
import errno
import gzip
import json
import os
import signal
import socket
import sys
import time

VICI_SOCKET = "/run/charon.vici"
# Ahead of the main table's rule (32766), so a blocked port stays blocked.
BLACKHOLE_RULE_PRIORITY = 100
# The packet filter tables of the fence (`fence on`), in the node's own namespace.
FENCE_TABLE = "lab_fence"
# The tables of a cut (`cut IFNAME on`), one pair per interface: this prefix and the name made safe.
CUT_TABLE_PREFIX = "lab_cut_"
LISTEN_TICK_S = 0.2
# Without inotify, a tail looks for new lines this often.
TAIL_POLL_S = 0.05
IN_MODIFY = 0x2


class AgentError(Exception):
    pass


def plain(value):
    """VICI values (bytes, nested dicts and lists) as JSON-ready text."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def vici_session(timeout_s=10.0):
    import vici

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(VICI_SOCKET)
    except OSError as exc:
        sock.close()
        raise AgentError(f"charon's VICI socket does not answer ({exc.strerror or exc})") from None
    return vici.Session(sock), sock


def vici_call(call):
    from vici.exception import CommandException, SessionException

    session, sock = vici_session()
    try:
        return plain(list(call(session)))
    except (SessionException, CommandException, OSError) as exc:
        raise AgentError(f"VICI: {exc}") from None
    finally:
        sock.close()


def cmd_sas(args):
    return vici_call(lambda s: s.list_sas())


def cmd_terminate(args):
    ike, timeout_ms = args[0], int(args[1])
    vici_call(lambda s: s.terminate({"ike": ike, "timeout": timeout_ms}))
    return {"terminated": ike}


def cmd_watch(args):
    """VICI events, one JSON line each, until SIGTERM, charon goes away or the bound."""
    from vici.exception import CommandException, SessionException

    within_s, names = within_and_names(args)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    deadline = time.monotonic() + within_s
    session, sock = vici_session(timeout_s=None)
    ready = False
    try:
        for label, message in session.listen(names, timeout=LISTEN_TICK_S):
            now = time.monotonic_ns()
            if not ready:  # the first yield comes after every event is registered
                emit({"ready": now})
                ready = True
            if label is not None:
                emit({"t": now, "label": plain(label), "message": plain(message)})
            if stopping or time.monotonic() > deadline:
                break
    except (SessionException, CommandException, OSError):
        pass
    finally:
        sock.close()
    return None


def within_and_names(args):
    """`--within S NAME...` as (S, names); an hour when no bound is given."""
    within_s = float(args[args.index("--within") + 1]) if "--within" in args else 3600.0
    names = [a for i, a in enumerate(args) if a != "--within" and (i == 0 or args[i - 1] != "--within")]
    return within_s, names


class Followed:
    """One file followed from its end (from its start if it appears later): complete lines only."""

    def __init__(self, path):
        self.path = path
        self.handle = None
        self.pending = b""
        self.open(at_end=True)

    def open(self, at_end):
        try:
            self.handle = open(self.path, "rb")
        except OSError:
            return
        if at_end:
            self.handle.seek(0, os.SEEK_END)

    def new_lines(self):
        if self.handle is None:
            self.open(at_end=False)   # written for the first time since the tail began
            if self.handle is None:
                return []
        if os.fstat(self.handle.fileno()).st_size < self.handle.tell():
            self.handle.seek(0)       # truncated: what is there now is new
        self.pending += self.handle.read()
        *complete, self.pending = self.pending.split(b"\n")
        return [line.decode(errors="replace") for line in complete]


def file_watch(paths):
    """An inotify descriptor that wakes on writes to the files there are, or None (then: poll)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return None, None
    if fd < 0:
        return None, None
    for path in paths:
        libc.inotify_add_watch(fd, path.encode(), IN_MODIFY)   # a file not there yet is polled
    return fd, libc


def cmd_tail(args):
    """Lines written to the files from now on, one JSON line each, stamped when read, until
    SIGTERM or the bound. inotify wakes it on a write, so the stamp is close to the write's."""
    import select

    within_s, paths = within_and_names(args)
    if not paths:
        raise AgentError("tail: name at least one file")
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    deadline = time.monotonic() + within_s
    followed = [Followed(path) for path in paths]
    fd, libc = file_watch([f.path for f in followed if f.handle is not None])
    watched = {f.path for f in followed if f.handle is not None}
    emit({"ready": time.monotonic_ns()})
    try:
        while not stopping and time.monotonic() < deadline:
            if fd is None:
                time.sleep(TAIL_POLL_S)
            elif select.select([fd], [], [], LISTEN_TICK_S)[0]:
                try:
                    while os.read(fd, 4096):
                        pass
                except BlockingIOError:
                    pass
            for f in followed:
                lines = f.new_lines()
                read_ns = time.monotonic_ns()
                for line in lines:
                    emit({"t": read_ns, "path": f.path, "line": line})
                if fd is not None and f.handle is not None and f.path not in watched:
                    libc.inotify_add_watch(fd, f.path.encode(), IN_MODIFY)
                    watched.add(f.path)
    finally:
        if fd is not None:
            os.close(fd)
    return None


def ipr():
    from pyroute2 import IPRoute

    return IPRoute()


def link_names(ip):
    return {link["index"]: link.get_attr("IFLA_IFNAME") for link in ip.get_links()}


def cmd_links(args):
    """Each interface's kind (vxlan, tun, veth, ...), index and IPv4 addresses, in one netlink session."""
    with ipr() as ip:
        kinds, addresses, indexes = {}, {}, {}
        for link in ip.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            kinds[link.get_attr("IFLA_IFNAME")] = kind or "other"
            indexes[link.get_attr("IFLA_IFNAME")] = link["index"]
        names = link_names(ip)
        for addr in ip.get_addr(family=socket.AF_INET):
            addresses.setdefault(names.get(addr["index"], "?"), []).append(addr.get_attr("IFA_ADDRESS"))
        return {"kinds": kinds, "addresses": addresses, "indexes": indexes}


def cmd_set_link(args):
    name, state = args[0], args[1]
    if state not in ("up", "down"):
        raise AgentError(f"set-link: state must be up or down, not {state!r}")
    with ipr() as ip:
        found = ip.link_lookup(ifname=name)
        if not found:
            raise AgentError(f"no link named {name}")
        ip.link("set", index=found[0], state=state)
        return {"t": time.monotonic_ns()}


def cmd_block_udp(args):
    """Adds (on) or removes (off) policy rules that blackhole UDP to and from the ports.

    A blackhole rule drops on the route lookup, so it catches what the node
    sends and what it receives, without a packet filter. Received packets
    are looked up in the `local` table first (rule 0), so while blocked
    that lookup moves behind the blackhole rules.
    """
    from pyroute2.netlink.exceptions import NetlinkError

    blocked, ports = args[0] == "on", [int(p) for p in args[1:]]
    rules = [dict(action="blackhole", ip_proto=17, priority=BLACKHOLE_RULE_PRIORITY, **{key: f"{port}:{port}"})
             for port in ports for key in ("dport_range", "sport_range")]
    local_first = dict(table=255, priority=0)
    local_after = dict(table=255, priority=BLACKHOLE_RULE_PRIORITY + 1)
    if blocked:
        changes = [("add", r) for r in rules] + [("add", local_after), ("del", local_first)]
    else:
        changes = [("add", local_first), ("del", local_after)] + [("del", r) for r in rules]
    with ipr() as ip:
        for command, rule in changes:
            try:
                ip.rule(command, **rule)
            except NetlinkError as exc:
                # Already there (add) or already gone (del): the state asked for holds.
                if exc.code not in (errno.EEXIST, errno.ENOENT):
                    raise AgentError(f"can't {command} rule {rule} ({exc})") from None
        return {"t": time.monotonic_ns()}


def cmd_fence(args):
    """Adds (on) or removes (off) a packet filter that drops whatever the node itself sends
    (IPv4, IPv6 and ARP; loopback excepted). What it receives and forwards is untouched.

    A frozen node is fenced before it freezes so that, thawed, its stale state (a VRRP
    master's adverts and gratuitous ARP, SAs its peers dropped) reaches nobody until it has
    left its roles. A filter, not a routing rule: multicast sent on a given interface
    (VRRP) and ARP never consult the routing rules.
    """
    import subprocess

    if args[0] == "on":
        script = (f"table inet {FENCE_TABLE} {{\n chain out {{\n  type filter hook output priority -300; policy drop;\n"
                  f"  oif \"lo\" accept\n }}\n}}\n"
                  f"table arp {FENCE_TABLE} {{\n chain out {{\n  type filter hook output priority -300; policy drop;\n"
                  f" }}\n}}\n")
    else:
        present = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        script = "".join(f"delete table {family} {FENCE_TABLE}\n" for family in ("inet", "arp")
                         if f"table {family} {FENCE_TABLE}" in present)
    if script:
        done = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
        # Already on (the tables exist) or already off: the state asked for holds.
        if done.returncode != 0 and "File exists" not in done.stderr:
            raise AgentError(f"can't turn the fence {args[0]}: {done.stderr.strip()[:200]}")
    return {"t": time.monotonic_ns()}


def nft_apply(script, what):
    import subprocess

    done = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if done.returncode != 0:
        raise AgentError(f"can't {what}: {done.stderr.strip()[:200]}")


def nft_delete_tables(name, families):
    """Deletes the tables that are there: already gone is the state asked for."""
    import subprocess

    present = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.splitlines()
    script = "".join(f"delete table {family} {name}\n" for family in families
                     if f"table {family} {name}" in present)
    if script:
        nft_apply(script, f"delete {name}")


def cut_table(name):
    """The cut's table name for an interface: nft names allow letters, digits and _ only."""
    return CUT_TABLE_PREFIX + "".join(c if c.isalnum() else "_" for c in name)


def cmd_cut(args):
    """Adds (on) or removes (off) a packet filter that drops everything received on, sent out of
    and forwarded through one interface (IPv4, IPv6 and ARP), while the link stays up.

    An ExpressRoute circuit failing inside the provider's network leaves the carrier up at both
    ends: nothing tells the routers but their timers (BGP hold, BFD). `set-link down` would tell
    them at once (the kernel drops the routes over a link that goes down), a cut does not.
    """
    if len(args) != 2:
        raise AgentError("name one interface, then on or off")
    if args[1] not in ("on", "off"):
        raise AgentError(f"state must be on or off, not {args[1]!r}")
    name, state = args
    with ipr() as ip:
        if not ip.link_lookup(ifname=name):
            raise AgentError(f"no link named {name}")
    table = cut_table(name)
    if state == "off":
        nft_delete_tables(table, ("inet", "arp"))
        return {"t": time.monotonic_ns()}
    quoted = json.dumps(name)   # an nft string: the name in double quotes
    # Ahead of every other filter (the fence's -300 included), so nothing else lets a packet by.
    hook = "type filter hook {} priority -400; policy accept;"
    # Made and emptied first in the same transaction, so a second `on` leaves one set of rules.
    script = (f"table inet {table}\ndelete table inet {table}\ntable arp {table}\ndelete table arp {table}\n"
              f"table inet {table} {{\n"
              f" chain in {{\n  {hook.format('input')}\n  iifname {quoted} drop\n }}\n"
              f" chain out {{\n  {hook.format('output')}\n  oifname {quoted} drop\n }}\n"
              f" chain through {{\n  {hook.format('forward')}\n  iifname {quoted} drop\n  oifname {quoted} drop\n }}\n"
              f"}}\n"
              f"table arp {table} {{\n"
              f" chain in {{\n  {hook.format('input')}\n  iifname {quoted} drop\n }}\n"
              f" chain out {{\n  {hook.format('output')}\n  oifname {quoted} drop\n }}\n"
              f"}}\n")
    nft_apply(script, f"cut {name}")
    return {"t": time.monotonic_ns()}


def cmd_route_get(args):
    """A lookup sends nothing, so it can prove no route leaves without sending traffic."""
    from pyroute2.netlink.exceptions import NetlinkError

    with ipr() as ip:
        try:
            routes = ip.route("get", dst=args[0])
        except NetlinkError:
            return {"interface": None}
        names = link_names(ip)
        for route in routes:
            oif = route.get_attr("RTA_OIF")
            return {"interface": names.get(oif, str(oif))}
        return {"interface": None}


def cmd_clock(args):
    """For each line on stdin, the monotonic clock and the wall clock read back to back.

    The caller times each round trip and keeps the shortest, as NTP does.
    """
    for _ in sys.stdin:
        before = time.monotonic_ns()
        real = time.time_ns()
        after = time.monotonic_ns()
        emit({"monotonic": (before + after) // 2, "realtime": real})
    return None


def cmd_kernel_config(args):
    option = args[0]
    try:
        with gzip.open("/proc/config.gz", "rt") as handle:
            for line in handle:
                if line.startswith(option + "="):
                    return {"source": "/proc/config.gz", "value": line.strip().split("=", 1)[1]}
    except OSError as exc:
        return {"source": f"/proc/config.gz unreadable ({exc.strerror})", "value": None}
    return {"source": "/proc/config.gz", "value": "not set"}


COMMANDS = {
    "sas": cmd_sas, "terminate": cmd_terminate, "watch": cmd_watch, "tail": cmd_tail,
    "links": cmd_links, "set-link": cmd_set_link,
    "block-udp": cmd_block_udp, "fence": cmd_fence, "cut": cmd_cut, "route-get": cmd_route_get, "clock": cmd_clock,
    "kernel-config": cmd_kernel_config,
}


def emit(document):
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write(f"usage: lab-agent {{{','.join(COMMANDS)}}} ...\n")
        return 2
    try:
        result = COMMANDS[argv[0]](argv[1:])
    except (AgentError, IndexError, ValueError) as exc:
        sys.stderr.write(f"{argv[0]}: {exc}\n")
        return 1
    except BrokenPipeError:
        return 0
    if result is not None:
        emit(result)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
