"""The README's table of failover figures, from the committed reports (docs/figures/NAME/report.json).

    python scripts/figures_table.py [NAME ...]

Each row: the `lab failover` arguments that made it (scripts/measure-figures.sh), the profile and
target, N, each direction's median Full Convergence Time (min–max), the restore's (the worse
direction's median), the verdict, and the link. Figures are re-analysed with the current code
(lab/failover/published.py), which is what tests/unit/test_published.py checks the README against.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.failover.published import FIGURES, reanalyse  # noqa: E402
from lab.failover.statistics import Summary  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "measure-figures.sh"


def commands() -> dict[str, str]:
    return dict(re.findall(r'^\s*"([\w-]+)\|([^"]+)"', SCRIPT.read_text(), re.M))


def cell(s: Summary) -> str:
    if s.n == 0:
        return "-"
    fmt = lambda v: "never" if v is None else f"{v:.2f}"  # noqa: E731
    return f"**{fmt(s.median)}** s ({fmt(s.minimum)}–{fmt(s.maximum)})"


def row(name: str, args: str) -> str:
    path = FIGURES / name / "report.json"
    report = json.loads(path.read_text())
    figures = reanalyse(path)
    forward, backward = list(figures.failover.values())[:2]
    restores = [s.median for s in figures.restore.values()]
    restore = "never" if None in restores else f"{max(restores):.2f}"
    valid = [r for r in report["runs"] if r["invalid"] is None]
    passed = sum(r["verdict"] == "PASS" for r in valid)
    failed_by = {c["name"].split(" rate-derived")[0] or "failover" for r in valid for c in r["checks"] if not c["passed"]}
    verdict = f"{report['verdict']} {passed}/{len(valid)}" + (f" ({', '.join(sorted(failed_by))} missed)" if failed_by else "")
    n = f"{forward.n}" + (f" ({forward.invalid} invalid)" if forward.invalid else "")
    return (f"| `{args}` | {report['profile']} (≤ {report['target_s']:g} s) | {n} | {cell(forward)} | {cell(backward)} | "
            f"**{restore}** s | {verdict} | [{name}](docs/figures/{name}/summary.md) |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    known = commands()
    print("| `lab failover …` | profile (target) | N | onprem-host → azure-vm | azure-vm → onprem-host | restore | "
          "verdict | report |")
    print("|---|---|---|---|---|---|---|---|")
    for name, command in known.items():
        if (not args.names or name in args.names) and (FIGURES / name / "report.json").is_file():
            print(row(name, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
