"""One real failover run, recorded: `lab failover --fault kill --profile fast`, run 2 of 4."""
import json
from pathlib import Path

from lab.model.daemon_events import Event
from lab.failover.metrics import Handover
from lab.model.probes import DirectionProbes

DATA = json.loads((Path(__file__).parent / "data" / "recorded-kill-fast.json").read_text())
# Who takes over from the target in that run's scenario (active-standby).
HANDOVER = Handover(target=DATA["target"], standbys=("azure-gw-1",), devices=("onprem-0",),
                    public_ip="198.51.100.100", gateway_bgp_ip="10.1.255.30", device_bgp_ips=("10.10.255.1",))


def recorded_probes() -> list[DirectionProbes]:
    return [DirectionProbes(p["name"], [tuple(s) for s in p["sent"]], [tuple(r) for r in p["received"]])
            for p in DATA["probes"]]


def recorded_events() -> list[Event]:
    return [Event(**e) for e in DATA["events"]]
