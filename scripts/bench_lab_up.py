#!/usr/bin/env python3
"""Benchmark: seconds from `lab up` (image already built) to a converged lab.

Target: <= 15 s on a 2-core machine. Prints each run, the median and the
split between "daemons healthy" and "IKE + BGP converged".
"""
import argparse
import os
import sys
import tempfile
import time

from lab.run import lifecycle
from lab.model.events import EventStream, Stage, StageChanged
from lab.failover.runner import machine_summary
from lab.failover.statistics import summarize
from lab.plan.load import load_plan
from lab.adapters.wiring import real_adapters

TARGET_S = 15.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="active-standby")
    args = parser.parse_args()
    os.environ.setdefault("LAB_STATE_DIR", tempfile.mkdtemp(prefix="lab-bench-"))
    adapters = real_adapters()
    totals = []
    for run in range(1, args.runs + 1):
        plan = load_plan(args.scenario, lab="bench")
        marks = {}
        start = time.monotonic()

        events = EventStream()
        events.subscribe(lambda e: marks.setdefault(e.stage, time.monotonic() - start)
                         if isinstance(e, StageChanged) else None)
        try:
            lifecycle.up(plan, adapters, events)
            total = time.monotonic() - start
        finally:
            lifecycle.down(plan.lab, adapters)
        healthy = marks.get(Stage.WAITING_CONVERGED, float("nan"))
        totals.append(total)
        print(f"run {run}: converged in {total:.1f} s (healthy after {healthy:.1f} s, then {total - healthy:.1f} s to IKE+BGP)")
    up = summarize(totals)
    met = up.median is not None and up.median <= TARGET_S
    print(f"lab up -> converged: {up.text(digits=1)}; target {TARGET_S:.0f} s: {'PASS' if met else 'MISS'}")
    print(f"machine: {machine_summary(adapters.runtime.engine_summary())}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
