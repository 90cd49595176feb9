"""`lab capture NODE[:LINK]`: a pcap taken by tcpdump in a node, written to a file (docs/capture.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from lab.model.errors import LabError
from lab.run.capture import ANY, PACKET_CAP, SECONDS_DEFAULT, SECONDS_MAX, SECONDS_MIN, SNAPLEN, packet_count
from lab.session import LabSession
from lab.ui.cli_common import check_out_file, event_stream, fail, lab_option, out, showing, write_atomically

SUFFIX = ".pcap"   # tcpdump writes classic pcap, not pcapng


def check_out(path: Path) -> Path:
    """--out as a file we may write: a .pcap, not a folder, in a folder that exists."""
    if path.suffix != SUFFIX:
        raise LabError(f"--out {path}: a capture is written to a {SUFFIX} file")
    return check_out_file(path)


def attach(lab: Optional[str]) -> LabSession:
    """The running lab's session (the unit tests put one of fakes here)."""
    from lab.adapters.wiring import real_adapters

    return LabSession.attach(lab, adapters=real_adapters(), events=event_stream())


def register(app: typer.Typer) -> None:
    @app.command()
    def capture(
        target: str = typer.Argument(..., metavar="NODE[:LINK]",
                                     help=f"a node, or NODE:LINK for one of its links (default: {ANY}, every interface)"),
        out_path: Path = typer.Option(..., "--out", help=f"the {SUFFIX} file to write"),
        bpf: Optional[str] = typer.Option(None, "--filter",
                                          help="a tcpdump filter, e.g. 'udp port 500 or udp port 4500'"),
        seconds: int = typer.Option(SECONDS_DEFAULT, "--seconds",
                                    help=f"how long to capture, {SECONDS_MIN} to {SECONDS_MAX}"),
        lab: Optional[str] = lab_option(),
    ) -> None:
        """Capture packets in a node's namespace (tcpdump) into a pcap for tcpdump -r or Wireshark."""
        node, _, link = target.partition(":")
        try:
            path = check_out(out_path)
            session = attach(lab)
            # A live line with the elapsed time on a terminal (nothing off one).
            with showing(session.events, f"capturing {seconds} s on {node}:{link or ANY}"):
                data = session.capture(node, link or None, bpf, seconds)
            count = packet_count(data)
            write_atomically(path, data)
        except (LabError, OSError) as exc:
            fail(exc)
        capped = f" (stopped at the {PACKET_CAP}-packet cap)" if count >= PACKET_CAP else ""
        out.print(f"{count} packets captured{capped}, up to {SNAPLEN} bytes each: {escape(str(path))}",
                  highlight=False, soft_wrap=True)
