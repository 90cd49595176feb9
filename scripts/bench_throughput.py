#!/usr/bin/env python3
"""Benchmark: TCP throughput through one tunnel of the default lab, and where the CPU goes.

One iperf3 TCP stream from onprem-host to azure-vm crosses the on-prem LAN,
onprem-0 (VXLAN in userspace ESP, strongSwan kernel-libipsec), the internet
bridge, the active gateway instance and the VNet. The same tool across one
bare lab bridge (onprem-host to onprem-0's LAN address) is the reference, so
the ratio stays comparable on a noisy machine. Each policy gets its own lab:

- default: a device with Azure's recommended set against the gateway's default
  policy (negotiates GCM-AES256, no PFS);
- gcm: a custom policy with GCMAES256 (the "GCM policy");
- cbc: a custom policy with AES256 + SHA256 (CBC + HMAC, the lab's old default).

Target: Azure's smallest SKU, VpnGw1, is rated 650 Mbit/s aggregate. While the
tunnel stream runs, the script samples the machine's CPU split (/proc/stat)
and each charon thread's CPU on both VPN nodes, to show what limits it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.run import lifecycle
from lab.model.azure import azure_rules
from lab.failover.runner import machine_summary
from lab.failover.statistics import summarize
from lab.plan.load import load_plan, load_scenario
from lab.adapters.wiring import real_adapters

TARGET_MBPS = azure_rules().skus.limits["VpnGw1"].throughput_mbps
PORT = 5201
POLICIES = {
    "default": None,
    "gcm": dict(ike_encryption="AES256", ike_integrity="SHA256", dh_group="DHGroup14",
                ipsec_encryption="GCMAES256", ipsec_integrity="GCMAES256", pfs_group="None"),
    "cbc": dict(ike_encryption="AES256", ike_integrity="SHA256", dh_group="DHGroup14",
                ipsec_encryption="AES256", ipsec_integrity="SHA256", pfs_group="None"),
}
# /proc/stat's cpu line, in order.
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
THREADS_SCRIPT = (
    'pid=$(pidof charon); for t in /proc/$pid/task/*; do '
    'printf "%s %s %s\\n" "${t##*/}" "$(cut -d" " -f14,15 $t/stat)" "$(cat $t/wchan)"; done'
)


@dataclass
class Threads:
    ticks: dict[str, int]        # thread id -> user + system clock ticks
    waits: dict[str, str]        # thread id -> kernel function it sleeps in (wchan)


def exec_ok(adapters, container: str, argv: list[str], timeout_s: float = 30) -> str:
    code, out, err = adapters.runtime.exec_split(container, argv, timeout_s=timeout_s)
    if code != 0:
        raise RuntimeError(f"{container}: {' '.join(argv)} failed ({code}): {err.strip() or out.strip()}")
    return out


def cpu_ticks(adapters, container: str) -> dict[str, int]:
    line = exec_ok(adapters, container, ["head", "-1", "/proc/stat"]).split()
    return dict(zip(CPU_FIELDS, (int(v) for v in line[1:1 + len(CPU_FIELDS)])))


def charon_threads(adapters, container: str) -> Threads:
    ticks, waits = {}, {}
    for line in exec_ok(adapters, container, ["sh", "-c", THREADS_SCRIPT]).splitlines():
        tid, utime, stime, *wchan = line.split()
        ticks[tid] = int(utime) + int(stime)
        waits[tid] = wchan[0] if wchan else "?"
    return Threads(ticks, waits)


def iperf(adapters, plan, client: str, server: str, address: str, seconds: int, during=None):
    """Mbit/s received by `server` from one TCP stream of `client`; `during` runs while it streams."""
    server_c, client_c = plan.nodes[server].container, plan.nodes[client].container
    adapters.runtime.exec(server_c, ["sh", "-c", f"pkill -x iperf3; iperf3 -s -D -1 -p {PORT}"])
    # iperf3 -D returns before it listens: wait (bounded) until the port is open.
    listening = lifecycle.poll_until(
        lambda: f":{PORT} " in adapters.runtime.exec(server_c, ["ss", "-Hltn", f"sport = :{PORT}"])[1],
        within_s=10, interval_s=0.1)
    if not listening:
        raise RuntimeError(f"{server}: iperf3 is not listening on port {PORT} after 10 s")
    sampled = {}
    if during is not None:
        before = during()
    out = exec_ok(adapters, client_c, ["iperf3", "-c", address, "-p", str(PORT), "-t", str(seconds), "-J"],
                  timeout_s=seconds + 30)
    if during is not None:
        sampled = {"before": before, "after": during()}
    result = json.loads(out)
    return result["end"]["sum_received"]["bits_per_second"] / 1e6, sampled


def cpu_profile(adapters, plan, vpn_nodes: list[str]):
    """A sampler for iperf(): the machine's CPU split and each VPN node's charon threads."""
    any_node = plan.nodes[vpn_nodes[0]].container

    def sample():
        return time.monotonic(), cpu_ticks(adapters, any_node), {
            n: charon_threads(adapters, plan.nodes[n].container) for n in vpn_nodes}
    return sample


def describe_profile(sampled, vpn_nodes: list[str]) -> list[str]:
    (t0, cpu0, threads0), (t1, cpu1, threads1) = sampled["before"], sampled["after"]
    hz = os.sysconf("SC_CLK_TCK")
    total = sum(cpu1[k] - cpu0[k] for k in CPU_FIELDS) or 1
    split = ", ".join(f"{k} {100 * (cpu1[k] - cpu0[k]) / total:.0f} %" for k in ("user", "system", "softirq", "idle")
                      if cpu1[k] - cpu0[k])
    lines = [f"  machine CPU while streaming ({os.cpu_count()} cores): {split}"]
    for node in vpn_nodes:
        before, after = threads0[node], threads1[node]
        busy = sorted(((after.ticks[t] - before.ticks.get(t, 0)) / hz / (t1 - t0), t) for t in after.ticks)
        top = [f"{100 * share:.0f} % ({after.waits[t]})" for share, t in reversed(busy) if share >= 0.05]
        lines.append(f"  {node} charon threads busy (share of one core; where it sleeps): {', '.join(top) or 'none'}")
    return lines


# Kernel paths charon's threads run per packet, and what each stands for.
KERNEL_PATHS = {
    "tun_chr_write_iter": "TUN write: a decrypted packet enters the node, and the emulated network carries it on",
    "udp_sendmsg": "UDP send: an ESP packet crosses veth, bridge and the peer's UDP receive",
    "tun_chr_read_iter": "TUN read: a packet to encrypt leaves the node's stack",
    "br_handle_frame": "of which the lab's bridges (inside the paths above)",
    "nft_do_chain": "of which nftables rules, the nodes' and the host's (inside the paths above)",
}


def perf_profile(seconds: int, folder: Path) -> subprocess.Popen | None:
    """`perf record` of the whole machine while the stream runs (local engine, perf installed, root)."""
    if shutil.which("perf") is None or os.geteuid() != 0:
        return None
    return subprocess.Popen(["perf", "record", "-a", "-g", "-o", str(folder / "perf.data"), "--", "sleep",
                             str(max(1, seconds - 2))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def describe_perf(folder: Path) -> list[str]:
    data = str(folder / "perf.data")

    def report(*args: str) -> list[str]:
        out = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", *args],
                             capture_output=True, text=True, timeout=300).stdout
        return [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")]

    lines = ["  perf, share of all CPU samples by process and library:"]
    lines += [f"    {line}" for line in report("--no-children", "--sort", "comm,dso")[:6]]
    lines.append("  perf, charon's time in kernel paths (with what they call):")
    shares = dict.fromkeys(KERNEL_PATHS, 0.0)
    for line in report("--children", "--comm", "charon", "--sort", "sym"):
        parts = line.split()
        if parts[-1] in shares:
            # A symbol reached from several call chains is listed once per chain: add them up.
            shares[parts[-1]] += float(parts[0].rstrip("%"))
    lines += [f"    {share:6.2f}% {symbol}: {KERNEL_PATHS[symbol]}" for symbol, share in shares.items()]
    crypto = [line for line in report("--no-children", "--comm", "charon", "--sort", "dso") if "libcrypto" in line]
    lines += [f"    {crypto[0].split()[0]:>7} libcrypto (OpenSSL: the ESP cipher itself)"] if crypto else []
    return lines


def scenario_with(policy: dict | None, folder: Path) -> str:
    if policy is None:
        return "active-standby"
    _, scenario = load_scenario("active-standby")
    raw = scenario.model_dump(mode="json")
    raw["tunnels"][0]["ipsec_policy"] = policy
    path = folder / "bench-policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def engine_load(adapters, plan) -> tuple[str, list[int]]:
    """The engine kernel's load average and its CPU counters (/proc/stat's first line), read in a node."""
    code, out = adapters.runtime.exec(plan.nodes["onprem-host"].container,
                                      ["sh", "-c", "cat /proc/loadavg; head -1 /proc/stat"])
    load, cpu = (out.splitlines() + ["", ""])[:2] if code == 0 else ("?", "")
    return " ".join(load.split()[:3]), [int(v) for v in cpu.split()[1:]]


def context_line(adapters, plan, before: list[int], after: list[int], load: str) -> str:
    """What the figure depends on besides the code: the machine's load, CPU steal, other labs beside it."""
    spent = [b - a for a, b in zip(before, after)]
    total = sum(spent) or 1
    steal = 100 * spent[7] / total if len(spent) > 7 else 0.0
    idle = 100 * (spent[3] + spent[4]) / total if len(spent) > 4 else 0.0
    others = sorted({c.labels.get("lab.name", "?") for c in adapters.runtime.containers({"lab.name": ""})
                     if c.status == "running"} - {plan.lab})
    return (f"machine while the tunnel streams ran: load average {load} before, CPU idle {idle:.0f} %, "
            f"steal {steal:.1f} %; other labs running: {', '.join(others) or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="tunnel streams per policy (median reported)")
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"some of {', '.join(POLICIES)}")
    parser.add_argument("--perf", action="store_true",
                        help="also profile the last default-policy stream with perf (local engine, root)")
    args = parser.parse_args()
    names = [n for n in args.policies.split(",") if n]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        print(f"error: --policies: unknown {', '.join(unknown)} (known: {', '.join(POLICIES)})", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    os.environ.setdefault("LAB_STATE_DIR", str(folder))
    adapters = real_adapters()
    figures: dict[str, float] = {}
    bare = None
    for name in names:
        plan = load_plan(scenario_with(POLICIES[name], folder), "azure", lab="bench-tput")
        try:
            status = lifecycle.up(plan, adapters)
            gateway = status.active_instances[0]
            esp = next((t.esp_algorithms for t in status.tunnels if t.node == "onprem-0"), "?")
            lan = str(plan.scenario.nodes["onprem-0"].links["onprem-lan"])
            vm = str(plan.scenario.nodes["azure-vm"].links["vnet-workload"])
            if bare is None:
                reference = summarize(iperf(adapters, plan, "onprem-host", "onprem-0", lan, args.seconds)[0]
                                      for _ in range(args.runs))
                bare = reference.median
                print(f"bare lab bridge (onprem-host -> onprem-0): {reference.text('Mbit/s', 0)}")
            sampler = cpu_profile(adapters, plan, ["onprem-0", gateway])
            load, before = engine_load(adapters, plan)
            runs = [iperf(adapters, plan, "onprem-host", "azure-vm", vm, args.seconds, sampler)
                    for _ in range(args.runs)]
            _, after = engine_load(adapters, plan)
            profiler = perf_profile(args.seconds, folder) if args.perf and name == names[0] else None
            if profiler is not None:
                runs.append(iperf(adapters, plan, "onprem-host", "azure-vm", vm, args.seconds, sampler))
                profiler.wait()
            tunnel = summarize(r[0] for r in runs)
            mbps = figures[name] = tunnel.median
            print(f"tunnel, {name} policy (ESP {esp}): {tunnel.text('Mbit/s', 0)}, each "
                  f"{', '.join(f'{r[0]:.0f}' for r in runs)}; ratio to the bare bridge {mbps / bare:.3f}")
            print(context_line(adapters, plan, before, after, load))
            for line in describe_profile(runs[-1][1], ["onprem-0", gateway]):
                print(line)
            if profiler is not None:
                print("\n".join(describe_perf(folder)))
        finally:
            lifecycle.down(plan.lab, adapters)
    best = max(figures.values())
    verdict = "PASS" if best >= TARGET_MBPS else "MISS"
    print(f"best tunnel figure {best:.0f} Mbit/s against VpnGw1's {TARGET_MBPS} Mbit/s: {verdict}")
    print(f"machine: {machine_summary(adapters.runtime.engine_summary())}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
