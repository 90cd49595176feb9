"""Packet captures inside a node's network namespace, by tcpdump in the node (issue 20).

`capture_request` checks what a user asked for against the plan where it enters (no engine call);
`capture` has tcpdump compile the filter (`-d`), then capture for a bounded time, and returns the
pcap's bytes. The reader at the end is small and pure (pcap, Ethernet / Linux cooked, IPv4, UDP,
IKE and ESP headers): the tests and docs/capture.md read what is on the wire with it.

What a capture can hold, and why no key is ever in it: docs/capture.md.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Iterator

from lab.model.errors import LabError
from lab.model.kinds import KINDS
from lab.model.names import _shown
from lab.model.schema import LabPlan
from lab.run.ports import Adapters
from lab.run.status import running_node

ANY = "any"   # tcpdump's pseudo-interface: every interface of the node, lo and the tunnels' included
SECONDS_MIN, SECONDS_MAX, SECONDS_DEFAULT = 1, 120, 10
# Whole frames at the lab's 1500-byte MTU with their link header (Ethernet 14, Linux cooked v2 20),
# so every IKE message opens whole in Wireshark (SA, KE, Nonce and Notify payloads); only a frame
# merged by the kernel (GRO) beyond the MTU is cut.
SNAPLEN = 1600
# With SNAPLEN, at most 20,000 x (1600 + 16) bytes = 32 MB, held in memory once and downloaded from
# the browser console in one piece. Measured (docs/capture.md): with the probes running both ways,
# the VPN device's `internet` link alone is about 110 packets a second (120 s fit), while `any` there
# sees each probe four times (LAN, vti0, ipsec0, internet), about 420 a second: the cap at ~45 s.
PACKET_CAP = 20_000
FILTER_MAX_CHARS = 1000
# tcpdump runs with -Z root (see _CAPTURE): it still calls initgroups(), which needs SETGID; NET_RAW opens
# its socket. A kind without them (a workload host) can't capture in its own namespace.
TCPDUMP_CAPABILITIES = ("NET_RAW", "SETGID")
FILTER_CHECK_WITHIN_S = 10.0
# Beyond the capture's own seconds: tcpdump's start, its exit after SIGTERM, the pcap's way back.
EXEC_MARGIN_S = 10.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class CaptureRequest:
    """A capture as checked against the plan: which node, which interface in it, how long, what filter."""
    node: str
    link: str           # as asked: `any`, one of the node's networks, or a tunnel's routed link
    interface: str      # its name inside the node
    seconds: float
    bpf: str | None     # passed to tcpdump as one argv element, never through a shell

    @property
    def where(self) -> str:
        return f"{self.node}:{self.link}"


def capture_links(plan: LabPlan, node: str) -> dict[str, str]:
    """What LINK may name on `node`, each with its interface inside the node.

    Each link is named after its network in the node (images/node/name-link.sh, run by the node's
    network.sh); a tunnel's routed link is the VXLAN interface the plan gives it (vti0, ...).
    """
    links = {network: network for network in plan.nodes[node].links}
    links.update({t.interface: t.interface for t in plan.tunnels_of(node)})
    return links


def capture_request(plan: LabPlan, node: str, link: str | None = None, bpf: str | None = None,
                    seconds: float = SECONDS_DEFAULT) -> CaptureRequest:
    """The request, checked where it enters: every problem in one line (LabError), no engine call."""
    problems: list[str] = []
    interface = ANY
    if not isinstance(node, str) or node not in plan.nodes:
        shown = _shown(node) if isinstance(node, str) else repr(node)
        raise LabError(f"unknown node {shown}: lab {plan.lab}'s nodes are {', '.join(plan.nodes)}")
    link = ANY if link is None or link == "" else link
    links = capture_links(plan, node)
    if link != ANY:
        if not isinstance(link, str) or link not in links:
            shown = _shown(link) if isinstance(link, str) else repr(link)
            problems.append(f"{node} has no link {shown}: its links are {', '.join([ANY, *links])}")
        else:
            interface = links[link]
    missing = [c for c in TCPDUMP_CAPABILITIES if c not in KINDS[plan.nodes[node].kind].capabilities]
    if missing:
        problems.append(f"{node} ({plan.nodes[node].kind}) can't run tcpdump: its container has no "
                        f"{' or '.join(missing)}{_capture_instead(plan, node)}")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            SECONDS_MIN <= seconds <= SECONDS_MAX):
        problems.append(f"seconds {seconds!r}: a capture lasts {SECONDS_MIN} to {SECONDS_MAX} s")
    if bpf is not None:
        if not isinstance(bpf, str):
            problems.append(f"filter {bpf!r}: a filter is text")
            bpf = None
        else:
            bpf = bpf.strip() or None
    if bpf is not None and (len(bpf) > FILTER_MAX_CHARS or _CONTROL.search(bpf)):
        problems.append(f"filter {_shown(bpf)}: one line without control characters, at most "
                        f"{FILTER_MAX_CHARS} characters")
    if problems:
        raise LabError("; ".join(problems))
    return CaptureRequest(node=node, link=link, interface=interface, seconds=seconds, bpf=bpf)


def _capture_instead(plan: LabPlan, node: str) -> str:
    """Where the same traffic can be captured: the same network, at a node that can run tcpdump."""
    for network in plan.nodes[node].links:
        for other, spec in plan.nodes.items():
            if other != node and network in spec.links and all(
                    c in KINDS[spec.kind].capabilities for c in TCPDUMP_CAPABILITIES):
                return f"; its network {network} can be captured at {other}:{network}"
    return ""


def filter_check_argv(request: CaptureRequest) -> list[str]:
    """tcpdump compiles the filter for the interface's own link type and exits (-d): nothing captured."""
    return ["tcpdump", "-i", request.interface, "-d", "--", request.bpf or ""]


def capture_argv(request: CaptureRequest) -> list[str]:
    """The capture, bounded in time (timeout), packets (-c) and bytes per packet (-s).

    -Z root: tcpdump would otherwise become user tcpdump once its socket is open, and a node's root
    has no CAP_KILL (cap_drop ALL), so `timeout` could no longer stop it: it ran on, orphaned.
    --preserve-status: a capture stopped by the clock exits 0, as one that reached the cap does.
    --immediate-mode and -U: each packet reaches stdout as it comes, so stopping loses none.
    `--` ends the options: a filter starting with '-' is a filter, never an option such as -w.
    """
    return ["timeout", "--preserve-status", "--kill-after=2", f"{request.seconds:g}",
            "tcpdump", "-Z", "root", "-i", request.interface, "--immediate-mode", "-U", "-n",
            "-s", str(SNAPLEN), "-c", str(PACKET_CAP), "-w", "-", "--", *([request.bpf] if request.bpf else [])]


def capture(plan: LabPlan, adapters: Adapters, request: CaptureRequest) -> bytes:
    """A pcap of `request.seconds` (or PACKET_CAP packets) on the node's interface, as bytes.

    A bad filter fails before anything is captured, with tcpdump's own reason. The node must be
    running; the wait is bounded (the capture's seconds plus EXEC_MARGIN_S).
    """
    node = running_node(adapters.runtime, plan.lab, request.node)
    if request.bpf is not None:
        code, _, stderr = adapters.runtime.exec_split(node.name, filter_check_argv(request),
                                                      timeout_s=FILTER_CHECK_WITHIN_S)
        if code != 0:
            raise LabError(f"filter {_shown(request.bpf)} on {request.where}: "
                           f"{_tcpdump_reason(stderr) or f'tcpdump exit code {code}'}")
    code, data, stderr = adapters.runtime.exec_bytes(node.name, capture_argv(request),
                                                     timeout_s=request.seconds + EXEC_MARGIN_S)
    if code != 0 or not data.startswith(_MAGICS):
        reason = _tcpdump_reason(stderr) or f"tcpdump exit code {code}"
        raise LabError(f"capture on {request.where}: {reason}")
    return data


def _tcpdump_reason(stderr: str) -> str:
    """tcpdump's one-line reason, without its progress lines ("listening on ...", "data link type ...")."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("tcpdump: ") and not re.match(
        r"tcpdump: (data link type|listening on|verbose output suppressed)", line)]
    return (said[-1].removeprefix("tcpdump: ") if said else lines[-1] if lines else "")[:300]


# -- reading a pcap (pure) ---------------------------------------------------------------------------
LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 1, 101, 113, 276
_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
IKE_PORT, NAT_T_PORT = 500, 4500
IKE_EXCHANGES = {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL"}
IKE_PAYLOADS = {33: "SA", 34: "KE", 35: "IDi", 36: "IDr", 37: "CERT", 38: "CERTREQ", 39: "AUTH", 40: "No",
                41: "N", 42: "D", 43: "V", 44: "TSi", 45: "TSr", 46: "SK", 47: "CP", 48: "EAP", 53: "SKF"}
_ENCRYPTED = (46, 53)  # SK, SKF: everything after their own header is ciphertext


@dataclass(frozen=True)
class PcapRecord:
    seconds: float       # the capture's wall clock
    wire_length: int     # as it was on the wire; `data` holds at most the snap length of it
    data: bytes


@dataclass(frozen=True)
class Pcap:
    linktype: int
    snaplen: int
    records: list[PcapRecord]


def read_pcap(data: bytes) -> Pcap:
    """A classic pcap file (either byte order, micro- or nanosecond stamps); a last record cut short
    (a capture stopped mid-write) is left out."""
    if len(data) < 24 or data[:4] not in _MAGICS:
        raise LabError("not a pcap file (no pcap magic number)")
    order = "<" if data[:4] in (_MAGICS[0], _MAGICS[2]) else ">"
    fraction = 1e9 if data[:4] in _MAGICS[2:] else 1e6
    snaplen, linktype = struct.unpack(order + "16xII", data[:24])
    records, at = [], 24
    while at + 16 <= len(data):
        seconds, part, captured, wire = struct.unpack(order + "IIII", data[at:at + 16])
        if at + 16 + captured > len(data):
            break
        records.append(PcapRecord(seconds + part / fraction, wire, data[at + 16:at + 16 + captured]))
        at += 16 + captured
    return Pcap(linktype & 0xFFFF, snaplen, records)


def packet_count(data: bytes) -> int:
    return len(read_pcap(data).records)


@dataclass(frozen=True)
class Datagram:
    """A UDP datagram over IPv4, as one record of a capture holds it."""
    seconds: float
    source: IPv4Address
    destination: IPv4Address
    source_port: int
    destination_port: int
    payload: bytes
    interface_index: int | None   # Linux cooked v2 (`any`) names the interface by its index in the node


def _ipv4(linktype: int, frame: bytes) -> tuple[bytes, int | None] | None:
    """The IPv4 packet in a frame, with the interface index where the link header has one."""
    if linktype == LINKTYPE_ETHERNET and len(frame) >= 14:
        ethertype, start = struct.unpack("!H", frame[12:14])[0], 14
        if ethertype == 0x8100 and len(frame) >= 18:
            ethertype, start = struct.unpack("!H", frame[16:18])[0], 18
        return (frame[start:], None) if ethertype == 0x0800 else None
    if linktype == LINKTYPE_LINUX_SLL and len(frame) >= 16:
        return (frame[16:], None) if frame[14:16] == b"\x08\x00" else None
    if linktype == LINKTYPE_LINUX_SLL2 and len(frame) >= 20:
        return (frame[20:], struct.unpack("!I", frame[4:8])[0]) if frame[0:2] == b"\x08\x00" else None
    if linktype == LINKTYPE_RAW and frame[:1] and frame[0] >> 4 == 4:
        return frame, None
    return None


def udp_datagrams(pcap: Pcap) -> Iterator[Datagram]:
    for record in pcap.records:
        found = _ipv4(pcap.linktype, record.data)
        if found is None:
            continue
        packet, index = found
        if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 17:
            continue
        header = (packet[0] & 0x0F) * 4
        if struct.unpack("!H", packet[6:8])[0] & 0x1FFF:   # a later fragment: no UDP header in it
            continue
        udp = packet[header:header + 8]
        if len(udp) < 8:
            continue
        source_port, destination_port, length = struct.unpack("!HHH", udp[:6])
        yield Datagram(record.seconds, IPv4Address(packet[12:16]), IPv4Address(packet[16:20]),
                       source_port, destination_port, packet[header + 8:header + max(length, 8)], index)


@dataclass(frozen=True)
class IpsecPacket:
    """IKE, ESP-in-UDP or a NAT-T keepalive, read from its cleartext headers only."""
    kind: str                       # "IKE", "ESP" or "keepalive"
    datagram: Datagram
    exchange: str = ""              # IKE: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL
    response: bool = False
    message_id: int | None = None
    payloads: tuple[str, ...] = ()  # IKE: the payload chain up to and including SK (whose content is ciphertext)
    encrypted_first: str = ""       # IKE: the SK header's next-payload field, the one inner thing it shows
    spi: int | None = None          # ESP
    sequence: int | None = None     # ESP


def ipsec_packets(pcap: Pcap) -> list[IpsecPacket]:
    """Every IKE message, ESP packet and keepalive on UDP 500 and 4500 (RFC 7296, RFC 3948)."""
    found = []
    for d in udp_datagrams(pcap):
        ports = {d.source_port, d.destination_port}
        body = d.payload
        if NAT_T_PORT in ports:
            if body == b"\xff":
                found.append(IpsecPacket("keepalive", d))
                continue
            if len(body) >= 8 and body[:4] != b"\0\0\0\0":
                spi, sequence = struct.unpack("!II", body[:8])
                found.append(IpsecPacket("ESP", d, spi=spi, sequence=sequence))
                continue
            body = body[4:]   # the non-ESP marker: IKE follows
        elif IKE_PORT not in ports:
            continue
        ike = _ike(d, body)
        if ike is not None:
            found.append(ike)
    return found


def _ike(d: Datagram, body: bytes) -> IpsecPacket | None:
    if len(body) < 28 or body[17] >> 4 != 2:   # IKEv2's major version
        return None
    next_payload, exchange, flags = body[16], body[18], body[19]
    message_id = struct.unpack("!I", body[20:24])[0]
    payloads, at, encrypted_first = [], 28, ""
    while next_payload and at + 4 <= len(body):
        payloads.append(IKE_PAYLOADS.get(next_payload, str(next_payload)))
        following, length = body[at], struct.unpack("!H", body[at + 2:at + 4])[0]
        if next_payload in _ENCRYPTED:
            encrypted_first = IKE_PAYLOADS.get(following, str(following))
            break
        if length < 4:
            break
        next_payload, at = following, at + length
    return IpsecPacket("IKE", d, exchange=IKE_EXCHANGES.get(exchange, str(exchange)), response=bool(flags & 0x20),
                       message_id=message_id, payloads=tuple(payloads), encrypted_first=encrypted_first)
