"""One real failover run, recorded: `lab failover --fault kill --profile fast`, run 2 of 4."""
import json
from pathlib import Path

from lab.events import Event
from lab.timeline import DirectionProbes

DATA = json.loads((Path(__file__).parent / "data" / "recorded-kill-fast.json").read_text())


def recorded_probes() -> list[DirectionProbes]:
    return [DirectionProbes(p["name"], [tuple(s) for s in p["sent"]], [tuple(r) for r in p["received"]])
            for p in DATA["probes"]]


def recorded_events() -> list[Event]:
    return [Event(**e) for e in DATA["events"]]
