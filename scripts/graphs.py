"""The README's topology pictures: one per built-in scenario, made by `lab graph`'s own code.

    python scripts/graphs.py [--out-dir docs/graphs] [--format svg|png] [--check] [SCENARIO ...]

Each scenario is drawn from its plan (its own profile, the scenario's name as the lab's): no lab,
no engine. --check writes nothing and exits 1 when a committed picture differs from what the code
draws now (tests/unit/test_graph.py runs it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.plan.load import builtin_scenarios, load_plan  # noqa: E402
from lab.ui.graph_cli import FORMATS, render_graph, write_atomically  # noqa: E402

DEFAULT_DIR = ROOT / "docs" / "graphs"


def stale(out_dir: Path, fmt: str, scenarios: list[str]) -> list[Path]:
    """The pictures in `out_dir` that are missing or differ from what the code draws now."""
    found = []
    for name in scenarios:
        path = out_dir / f"{name}.{fmt}"
        if not path.is_file() or path.read_bytes() != render_graph(load_plan(name), fmt):
            found.append(path)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="built-in scenarios (default: all)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_DIR, help="where the pictures go (default: %(default)s)")
    parser.add_argument("--format", choices=FORMATS, default="svg", help="default: %(default)s")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a picture is out of date")
    args = parser.parse_args()
    known = builtin_scenarios()
    unknown = [s for s in args.scenarios if s not in known]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r} (known: {', '.join(known)})")
    scenarios = args.scenarios or known
    if args.check:
        for path in stale(args.out_dir, args.format, scenarios):
            print(f"out of date: {path} (python scripts/graphs.py)")
            return 1
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in scenarios:
        path = args.out_dir / f"{name}.{args.format}"
        write_atomically(path, render_graph(load_plan(name), args.format))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
