"""`lab ui`: the training console, a page on 127.0.0.1 for the room to watch (lab.ui.console)."""
from __future__ import annotations

import ipaddress
import re
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Optional

import typer

from lab.model.errors import LabError
from lab.ui.cli_common import err, event_stream, fail, lab_option, out

LOOPBACK = "127.0.0.1"
# What a token may hold: it goes into a cookie and a header as it is.
TOKEN_RULE = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")


def read_token(path: Path) -> str:
    """The token from a file only its owner can read; one line naming what is wrong otherwise."""
    try:
        info = path.stat()
    except OSError as exc:
        raise LabError(f"--token-file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise LabError(f"--token-file {path}: not a regular file")
    if info.st_mode & 0o077:
        raise LabError(f"--token-file {path}: readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
                       f"chmod 600 {path}")
    token = path.read_text(errors="replace").strip()
    if not TOKEN_RULE.fullmatch(token):
        raise LabError(f"--token-file {path}: the token must be 16 to 256 characters of letters, digits and ._~+/=- "
                       "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return token


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def check_results_folder(path: Path) -> None:
    """--results, made now and written to once, so a run's reports don't fail after the run."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".lab-ui-"):
            pass
    except OSError as exc:
        raise LabError(f"--results {path}: can't write there ({exc.strerror or exc})") from None


def check_host(host: str, token_file: Optional[Path]) -> str | None:
    """The address to serve on; the token it needs (None on 127.0.0.1 without --token-file)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise LabError(f"--host {host!r}: an IP address of this machine, e.g. 127.0.0.1") from None
    if str(address) != LOOPBACK and token_file is None:
        raise LabError(f"--host {host}: the console can break labs, so it is served beyond 127.0.0.1 only with "
                       "--token-file FILE (a token only you can read)")
    return read_token(token_file) if token_file is not None else None


def register(app: typer.Typer) -> None:
    @app.command()
    def ui(
        lab: Optional[str] = lab_option(),
        port: int = typer.Option(0, min=0, max=65535, help="port (default: a free one)"),
        host: str = typer.Option(LOOPBACK, help="address to serve on; anything but 127.0.0.1 needs --token-file"),
        token_file: Optional[Path] = typer.Option(None, "--token-file",
                                                  help="a file (mode 600) holding the token every API call must carry"),
        results: Path = typer.Option(Path("results") / "console", help="folder for the reports of timed runs"),
    ) -> None:
        """The training console: the lab's topology and live state, break, repair and timed failovers,
        captures; served on 127.0.0.1 until Ctrl-C."""
        from lab.adapters.wiring import real_adapters
        from lab.session import LabSession
        from lab.ui.console.server import Console, ConsoleServer

        try:
            token = check_host(host, token_file)
            check_results_folder(results)
            session = LabSession.attach(lab, adapters=real_adapters(), events=event_stream())
            console = Console(session, results, token=token)
            server = ConsoleServer(console, host, port)
        except LabError as exc:
            fail(exc)
        except OSError as exc:
            fail(LabError(f"--host {host} --port {port}: {exc.strerror or exc}"))
        # SIGTERM (a service manager, a test) ends it as Ctrl-C does: a run in progress is let finish.
        signal.signal(signal.SIGTERM, _interrupt)
        console.start()
        thread = threading.Thread(target=server.serve_forever, name="console-http", daemon=True)
        thread.start()
        out.print(f"lab {session.name} ({session.plan.scenario.name}, profile {session.plan.profile.name}): "
                  f"console at {server.url}" + (" (token needed)" if token else ""), highlight=False, soft_wrap=True)
        out.print("Ctrl-C stops it; the lab keeps running.", highlight=False)
        try:
            thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            _let_the_operation_finish(console)
            server.shutdown()
            console.stop()
            server.server_close()


def _let_the_operation_finish(console) -> None:
    """A run in progress puts the lab back as it was before it ends: Ctrl-C again doesn't cut it short."""
    running = console.running_operation()
    if running is None:
        return
    out.print(f"waiting for the {running.name} to finish (it puts the lab back as it was); "
              "Ctrl-C again does not stop it", highlight=False)
    while True:
        try:
            finished = console.wait_idle()
            break
        except KeyboardInterrupt:
            out.print(f"still waiting for the {running.name}", highlight=False)
    if not finished:
        err.print(f"the {running.name} did not finish in time: `lab repair --lab {console.plan.lab}` undoes "
                  "a fault it left", highlight=False)
