"""What every `lab` command shares: the consoles, one-line errors, checked options, its event stream.

The commands live in `lab.ui.cli` and in modules of their own (graph, capture, exercise, ui), each
registered on the one app there; all of them fail, check names and show progress the same way."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape

from lab.model import names
from lab.model.errors import LabError
from lab.model.events import EventStream
from lab.run.locks import LabBusy
from lab.ui.progress import StageDisplay, log_event

out = Console()
err = Console(stderr=True)

# A busy lab (another command holds it) is worth retrying: EX_TEMPFAIL, as sysexits.h has it.
BUSY_EXIT = 75
# A failover that could not collect the valid runs asked for measured nothing: not a FAIL.
NOT_MEASURED_EXIT = 3


def fail(exc: Exception, code: int = 2) -> None:
    # Escaped: the message may quote what a user typed, brackets included.
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(BUSY_EXIT if isinstance(exc, LabBusy) else code)


def checked(rule: names.NameRule, option: str) -> Callable[[Optional[str]], Optional[str]]:
    """A typer callback: the name is checked where it enters, before any command runs."""
    def check(value: Optional[str]) -> Optional[str]:
        if value is not None and rule.problem(value):
            fail(LabError(f"{option}: {rule.problem(value)}"))
        return value
    return check


def lab_option(help: str = "lab name (default: the running one)"):
    return typer.Option(None, "--lab", help=help, callback=checked(names.LAB, "--lab"))


def event_stream() -> EventStream:
    """A command's event stream, every event logged (the file, and the screen with --verbose)."""
    events = EventStream()
    events.subscribe(log_event)
    return events


@contextmanager
def showing(events: EventStream, what: str) -> Iterator[StageDisplay]:
    """The live stage line on stderr while a command runs."""
    display = StageDisplay(err, what)
    stop = events.subscribe(display)
    try:
        with display:
            yield display
    finally:
        stop()


def check_out_file(path: Path) -> Path:
    """An --out we may write: a file (not a folder) in a folder that exists."""
    if path.is_dir():
        raise LabError(f"--out {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise LabError(f"--out {path}: folder {path.parent} does not exist")
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """All of `data` at `path` or nothing: a temporary file beside it, renamed over it, with the
    mode a plain open() would have given it (not mkstemp's 0600: what `lab` writes here holds no key)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
