"""`lab graph`: a scenario's topology drawn from its plan, as SVG or PNG, with no lab and no engine.

Nothing here (or in lab/ui/topology.py) imports docker: the picture needs the plan only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lab.model.errors import LabError
from lab.model.schema import LabPlan
from lab.plan.load import builtin_profiles, builtin_scenarios, load_plan
from lab.session import DEFAULT_SCENARIO
from lab.ui.cli_common import check_out_file, fail, out, write_atomically
from lab.ui.topology import layout, render_png, render_svg

FORMATS = ("svg", "png")


def render_graph(plan: LabPlan, fmt: str) -> bytes:
    """The plan's picture in `fmt` (svg or png)."""
    topo = layout(plan)
    return render_svg(topo).encode("utf-8") if fmt == "svg" else render_png(topo)


def chosen_format(fmt: Optional[str], out_path: Optional[Path]) -> str:
    """--format, else what --out's suffix says, else svg; refused in one line where they disagree."""
    if fmt is not None and fmt not in FORMATS:
        raise LabError(f"--format {fmt!r}: a graph is {' or '.join(FORMATS)}")
    suffix = out_path.suffix.lower().lstrip(".") if out_path is not None else ""
    if suffix and suffix not in FORMATS:
        raise LabError(f"--out {out_path}: a graph file ends in {' or '.join('.' + f for f in FORMATS)}")
    if fmt is not None and suffix and suffix != fmt:
        raise LabError(f"--out {out_path}: its suffix .{suffix} disagrees with --format {fmt}")
    return fmt or suffix or "svg"


def graph(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help=f"built-in scenario ({', '.join(builtin_scenarios())}) "
                                                          "or a YAML file"),
    profile: Optional[str] = typer.Option(None, help=f"timer profile ({', '.join(builtin_profiles())}); "
                                                     "default: the scenario's"),
    fmt: Optional[str] = typer.Option(None, "--format", help="svg or png (default: --out's suffix, else svg)"),
    out_path: Optional[Path] = typer.Option(None, "--out", help="the file to write (default: SCENARIO.FORMAT here)"),
) -> None:
    """Draw a scenario's topology (nodes, networks, tunnels, BGP sessions, circuit, VRRP, zones): no lab needed."""
    target = out_path
    try:
        chosen = chosen_format(fmt, out_path)
        if out_path is not None:
            check_out_file(out_path)
        plan = load_plan(scenario, profile)
        target = out_path if out_path is not None else Path.cwd() / f"{plan.scenario.name}.{chosen}"
        check_out_file(target)
        write_atomically(target, render_graph(plan, chosen))
    except LabError as exc:
        fail(exc)
    except OSError as exc:
        fail(LabError(f"can't write {target}: {exc.strerror or exc}"))
    out.print(str(target), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Adds `lab graph` to `app`."""
    app.command("graph")(graph)
