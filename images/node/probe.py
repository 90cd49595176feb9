#!/usr/bin/env python3
"""Probe traffic for failover timing.

One process per workload host both sends and receives: UDP datagrams that
carry a sequence number and their send time, every `--interval` seconds, to
the same program on the peer, spread round-robin over `--flows` source
ports. Every packet is reported on stdout, so the orchestrator sees the
stream live through the container's exec stream:

    B,<first_slot_ns>,<interval_ns>  the schedule: slot k is due at first + k x interval
    S,<slot>,<sent_ns>,<error>       a datagram sent for slot k (error empty when sent)
    R,<slot>,<sent_ns>,<recv_ns>     a datagram received from the peer
    H,<now_ns>                       everything sent and received before now is above
    E                                the probe finished

The sequence number is the send slot. A slot the sender serves late (the
process woke late on a busy machine) is sent at once, up to `--catch-up`
late; one later than that gets no datagram and no S line: the missing
number says so, and the analysis counts it as missed.

Containers share the engine kernel's CLOCK_MONOTONIC, so these stamps and
the events lab-agent stamps sit on one clock; `lab` moves its own stamps
onto it (lab/clock.py). SIGTERM ends the
probe: it stops sending, keeps receiving for a short drain, then exits.
"""
import argparse
import select
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct("!4sIQ")  # magic, sequence number, send time (ns)
MAGIC = b"LABP"
DRAIN_S = 0.3
FLUSH_EVERY_NS = 50_000_000


def run(peer: str, port: int, interval_s: float, duration_s: float, flows: int, catch_up_s: float) -> None:
    # Datagram n leaves from source port port + n % flows, always to the peer's
    # `port`: that many UDP flows, so routers hashing flows (ECMP) spread them
    # over every path, while one socket receives them all.
    senders = []
    for i in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port + i))
        s.setblocking(False)
        senders.append(s)
    sock = senders[0]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(time.monotonic_ns()))
    out = sys.stdout
    interval_ns = int(interval_s * 1e9)
    catch_up_slots = int(catch_up_s * 1e9) // interval_ns
    start = time.monotonic_ns()
    end = start + int(duration_s * 1e9)
    out.write(f"B,{start},{interval_ns}\n")
    last_flush = start
    seq = 0
    next_send = start
    while True:
        now = time.monotonic_ns()
        if stopping and now - stopping[0] > DRAIN_S * 1e9 or now > end + DRAIN_S * 1e9:
            break
        sending = not stopping and now < end
        if sending and now >= next_send:
            # Overdue slots are sent now, one after the other; those more than the catch-up
            # overdue were missed: they keep their numbers, unsent.
            seq = max(seq, (now - start) // interval_ns - catch_up_slots)
            sent_ns = time.monotonic_ns()
            error = ""
            try:
                senders[seq % flows].sendto(HEADER.pack(MAGIC, seq, sent_ns), (peer, port))
            except OSError as exc:  # no route during an outage is data, not a crash
                error = exc.__class__.__name__
            out.write(f"S,{seq},{sent_ns},{error}\n")
            seq += 1
            next_send = start + seq * interval_ns
        wait_ns = max(0, next_send - time.monotonic_ns()) if sending else 50_000_000
        try:
            readable, _, _ = select.select([sock], [], [], wait_ns / 1e9)
        except InterruptedError:
            continue
        if readable:
            while True:
                try:
                    data = sock.recv(64)
                except BlockingIOError:
                    break
                recv_ns = time.monotonic_ns()
                if len(data) >= HEADER.size:
                    magic, rseq, rsent = HEADER.unpack_from(data)
                    if magic == MAGIC:
                        out.write(f"R,{rseq},{rsent},{recv_ns}\n")
        if time.monotonic_ns() - last_flush > FLUSH_EVERY_NS:
            last_flush = time.monotonic_ns()
            out.write(f"H,{last_flush}\n")
            out.flush()
    out.write(f"H,{time.monotonic_ns()}\nE\n")
    out.flush()


def main() -> int:
    parser = argparse.ArgumentParser(prog="lab-probe")
    parser.add_argument("--peer", required=True)
    parser.add_argument("--port", type=int, default=47000)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--duration", type=float, required=True, help="upper bound; SIGTERM ends it sooner")
    parser.add_argument("--flows", type=int, default=1, help="UDP flows (source ports from --port up)")
    parser.add_argument("--catch-up", type=float, default=0.1,
                        help="seconds late a slot may still be sent (the Forwarding Delay Threshold)")
    args = parser.parse_args()
    run(args.peer, args.port, args.interval, args.duration, max(1, args.flows), max(0.0, args.catch_up))
    return 0


if __name__ == "__main__":
    sys.exit(main())
