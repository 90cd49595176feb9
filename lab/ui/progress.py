"""What `lab` shows while it works, and what it logs: subscribers of the event stream.

On screen: the current stage with a spinner and the elapsed time, then one line with the total.
Everything else (each node created, each stage with its detail, Docker's build steps) goes to
the log file, or to the screen as well with `--verbose`.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.spinner import Spinner
from rich.text import Text

from lab.model.events import ControlEvent, LabDown, LabEvent, LabUp, Note, ProbeTick, StageChanged

log = logging.getLogger("lab")
LOG_BYTES = 1_000_000
LOG_BACKUPS = 3


class _LazyLogFile(logging.handlers.RotatingFileHandler):
    """The log file, made (0600, in a 0700 folder) only when the first line is written: a command
    refused at its options has touched nothing."""

    def _open(self):
        folder = Path(self.baseFilename).parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8")

    def handleError(self, record: logging.LogRecord) -> None:
        # A log that can't be written must not stop the lab (a full disk, a read-only home).
        pass


def setup_logging(folder: Path, verbose: bool, console: Console) -> Path:
    """Logs to `folder`/lab.log (0600, rotated, made on first use); with `verbose`, on `console` too."""
    root = logging.getLogger("lab")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
    path = folder / "lab.log"
    handler = _LazyLogFile(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    if verbose:
        from rich.logging import RichHandler

        root.addHandler(RichHandler(console=console, show_path=False, markup=False, log_time_format="%H:%M:%S"))
    return path


def log_event(event: LabEvent) -> None:
    """Every event, as one log line (probe ticks are too many: they are left to the live views)."""
    if isinstance(event, ProbeTick):
        return
    if isinstance(event, StageChanged):
        run = f" run {event.run}/{event.runs}" if event.run is not None else ""
        log.info("lab %s%s: %s%s", event.lab, run, event.stage.value, f" ({event.detail})" if event.detail else "")
    elif isinstance(event, Note):
        log.log(event.level, "lab %s: %s", event.lab, event.text)
    elif isinstance(event, ControlEvent):
        e = event.event
        log.debug("lab %s: %s %s %s %s", event.lab, e.source, e.node, e.kind, e.detail)
    elif isinstance(event, LabUp):
        log.info("lab %s: converged in %.1f s", event.lab, event.took_s)
    elif isinstance(event, LabDown):
        log.info("lab %s: removed %d object(s)", event.lab, event.removed)
    else:
        log.debug("lab %s: %s", event.lab, type(event).__name__)


class StageDisplay:
    """A live line for a long command: spinner, stage, elapsed time; notes printed above it.

    Use as a context manager around the command, subscribed to its stream. Off a terminal (CI) it
    draws nothing: the command's result line says enough, and --verbose shows every stage."""

    def __init__(self, console: Console, what: str):
        from rich.live import Live

        self.console, self.what = console, what
        self.started = time.monotonic()
        self.stage = "starting"
        self.spinner = Spinner("dots")
        self.live = Live(self, console=console, refresh_per_second=8, transient=True)

    def __rich_console__(self, console: Console, options):
        # One line whatever the width: the elapsed time first, the stage's detail cut if need be.
        line = self.spinner.render(time.monotonic())
        line.append(f" {time.monotonic() - self.started:5.1f} s ", style="dim")
        line.append(f" {self.what}: {self.stage}")
        line.truncate(options.max_width, overflow="ellipsis")
        yield line

    def __call__(self, event: LabEvent) -> None:
        if isinstance(event, StageChanged):
            self.stage = event.stage.value + (f" ({event.detail})" if event.detail else "")
        elif isinstance(event, Note) and event.level >= logging.INFO:
            self.console.print(f"[bold yellow]note:[/] {escape(event.text)}", highlight=False, soft_wrap=True)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def __enter__(self) -> "StageDisplay":
        if self.console.is_terminal:
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.console.is_terminal:
            self.live.stop()
