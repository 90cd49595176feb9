"""The `lab` command: builds the real adapters, calls the core, renders results."""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from lab.run import lifecycle
from lab.failover.breakfix import faults_in_place
from lab.model import names
from lab.render.deploy_plan import IMAGE
from lab.run.deploy import check_image
from lab.model.errors import LabError
from lab.adapters.image import prepare_context
from lab.ui.status_view import PathReading, StatusPaths, print_status, status_json
from lab.model.schema import LabPlan
from lab.run.locks import try_hold_lab
from lab.render.configs import guard_table
from lab.run.state import check_state_root, lab_dir
from lab.model.events import Stage
from lab.session import DEFAULT_SCENARIO, LabSession
from lab.ui.progress import log, setup_logging
from lab.plan.load import builtin_profiles, builtin_scenarios, load_plan
from lab.run.paths import route_paths
from lab.run.observe import CHARON_LOG, FRR_LOG, KEEPALIVED_LOG
from lab.run.status import LabStatus, running_node
from lab.ui.cli_common import BUSY_EXIT  # noqa: F401 - the tests import it from here
from lab.ui.cli_common import NOT_MEASURED_EXIT, checked, err, event_stream, fail, lab_option, out, showing

def real_adapters():
    """The engine's adapters; docker and requests load only for a command that reaches a lab."""
    from lab.adapters.wiring import real_adapters as connect

    return connect()


# No locals in tracebacks: they could hold pre-shared keys.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False, help="Azure VPN gateway high-availability lab.")


@app.callback()
def _options(verbose: bool = typer.Option(False, "--verbose", "-v", help="show the log on stderr as well")) -> None:
    """Azure VPN gateway high-availability lab."""
    setup_logging(_log_folder(), verbose, err)


def _log_folder() -> Path:
    try:
        return check_state_root() / "logs"
    except LabError:
        return Path(tempfile.gettempdir()) / f"azlab-{os.geteuid()}" / "logs"


@app.command()
def up(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help=f"built-in scenario ({', '.join(builtin_scenarios())}) or a YAML file"),
    profile: Optional[str] = typer.Option(None, help=f"timer profile ({', '.join(builtin_profiles())}); default: the scenario's"),
    lab: Optional[str] = lab_option("lab name (default: the scenario's name)"),
    json_out: bool = typer.Option(False, "--json", help="print the final status as JSON"),
) -> None:
    """Build and start a lab; returns once IKE and BGP have converged."""
    session = None
    try:
        session = LabSession(scenario, profile, lab, adapters=real_adapters(), events=event_stream())
        with showing(session.events, f"lab {session.name} up") as display:
            status = session.up()
        err.print(f"lab {session.name}: converged in {display.elapsed_s:.1f} s", highlight=False)
        if json_out:
            out.print(status_json(status), highlight=False)
        else:
            print_status(status, out)
    except LabError as exc:
        fail(exc)
    except KeyboardInterrupt:
        # Either `up` removed what it made, or the lab was running (before, or converged just now) and stays.
        left = session.adapters.runtime.lab_objects({"lab.name": session.name}) if session else []
        err.print(f"interrupted: lab {session.name} is running and left as it is (`lab down --lab {session.name}` removes it)"
                  if left else "interrupted: the lab was removed")
        raise typer.Exit(130)


@app.command()
def down(lab: Optional[str] = lab_option()) -> None:
    """Remove every container, network and file of a lab."""
    try:
        adapters = real_adapters()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        events = event_stream()
        with showing(events, f"lab {name} down"):
            removed = lifecycle.down(name, adapters, events)
    except LabError as exc:
        fail(exc)
    kept = [line.removeprefix(lifecycle.KEPT) for line in removed if line.startswith(lifecycle.KEPT)]
    out.print(f"lab {name}: removed {len(removed) - len(kept)} object(s)")
    for line in kept:
        err.print(f"[bold yellow]note:[/] {escape(line)}", highlight=False, soft_wrap=True)


@app.command()
def status(
    lab: Optional[str] = lab_option(),
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
    window: float = typer.Option(1.0, min=0.0, max=30.0,
                                 help="seconds over which each tunnel's ESP rate is measured (0: totals only)"),
    wide: bool = typer.Option(False, "--wide", help="every column at full width (SKUs, ESP packet totals, "
                                                   "negotiated algorithms), past the terminal's width if need be"),
) -> None:
    """Tunnels (with the rate each carries now), BGP sessions and the ECMP next hops in use,
    which instances are active, the data plane, and which path carries each prefix and why
    (by default where the lab has more than one carrier; always with --wide and --json)."""
    try:
        adapters = real_adapters()
        adapters.runtime.ping()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        guard = _kept_guard(name, adapters)
        try:
            plan = lifecycle.running_plan(name, adapters, DEFAULT_SCENARIO)
        except LabError:
            plan = None     # the status is read from the labels all the same; the paths need the plan
        # BGP's paths are read while the status's rate window runs.
        with ThreadPoolExecutor(max_workers=1) as pool:
            bgp = pool.submit(_bgp_paths, plan, adapters) if plan is not None else None
            result = lifecycle.read_status(name, adapters, rate_window_s=window)
        result.faults_in_place = faults_in_place(lab_dir(name))
        result.guard = guard
        paths = None if bgp is None else _status_paths(plan, result, bgp.result())
    except LabError as exc:
        fail(exc)
    if json_out:
        out.print(status_json(result, paths), highlight=False, soft_wrap=True)
    else:
        print_status(result, out, wide=wide, paths=paths)
    raise typer.Exit(0 if result.converged else 1)


def _bgp_paths(plan: LabPlan, adapters) -> dict[tuple[str, str], list | str]:
    """(node, prefix) -> the BGP paths it holds, or why they could not be read: for the routers that
    choose between paths only, one short read each, all at once."""
    wanted = [(r.node, r.prefix) for r in route_paths(plan, [])]

    def read(pair: tuple[str, str]) -> list | str:
        try:
            return adapters.routes_for(running_node(adapters.runtime, plan.lab, pair[0])).bgp_paths(pair[1])
        except LabError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
        return dict(zip(wanted, pool.map(read, wanted)))


def _status_paths(plan: LabPlan, status: LabStatus, bgp: dict[tuple[str, str], list | str]) -> StatusPaths:
    readings = []
    for row in route_paths(plan, status.routes):
        found = bgp.get((row.node, row.prefix), "not read")
        readings.append(PathReading(row, None, found) if isinstance(found, str) else PathReading(row, found))
    return StatusPaths(readings, len({b.carrier for b in plan.bgp_sessions if b.carrier}) > 1)


def _kept_guard(lab: str, adapters) -> dict[str, int]:
    """The guard's counters; a running lab's guard re-applied first when it is gone, unless another
    command holds the lab (it checks the guard itself; a `down` is removing it)."""
    with try_hold_lab(lab, "status") as held:
        # Looked at once held: a `down` may have finished just before.
        if held and adapters.runtime.lab_objects({"lab.name": lab}):
            counters, repaired = lifecycle.check_guard(lab, adapters)
            if repaired:
                err.print(f"[bold yellow]guard:[/] {escape(repaired)}", highlight=False, soft_wrap=True)
            return counters
    return _guard_counters(lab, adapters)


def _guard_counters(lab: str, adapters) -> dict[str, int]:
    """The lab's forwarding guard as the host counts it; empty (and said so) when it is missing."""
    try:
        return adapters.host.counters(guard_table(lab))
    except LabError:
        err.print(f"[bold red]warning:[/] the host has no forwarding guard for lab {lab} (`lab up` installs it)")
        return {}


@app.command()
def failover(
    fault: str = typer.Option(..., help="kill, maintenance, pause, link-down, blackhole, zone-down, circuit-down, "
                                        "msee-down or peering-location-down"),
    target: Optional[str] = typer.Option(None, help="what to hit: NODE (an instance, a device), gateway:NAME, zone:N "
                                                   "or link:NODE/NETWORK (default: the first active instance)"),
    runs: int = typer.Option(1, min=1, help="valid runs to collect (an invalid one is repeated, up to N + max(2, N) tries); "
                                           "the lab goes back to its initial state after each"),
    profile: Optional[str] = typer.Option(None, help=f"timer profile ({', '.join(builtin_profiles())}); default: the running lab's"),
    scenario: str = typer.Option(DEFAULT_SCENARIO, help="built-in scenario or a YAML file"),
    lab: Optional[str] = lab_option("lab name (default: the scenario's name)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="folder for report.json, junit.xml, summary.md and plots"),
    interval_ms: float = typer.Option(20.0, "--interval-ms", min=1.0, max=1000.0, help="probe interval"),
) -> None:
    """Time a real failover against the profile's target; exit 1 when a target is missed, 3 when the runs
    asked for could not all be measured (invalid runs are repeated, up to as many again)."""
    from rich.live import Live as RichLive

    from lab.failover.faults import get_fault
    from lab.ui.failover_view import LiveFailoverView, render_failover, write_outputs

    try:
        get_fault(fault)
        session = LabSession(scenario, profile, lab, adapters=real_adapters(), events=event_stream())
        view = LiveFailoverView()
        session.events.subscribe(view)
        with RichLive(view, console=err, refresh_per_second=4, transient=True, auto_refresh=err.is_terminal):
            result = session.failover(fault, target, runs, interval_ms)
        report = result.report
        folder = out_dir or session.default_out(fault, report.target)
        written = write_outputs(report, folder)
    except LabError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted: a fault already injected was undone and the lab failed back; `lab status` shows it")
        raise typer.Exit(130)
    out.print(render_failover(report))
    out.print(f"results: {folder}/ ({', '.join(p.name for p in written)})")
    raise typer.Exit(0 if report.passed else NOT_MEASURED_EXIT if report.verdict == "INVALID" else 1)


def _running_plan(lab: Optional[str], adapters) -> LabPlan:
    adapters.runtime.ping()
    return lifecycle.running_plan(lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO), adapters, DEFAULT_SCENARIO)


@app.command()
def connection(
    tunnel: Optional[str] = typer.Argument(None, help="tunnel name (default: every tunnel)"),
    lab: Optional[str] = lab_option(),
    json_out: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """What your own VPN device needs to connect to the lab's gateway: Azure's side, then the lab's extras."""
    from lab.render.connection import device_connections
    from lab.ui.status_view import render_connections

    try:
        adapters = real_adapters()
        plan = _running_plan(lab, adapters)
        views = device_connections(plan, lab_dir(plan.lab), tunnel)
    except LabError as exc:
        fail(exc)
    if json_out:
        out.print(json.dumps([v.as_dict() for v in views], indent=1), highlight=False, soft_wrap=True)
    else:
        out.print(render_connections(views))


@app.command(name="break")
def break_(
    fault: str = typer.Argument(..., help="kill, maintenance, pause, link-down, blackhole, zone-down, circuit-down, "
                                          "msee-down or peering-location-down"),
    target: Optional[str] = typer.Option(None, help="NODE, gateway:NAME, zone:N, link:NODE/NETWORK, peering:NAME or "
                                                   "circuit:GATEWAY (default: the fault's own, else the first instance)"),
    lab: Optional[str] = lab_option(),
) -> None:
    """Inject a fault and leave it in place (training); `lab repair` undoes it."""
    try:
        session = LabSession.attach(lab, adapters=real_adapters(), events=event_stream())
        chosen = target or session.break_target(fault)
        done = session.break_(fault, chosen)
    except LabError as exc:
        fail(exc)
    out.print(f"{fault} on {chosen}: {done}. Watch it with `lab status`; `lab repair` puts it right.")


@app.command()
def repair(lab: Optional[str] = lab_option()) -> None:
    """Undo every fault `lab break` left in place and fail back to the initial instances."""
    try:
        session = LabSession.attach(lab, adapters=real_adapters(), events=event_stream())
        with showing(session.events, f"lab {session.name} repair"):
            done = session.repair()
    except LabError as exc:
        fail(exc)
    for line in done or ["nothing to repair"]:
        out.print(line)


@app.command(name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    ctx: typer.Context,
    node: str = typer.Argument(..., help="node name, e.g. onprem-host", callback=checked(names.NODE, "NODE")),
    lab: Optional[str] = lab_option(),
) -> None:
    """Run a command in a node: lab exec NODE -- CMD ..."""
    argv = list(ctx.args)
    if not argv:
        fail(LabError("no command given: lab exec NODE -- CMD ..."))
    try:
        adapters = real_adapters()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        code, output = adapters.runtime.exec(names.container_name(name, node), argv, timeout_s=60)
    except LabError as exc:
        fail(exc)
    sys.stdout.write(output)
    raise typer.Exit(code)


# Each daemon's own log in a node; the entrypoint's output is the container's log.
DAEMON_LOGS = {"charon": CHARON_LOG, "frr": FRR_LOG, "keepalived": KEEPALIVED_LOG}


@app.command()
def logs(
    node: str = typer.Argument(..., help="node name", callback=checked(names.NODE, "NODE")),
    lab: Optional[str] = lab_option(),
    tail: Optional[int] = typer.Option(None, min=1, help="only the last N lines of each log"),
    source: str = typer.Option("all", help=f"entrypoint, {', '.join(DAEMON_LOGS)} or all"),
) -> None:
    """A node's logs: its entrypoint's output, then charon's, FRR's and keepalived's, where it runs them."""
    if source not in ("all", "entrypoint", *DAEMON_LOGS):
        fail(LabError(f"--source {source!r}: choose from all, entrypoint, {', '.join(DAEMON_LOGS)}"))
    try:
        adapters = real_adapters()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        container = names.container_name(name, node)
        if source in ("all", "entrypoint"):
            sys.stdout.write(adapters.runtime.logs(container, tail=tail))
        for daemon, path in DAEMON_LOGS.items():
            if source not in ("all", daemon):
                continue
            lines = adapters.runtime.read_file(container, path).splitlines(keepends=True)
            if lines:
                sys.stdout.write(f"==> {daemon} ({path}) <==\n" + "".join(lines[-tail:] if tail else lines))
    except LabError as exc:
        fail(exc)


@app.command(name="build-image")
def build_image(
    context: Path = typer.Option(Path(__file__).resolve().parents[2] / "images" / "node", help="Dockerfile folder"),
    tag: str = typer.Option(IMAGE, help="image tag"),
) -> None:
    """Build the node image (run scripts/build-base-image.sh first where no registry is reachable)."""
    try:
        check_image(tag)
        runtime = real_adapters().runtime
        runtime.ping()
        events = event_stream()
        with showing(events, f"image {tag}") as display, tempfile.TemporaryDirectory(prefix="lab-image-") as scratch:
            events.stage(tag, Stage.BUILDING_IMAGE, "fetching lab-agent's wheels")
            ready = prepare_context(context, Path(scratch))

            def step(line: str) -> None:
                # Each Dockerfile step to the log; its first words on the live line.
                log.debug("image %s: %s", tag, line)
                if line.startswith("Step "):
                    events.stage(tag, Stage.BUILDING_IMAGE, line[:60])

            runtime.build_image(str(ready), tag, step)
    except LabError as exc:
        fail(exc)
    out.print(f"image {tag}: built in {display.elapsed_s:.1f} s")


@app.command()
def compose(
    output: Path = typer.Option(Path("docker-compose.yml"), help="compose file to write"),
    config_root: Path = typer.Option(Path("compose/active-standby"), help="folder for the nodes' configs"),
) -> None:
    """Write the default lab as a Compose project (configs without keys)."""
    from lab.render.compose import write_compose

    plan = load_plan(DEFAULT_SCENARIO)
    write_compose(plan, output, config_root)
    out.print(f"wrote {output} and {config_root}/")


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    from lab.plan.load import load_scenario

    for name in builtin_scenarios():
        _, s = load_scenario(name)
        out.print(f"[bold]{name}[/]: {s.description}")


# Commands in modules of their own, on the one app (each module's `register`).
from lab.ui import capture_cli, console_cli, exercise_cli, graph_cli  # noqa: E402 - they use what is above

for _module in (graph_cli, capture_cli, exercise_cli, console_cli):
    _module.register(app)


def main() -> None:
    """The installed `lab` (pyproject's entry point) and `python -m lab.ui.cli`."""
    try:
        app()
    finally:
        # The command has finished and said so: a Ctrl-C while the interpreter exits
        # must not turn its exit code into a death by signal.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    main()
