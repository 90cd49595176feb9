"""The CLI's subscribers of the event stream: the log line of each event, and the failover live view."""
from __future__ import annotations

import logging

from rich.console import Console

from lab.model.daemon_events import Event
from lab.model.events import ControlEvent, EventStream, LabUp, Note, ProbeTick, Stage, StageChanged
from lab.ui.failover_view import LiveFailoverView
from lab.ui.progress import log_event, setup_logging


def _text(renderable) -> str:
    console = Console(width=100, record=True)
    console.print(renderable)
    return console.export_text()


def test_the_live_view_draws_what_the_stream_said():
    view = LiveFailoverView()
    events = EventStream()
    events.subscribe(view)
    events.stage("mine", Stage.MEASURING_FAILOVER, run=2, runs=3)
    events.publish(ProbeTick("mine", run=2, direction="onprem-host->azure-vm", delivered=120, lost=7,
                             flowing_for_s=None, since_event_s=0.8))
    events.publish(ProbeTick("mine", run=2, direction="azure-vm->onprem-host", delivered=125, lost=2,
                             flowing_for_s=0.3, since_event_s=0.8))
    events.publish(ControlEvent("mine", event=Event(1, "vrrp", "azure-gw-1", "vrrp-master")))
    text = _text(view)
    assert "run 2/3: measuring the failover" in text and "0.8 s since the fault" in text
    assert "interrupted" in text and "flowing for 0.3 s" in text
    assert "azure-gw-1: vrrp-master" in text
    # A new run starts clean.
    events.stage("mine", Stage.BASELINE, run=3, runs=3)
    assert "onprem-host->azure-vm" not in _text(view)


def test_every_event_but_probe_ticks_is_logged_to_the_file_only(tmp_path, capsys):
    path = setup_logging(tmp_path / "logs", verbose=False, console=Console(stderr=True))
    assert not path.exists()   # made on the first line, not before
    for event in (StageChanged("mine", Stage.CREATING_NODES, "azure-gw-0: creating"),
                  Note("mine", "guard re-applied", logging.WARNING),
                  ProbeTick("mine", 1, "a->b", 1, 0, 0.1, None),
                  LabUp("mine", status=None, took_s=12.3)):
        log_event(event)
    for handler in logging.getLogger("lab").handlers:
        handler.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert "creating nodes (azure-gw-0: creating)" in lines[0] and "WARNING" in lines[1]
    assert "converged in 12.3 s" in lines[2]
    assert (path.stat().st_mode & 0o777) == 0o600
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""
