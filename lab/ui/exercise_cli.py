"""`lab exercise`: exercises for trainers (issue 20): list, start, check, hint, solution.

Each exercise starts a lab broken or weakened (lab/training/exercises.py and its exercises.yaml);
`check` judges the running lab and prints one line per problem still there (exit 1), or one line
saying it is solved (exit 0). Bad input is one line, exit 2."""
from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from lab.model.errors import LabError
from lab.ui.cli_common import err, event_stream, fail, lab_option, out, showing

exercise_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                           help="Exercises for trainers: a lab started broken or weakened, and a check of it.")


def _adapters():
    from lab.adapters.wiring import real_adapters   # docker: loaded only when a lab is reached

    return real_adapters()


def _number(text: str):
    """An exercise by its number, checked where it enters (one line, not typer's usage box)."""
    from lab.training.exercises import exercises, get_exercise

    if not text.isdigit() or len(text) > 4:
        raise LabError(f"N: {text[:20]!r} is no exercise number (1 to {len(exercises())}; `lab exercise list`)")
    return get_exercise(int(text))


def _plain(line: str) -> None:
    """A line as it is: a shell command or a check's finding is never read as markup or wrapped."""
    typer.echo(line)


@exercise_app.command("list")
def list_() -> None:
    """The exercises: number, scenario and profile, title."""
    from lab.training.exercises import exercises

    try:
        known = exercises()
    except LabError as exc:
        fail(exc)
    for e in known.values():
        out.print(f"[bold]{e.number}[/]  {escape(e.title)}  ({e.scenario}, profile {e.profile}; "
                  f"lab {e.default_lab})", highlight=False)


@exercise_app.command()
def start(
    number: str = typer.Argument(..., metavar="N", help="the exercise's number (`lab exercise list`)"),
    lab: Optional[str] = lab_option("lab name (default: exN); a lab running an earlier exercise starts again"),
) -> None:
    """Start an exercise: its lab comes up weakened; then `lab exercise check`."""
    from lab.training.exercises import start as start_exercise

    try:
        exercise = _number(number)
        events = event_stream()
        with showing(events, f"exercise {exercise.number}"):
            started = start_exercise(exercise.number, lab, _adapters(), events)
    except LabError as exc:
        fail(exc)
    name = started.lab
    out.print(f"[bold]Exercise {exercise.number}: {escape(exercise.title)}[/]", highlight=False)
    out.print(escape(" ".join(exercise.text("situation", name).split())), highlight=False)
    out.print(f"lab: {name} (scenario {exercise.scenario}, profile {exercise.profile})", highlight=False)
    _plain(f"scenario copy: {started.scenario_copy} (edit it, then `lab up {started.scenario_copy} --lab {name}`)")
    _plain(f"check: lab exercise check --lab {name} ({exercise.check_takes})")
    _plain(f"stuck: lab exercise hint --lab {name}; the fix: lab exercise solution --lab {name}")


@exercise_app.command()
def check(lab: Optional[str] = lab_option("the exercise's lab (default: the one exercise lab running)")) -> None:
    """Judge the running lab: one line per problem still there (exit 1), or one line when solved (exit 0)."""
    from lab.training import exercises as training

    try:
        adapters = _adapters()
        adapters.runtime.ping()
        name = training.pick_lab(lab, adapters)
        events = event_stream()
        with showing(events, f"lab {name} check"):
            exercise, problems = training.check(name, adapters, events)
    except LabError as exc:
        fail(exc)
    for line in problems:
        _plain(line)
    if problems:
        raise typer.Exit(1)
    _plain(f"solved: exercise {exercise.number} ({exercise.title}) on lab {name}: no problem left")


def _chosen(number: Optional[str], lab: Optional[str]):
    """The exercise asked for, or the one started on the lab (named, or the one running); its lab's name."""
    from lab.training import exercises as training

    if number is not None:
        exercise = _number(number)
        return exercise, lab or exercise.default_lab
    adapters = _adapters()
    adapters.runtime.ping()
    try:
        name = training.pick_lab(lab, adapters)
    except LabError as exc:
        raise LabError(f"{exc} (or name the exercise: `lab exercise hint N`)") from None
    return training.started_on(name, adapters), name


def _number_argument():
    return typer.Argument(None, metavar="[N]", help="the exercise (default: the lab's)")


def _exercise_lab_option():
    return lab_option("the exercise's lab (default: exN, or the one exercise lab running)")


@exercise_app.command()
def hint(
    number: Optional[str] = _number_argument(),
    lab: Optional[str] = _exercise_lab_option(),
) -> None:
    """A nudge toward the problem."""
    try:
        exercise, name = _chosen(number, lab)
    except LabError as exc:
        fail(exc)
    out.print(escape(" ".join(exercise.text("hint", name).split())), highlight=False)


@exercise_app.command()
def solution(
    number: Optional[str] = _number_argument(),
    lab: Optional[str] = _exercise_lab_option(),
) -> None:
    """The exact commands that fix it: shell lines to paste (comments start with #)."""
    try:
        exercise, name = _chosen(number, lab)
    except LabError as exc:
        fail(exc)
    for line in exercise.solution_lines(name):
        _plain(line)
    err.print(f"then: lab exercise check --lab {name}", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds `lab exercise ...` to `app`."""
    app.add_typer(exercise_app, name="exercise")
