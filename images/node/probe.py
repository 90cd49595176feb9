#!/usr/bin/env python3
"""Probe traffic for failover timing.

`send` emits UDP datagrams carrying a sequence number and the send time;
`receive` records every datagram that arrives. Containers share the host
kernel's CLOCK_MONOTONIC, so both ends and the orchestrator stamp events on
one clock. Each side writes one CSV line per packet so the orchestrator can
compute gaps, loss and reordering afterwards.
"""
import argparse
import socket
import struct
import sys
import time

HEADER = struct.Struct("!4sIQ")  # magic, sequence number, send time (ns)
MAGIC = b"LABP"


def send(peer: str, port: int, interval_s: float, duration_s: float, out: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    interval_ns = int(interval_s * 1e9)
    start = time.monotonic_ns()
    end = start + int(duration_s * 1e9)
    seq = 0
    with open(out, "w", buffering=1 << 16) as log:
        log.write("seq,sent_ns,error\n")
        next_send = start
        while next_send < end:
            now = time.monotonic_ns()
            if now < next_send:
                time.sleep((next_send - now) / 1e9)
            sent_ns = time.monotonic_ns()
            error = ""
            try:
                sock.sendto(HEADER.pack(MAGIC, seq, sent_ns), (peer, port))
            except OSError as exc:  # no route during an outage is data, not a crash
                error = exc.__class__.__name__
            log.write(f"{seq},{sent_ns},{error}\n")
            seq += 1
            next_send += interval_ns


def receive(port: int, duration_s: float, out: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    end = time.monotonic_ns() + int(duration_s * 1e9)
    with open(out, "w", buffering=1 << 16) as log:
        log.write("seq,sent_ns,recv_ns,source\n")
        while True:
            remaining = (end - time.monotonic_ns()) / 1e9
            if remaining <= 0:
                break
            sock.settimeout(min(remaining, 0.5))
            try:
                data, (source, _) = sock.recvfrom(64)
            except socket.timeout:
                continue
            recv_ns = time.monotonic_ns()
            if len(data) < HEADER.size:
                continue
            magic, seq, sent_ns = HEADER.unpack_from(data)
            if magic == MAGIC:
                log.write(f"{seq},{sent_ns},{recv_ns},{source}\n")


def main() -> int:
    parser = argparse.ArgumentParser(prog="lab-probe")
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send")
    s.add_argument("--peer", required=True)
    s.add_argument("--port", type=int, default=47000)
    s.add_argument("--interval", type=float, default=0.02)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--out", required=True)
    r = sub.add_parser("receive")
    r.add_argument("--port", type=int, default=47000)
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.mode == "send":
        send(args.peer, args.port, args.interval, args.duration, args.out)
    else:
        receive(args.port, args.duration, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
