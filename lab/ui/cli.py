"""The `lab` command: builds the real adapters, calls the core, renders results."""
from __future__ import annotations

import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from lab.run import lifecycle
from lab.failover.breakfix import break_lab, faults_in_place, repair_lab
from lab.model import names
from lab.run.deploy import IMAGE, check_image
from lab.model.errors import LabError
from lab.adapters.image import prepare_context
from lab.ui.status_view import print_status, status_json
from lab.model.schema import LabPlan
from lab.run.locks import LabBusy, hold_lab, try_hold_lab
from lab.render.configs import guard_table
from lab.run.state import lab_dir
from lab.plan.topology import builtin_profiles, builtin_scenarios, load_plan
from lab.adapters.wiring import real_adapters

DEFAULT_SCENARIO = "active-standby"

# No locals in tracebacks: they could hold pre-shared keys.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False, help="Azure VPN gateway high-availability lab.")
out = Console()
err = Console(stderr=True)


# A busy lab (another command holds it) is worth retrying: EX_TEMPFAIL, as sysexits.h has it.
BUSY_EXIT = 75
# A failover that could not collect the valid runs asked for measured nothing: not a FAIL.
NOT_MEASURED_EXIT = 3


def _fail(exc: Exception, code: int = 2) -> None:
    # Escaped: the message may quote what a user typed, brackets included.
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(BUSY_EXIT if isinstance(exc, LabBusy) else code)


def _checked(rule: names.NameRule, option: str) -> Callable[[Optional[str]], Optional[str]]:
    """A typer callback: the name is checked where it enters, before any command runs."""
    def check(value: Optional[str]) -> Optional[str]:
        if value is not None and rule.problem(value):
            _fail(LabError(f"{option}: {rule.problem(value)}"))
        return value
    return check


def _lab_option(help: str = "lab name (default: the running one)"):
    return typer.Option(None, "--lab", help=help, callback=_checked(names.LAB, "--lab"))


@app.command()
def up(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help=f"built-in scenario ({', '.join(builtin_scenarios())}) or a YAML file"),
    profile: Optional[str] = typer.Option(None, help=f"timer profile ({', '.join(builtin_profiles())}); default: the scenario's"),
    lab: Optional[str] = _lab_option("lab name (default: the scenario's name)"),
    json_out: bool = typer.Option(False, "--json", help="print the final status as JSON"),
) -> None:
    """Build and start a lab; returns once IKE and BGP have converged."""
    plan = adapters = None
    try:
        plan = load_plan(scenario, profile, lab)
        adapters = real_adapters()
        with err.status("starting") as spinner:
            def progress(message: str) -> None:
                spinner.update(message)
                err.log(message)

            status = lifecycle.up(plan, adapters, progress)
        if json_out:
            out.print(status_json(status), highlight=False)
        else:
            print_status(status, out)
    except LabError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        # Either `up` removed what it made, or the lab was running (before, or converged just now) and stays.
        left = adapters.runtime.lab_objects({"lab.name": plan.lab}) if plan and adapters else []
        err.print(f"interrupted: lab {plan.lab} is running and left as it is (`lab down --lab {plan.lab}` removes it)"
                  if left else "interrupted: the lab was removed")
        raise typer.Exit(130)


@app.command()
def down(lab: Optional[str] = _lab_option()) -> None:
    """Remove every container, network and file of a lab."""
    try:
        adapters = real_adapters()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        removed = lifecycle.down(name, adapters)
    except LabError as exc:
        _fail(exc)
    kept = [line.removeprefix(lifecycle.KEPT) for line in removed if line.startswith(lifecycle.KEPT)]
    out.print(f"lab {name}: removed {len(removed) - len(kept)} object(s)")
    for line in kept:
        err.print(f"[bold yellow]note:[/] {escape(line)}", highlight=False, soft_wrap=True)


@app.command()
def status(
    lab: Optional[str] = _lab_option(),
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
    window: float = typer.Option(1.0, min=0.0, max=30.0,
                                 help="seconds over which each tunnel's ESP rate is measured (0: totals only)"),
) -> None:
    """Tunnels (with the rate each carries now), BGP sessions and the ECMP next hops in use,
    which instances are active, and the data plane."""
    try:
        adapters = real_adapters()
        adapters.runtime.ping()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        guard = _kept_guard(name, adapters)
        result = lifecycle.read_status(name, adapters, rate_window_s=window)
        result.faults_in_place = faults_in_place(lab_dir(name))
        result.guard = guard
    except LabError as exc:
        _fail(exc)
    if json_out:
        out.print(status_json(result), highlight=False, soft_wrap=True)
    else:
        print_status(result, out)
    raise typer.Exit(0 if result.converged else 1)


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


def _active_instance(plan: LabPlan, adapters) -> str:
    """The default failover target: the first gateway's instance that is active now."""
    active = lifecycle.read_status(plan.lab, adapters).active_instances
    return active[0] if active else _first_instance(plan)


def _first_instance(plan: LabPlan) -> str:
    """The default fault target: the first instance of the first gateway."""
    return next(iter(plan.gateway_instances()), "")


def _lab_for_failover(plan: LabPlan, scenario: str, profile: Optional[str], lab: Optional[str], adapters,
                      progress) -> LabPlan:
    """The lab to test (`plan`, as asked): the running one, or one brought up now with the asked profile."""
    adapters.runtime.ping()
    running = adapters.runtime.containers({"lab.name": plan.lab})
    running_profile = lifecycle.label_name(plan.lab, running[0].labels, "lab.profile") if running else None
    if running_profile and profile is None:
        plan = load_plan(scenario, running_profile, lab)
    elif running_profile and running_profile != plan.profile.name:
        progress(f"lab {plan.lab} runs profile {running_profile}: re-creating it with {plan.profile.name}")
        lifecycle.down(plan.lab, adapters)
        running = []
    if not running:
        progress(f"bringing lab {plan.lab} up (profile {plan.profile.name})")
        lifecycle.up(plan, adapters, progress)
    return plan


@app.command()
def failover(
    fault: str = typer.Option(..., help="kill, maintenance, pause, link-down or blackhole"),
    target: Optional[str] = typer.Option(None, help="what to hit: NODE (an instance, a device), gateway:NAME, zone:N "
                                                   "or link:NODE/NETWORK (default: the first active instance)"),
    runs: int = typer.Option(1, min=1, help="valid runs to collect (an invalid one is repeated, up to N + max(2, N) tries); "
                                           "the lab goes back to its initial state after each"),
    profile: Optional[str] = typer.Option(None, help=f"timer profile ({', '.join(builtin_profiles())}); default: the running lab's"),
    scenario: str = typer.Option(DEFAULT_SCENARIO, help="built-in scenario or a YAML file"),
    lab: Optional[str] = _lab_option("lab name (default: the scenario's name)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="folder for report.json, junit.xml, summary.md and plots"),
    interval_ms: float = typer.Option(20.0, "--interval-ms", min=1.0, max=1000.0, help="probe interval"),
) -> None:
    """Time a real failover against the profile's target; exit 1 when a target is missed, 3 when the runs
    asked for could not all be measured (invalid runs are repeated, up to as many again)."""
    from lab.ui.failover_view import render_failover, write_outputs
    from lab.failover.faults import get_fault

    try:
        get_fault(fault)
        adapters = real_adapters()
        asked = load_plan(scenario, profile, lab)
        with hold_lab(asked.lab, "failover"):
            report, settings, plan = _failover(asked, fault, target, runs, profile, scenario, lab, interval_ms,
                                               adapters)
        where = settings.target.replace(":", "-").replace("/", "-")
        folder = out_dir or Path("results") / f"{plan.lab}-{plan.profile.name}-{fault}-{where}"
        written = write_outputs(report, folder)
    except LabError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted: a fault already injected was undone and the lab failed back; `lab status` shows it")
        raise typer.Exit(130)
    out.print(render_failover(report))
    out.print(f"results: {folder}/ ({', '.join(p.name for p in written)})")
    raise typer.Exit(0 if report.passed else NOT_MEASURED_EXIT if report.verdict == "INVALID" else 1)


def _failover(asked: LabPlan, fault: str, target: Optional[str], runs: int, profile: Optional[str], scenario: str,
              lab: Optional[str], interval_ms: float, adapters):
    """The timed runs, on the running lab or one brought up for them; the caller holds the lab."""
    from rich.live import Live as RichLive

    from lab.failover.runner import FailoverRunner, FailoverSettings
    from lab.ui.failover_view import render_live

    plan = _lab_for_failover(asked, scenario, profile, lab, adapters, lambda m: err.log(m))
    settings = FailoverSettings(fault=fault, target=target or _active_instance(plan, adapters), runs=runs,
                                interval_s=interval_ms / 1000)
    stages: list[str] = []
    with RichLive(console=err, refresh_per_second=4, transient=True) as view:
        def show(live) -> None:
            if not stages or stages[-1] != f"{live.run}:{live.stage}":
                stages.append(f"{live.run}:{live.stage}")
                err.log(f"run {live.run}/{live.runs}: {live.stage}")
            view.update(render_live(live))

        def recreate() -> None:
            lifecycle.down(plan.lab, adapters)
            lifecycle.up(plan, adapters, lambda m: err.log(m))

        report = FailoverRunner(plan, adapters, settings, show, recreate, say=lambda m: err.log(m)).run_all()
    return report, settings, plan


def _running_plan(lab: Optional[str], adapters) -> LabPlan:
    adapters.runtime.ping()
    return lifecycle.running_plan(lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO), adapters, DEFAULT_SCENARIO)


@app.command()
def connection(
    tunnel: Optional[str] = typer.Argument(None, help="tunnel name (default: every tunnel)"),
    lab: Optional[str] = _lab_option(),
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
        _fail(exc)
    if json_out:
        out.print(json.dumps([v.as_dict() for v in views], indent=1), highlight=False, soft_wrap=True)
    else:
        out.print(render_connections(views))


@app.command(name="break")
def break_(
    fault: str = typer.Argument(..., help="kill, maintenance, pause, link-down or blackhole"),
    target: Optional[str] = typer.Option(None, help="NODE, gateway:NAME, zone:N or link:NODE/NETWORK "
                                                   "(default: the scenario's first instance)"),
    lab: Optional[str] = _lab_option(),
) -> None:
    """Inject a fault and leave it in place (training); `lab repair` undoes it."""
    try:
        adapters = real_adapters()
        plan = _running_plan(lab, adapters)
        chosen = target or _first_instance(plan)
        done = break_lab(plan, adapters, fault, chosen, lab_dir(plan.lab))
    except LabError as exc:
        _fail(exc)
    out.print(f"{fault} on {chosen}: {done}. Watch it with `lab status`; `lab repair` puts it right.")


@app.command()
def repair(lab: Optional[str] = _lab_option()) -> None:
    """Undo every fault `lab break` left in place and fail back to the initial instances."""
    try:
        adapters = real_adapters()
        plan = _running_plan(lab, adapters)
        with err.status("repairing"):
            done = repair_lab(plan, adapters, lab_dir(plan.lab))
    except LabError as exc:
        _fail(exc)
    for line in done or ["nothing to repair"]:
        out.print(line)


@app.command(name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    ctx: typer.Context,
    node: str = typer.Argument(..., help="node name, e.g. onprem-host", callback=_checked(names.NODE, "NODE")),
    lab: Optional[str] = _lab_option(),
) -> None:
    """Run a command in a node: lab exec NODE -- CMD ..."""
    argv = list(ctx.args)
    if not argv:
        _fail(LabError("no command given: lab exec NODE -- CMD ..."))
    try:
        adapters = real_adapters()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        code, output = adapters.runtime.exec(f"lab-{name}-{node}", argv, timeout_s=60)
    except LabError as exc:
        _fail(exc)
    sys.stdout.write(output)
    raise typer.Exit(code)


@app.command()
def logs(
    node: str = typer.Argument(..., help="node name", callback=_checked(names.NODE, "NODE")),
    lab: Optional[str] = _lab_option(),
    tail: Optional[int] = typer.Option(None, help="only the last N lines"),
) -> None:
    """A node's log: its entrypoint, charon and keepalived."""
    try:
        adapters = real_adapters()
        name = lifecycle.pick_lab(lab, adapters, DEFAULT_SCENARIO)
        sys.stdout.write(adapters.runtime.logs(f"lab-{name}-{node}", tail=tail))
    except LabError as exc:
        _fail(exc)


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
        with err.status("building") as spinner, tempfile.TemporaryDirectory(prefix="lab-image-") as scratch:
            spinner.update("fetching lab-agent's wheels")
            ready = prepare_context(context, Path(scratch))
            runtime.build_image(str(ready), tag, lambda line: (spinner.update(line), err.log(line)))
    except LabError as exc:
        _fail(exc)
    out.print(f"image {tag}: built")


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
    from lab.plan.topology import load_scenario

    for name in builtin_scenarios():
        _, s = load_scenario(name)
        out.print(f"[bold]{name}[/]: {s.description}")


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
