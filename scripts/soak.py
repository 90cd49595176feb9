"""Soak: many up/down cycles and many failovers, counting what is left behind and what leaves.

    python scripts/soak.py [--cycles 50] [--runs 20] [--profile fast] [--out results/soak]

1. `--cycles` up/down cycles of the default scenario: after each `down`,
   nothing of the lab may be left: containers, networks, volumes, helper
   containers, host bridges, its nftables guard, its state folder. Host
   veths are counted too, but the kernel deletes a removed container's
   veth pair only when it has finished destroying its network namespace,
   which it does in the background (here about 0.2 namespaces a second):
   so they are checked once, after all cycles, with a bounded wait.
2. `--runs` failover runs of every fault on one lab: none may hang, each must
   leave the lab in its initial state (failed back, not re-created), and the
   host's count of packets forwarded out of the lab must stay 0 throughout.

Prints the figures (copied into the README) and writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from lab.run import lifecycle
from lab.render.deploy_plan import IMAGE
from lab.run.state import state_root
from lab.failover.runner import FailoverRunner, FailoverSettings, machine_summary
from lab.failover.faults import FAULTS
from lab.render.configs import guard_table
from lab.failover.statistics import summarize
from lab.plan.load import load_plan
from lab.adapters.wiring import real_adapters
from lab.run.ports import Adapters


def host_links(adapters: Adapters) -> dict[str, int]:
    """How many bridges and veths the engine's host has (read through a host-network container)."""
    raw = adapters.runtime.client.containers.run(IMAGE, ["ip", "-j", "-d", "link", "show"], entrypoint=[],
                                                 network_mode="host", remove=True)
    counts = {"bridge": 0, "veth": 0}
    for link in json.loads(raw):
        kind = (link.get("linkinfo") or {}).get("info_kind")
        if kind in counts:
            counts[kind] += 1
    return counts


def leftovers(adapters: Adapters, lab: str, baseline_links: dict[str, int]) -> list[str]:
    """What the lab left behind: objects, guard, state folder, host bridges (veths: see `veths_return`)."""
    found = adapters.runtime.lab_objects({"lab.name": lab})
    found += [f"helper container {c.name}" for c in adapters.runtime.containers({"lab.helper": ""})]
    if guard_table(lab) in adapters.host.guards():
        found.append(f"nftables table inet {guard_table(lab)}")
    if (state_root() / lab).exists():
        found.append(str(state_root() / lab))
    links = host_links(adapters)
    if links["bridge"] > baseline_links["bridge"]:
        found.append(f"{links['bridge'] - baseline_links['bridge']} extra host bridge(s)")
    return found


def veths_return(adapters: Adapters, baseline: int, within_s: float) -> dict:
    """Waits (bounded) for the kernel's deferred namespace clean-up to bring the host's veths back to `baseline`."""
    started = time.monotonic()
    pending = host_links(adapters)["veth"] - baseline
    first_pending = pending
    while pending > 0 and time.monotonic() - started < within_s:
        time.sleep(5)  # the kernel works at its own pace; this only looks
        pending = host_links(adapters)["veth"] - baseline
    return {"pending_after_last_down": first_pending, "left_after_wait": max(0, pending),
            "waited_s": round(time.monotonic() - started)}


def soak_cycles(adapters: Adapters, cycles: int) -> dict:
    baseline = host_links(adapters)
    up_s, left_after = [], []
    for i in range(1, cycles + 1):
        lab = f"soak-{uuid.uuid4().hex[:6]}"
        plan = load_plan("active-standby", lab=lab)
        started = time.monotonic()
        lifecycle.up(plan, adapters)
        up_s.append(time.monotonic() - started)
        lifecycle.down(lab, adapters)
        left = leftovers(adapters, lab, baseline)
        left_after.append(left)
        print(f"cycle {i}/{cycles}: up {up_s[-1]:.1f} s, left behind: {', '.join(left) or 'nothing'}", flush=True)
    up = summarize(up_s)
    print(f"up: {up.text()}", flush=True)
    return {"cycles": cycles, "up_s": up.as_dict(2), "up_text": up.text(),
            "cycles_leaving_something": sum(1 for left in left_after if left),
            "left": [left for left in left_after if left],
            "host_veths": veths_return(adapters, baseline["veth"], within_s=900)}


def soak_failovers(adapters: Adapters, runs: int, profile: str) -> dict:
    plan = load_plan("active-standby", profile, lab=f"soak-{uuid.uuid4().hex[:6]}")
    lifecycle.up(plan, adapters)
    table = guard_table(plan.lab)
    active = lifecycle.read_status(plan.lab, adapters).active_instances[0]
    per_fault = {}
    try:
        for fault in FAULTS:
            def recreate() -> None:
                lifecycle.down(plan.lab, adapters)
                lifecycle.up(plan, adapters)

            started = time.monotonic()
            settings = FailoverSettings(fault=fault, target=active, runs=runs)
            report = FailoverRunner(plan, adapters, settings, recreate).run_all()
            counters = adapters.host.counters(table)
            figures = {}
            valid = [run for run in report.runs if run.invalid is None]
            for i, direction in enumerate(r.direction for r in report.runs[0].directions):
                rate = summarize([run.directions[i].rate_derived_s for run in valid], len(report.runs) - len(valid))
                figures[direction] = {**rate.as_dict(4), "text": rate.text()}
            per_fault[fault] = {
                "runs": len(report.runs),
                "verdicts": {v: sum(1 for r in report.runs if r.verdict == v) for v in ("PASS", "FAIL", "INVALID")},
                "back_in_initial_state": sum(1 for r in report.runs if r.returned_by == "failback"),
                "rate_derived": figures,
                "forwarded_out_of_the_lab": counters["forwarded out of the lab"],
                "guard_dropped": counters["out of the lab"],
                "minutes": round((time.monotonic() - started) / 60, 1),
            }
            print(f"{fault}: {json.dumps(per_fault[fault])}", flush=True)
    finally:
        lifecycle.down(plan.lab, adapters)
    return per_fault


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20, help="failover runs per fault")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--out", type=Path, default=Path("results/soak"))
    args = parser.parse_args()
    adapters = real_adapters()
    adapters.runtime.ping()
    result = {"machine": machine_summary(adapters.runtime.engine_summary()), "profile": args.profile}
    result["up_down"] = soak_cycles(adapters, args.cycles) if args.cycles else {}
    result["failovers"] = soak_failovers(adapters, args.runs, args.profile) if args.runs else {}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    clean = not result["up_down"].get("cycles_leaving_something") and not result["up_down"].get(
        "host_veths", {}).get("left_after_wait") and all(
        f["forwarded_out_of_the_lab"] == 0 and f["back_in_initial_state"] == f["runs"]
        for f in result["failovers"].values())
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
