"""What is seen outside a lab, captured beyond the guard: the tests' proof that nothing leaves.

The guard's own "forwarded out of the lab" counter sits behind its drop
rule, so it can only read 0 while that rule exists. This capture doesn't
depend on the guard (or on nftables at all): tcpdump, in the engine host's
network namespace, on every interface that is not one of the lab's own
(any lab's bridges and their ports), for any packet to or from the lab's
addresses. The uplink is among them, and so are docker0 and other labs.
"""
from __future__ import annotations

import json
import re
import shlex
import time
from ipaddress import IPv4Network

from lab.deploy import IMAGE
from lab.segments import transport_pool
from lab.model import LabPlan


def lab_prefixes(plan: LabPlan) -> list[IPv4Network]:
    """Every address a lab packet can carry: scenario networks, sites, tunnel pool, transport subnets."""
    found = [n.subnet for n in plan.scenario.networks.values()] + [plan.scenario.tunnel_pool]
    found += plan.routed_prefixes() + [transport_pool()]
    return sorted(set(IPv4Network(p) for p in found))


# Every lab's bridges (segments.bridge_prefix): inside one lab or another, not "outside".
LAB_BRIDGE = re.compile(r"az[0-9a-f]{7}-[0-9]+")


class OutsideCapture:
    """tcpdump on every interface beyond the lab's, started before the lab and read at any time."""

    def __init__(self, adapters, plan: LabPlan):
        self.client = adapters.runtime.client
        self.plan = plan
        self.container = None
        self.interfaces: list[str] = []

    def start(self) -> "OutsideCapture":
        ports = json.loads(run_on_host(self.client, ["ip", "-j", "link", "show"]))
        self.interfaces = sorted(p["ifname"] for p in ports if p["ifname"] != "lo"
                                 and not LAB_BRIDGE.fullmatch(p["ifname"]) and not LAB_BRIDGE.fullmatch(p.get("master", "")))
        bpf = " or ".join(f"net {net}" for net in lab_prefixes(self.plan))
        script = "; ".join(f"tcpdump -n -l -i {shlex.quote(i)} {shlex.quote(bpf)} 2>/dev/null "
                           f"| sed -u 's/^/{i} /' >> /tmp/seen &" for i in self.interfaces)
        self.container = self.client.containers.run(
            IMAGE, ["sh", "-c", f": > /tmp/seen; {script} wait"], entrypoint=[], network_mode="host",
            cap_drop=["ALL"], cap_add=["NET_RAW", "NET_ADMIN"], detach=True, labels={"lab.helper": "capture"})
        time.sleep(1.0)   # tcpdump needs a moment to open its sockets
        return self

    def seen(self) -> list[str]:
        """Every lab packet seen outside so far, as 'interface tcpdump-line'."""
        code, output = self.container.exec_run(["cat", "/tmp/seen"])
        assert code == 0, output
        return [line for line in output.decode(errors="replace").splitlines() if line.strip()]

    def stop(self) -> None:
        if self.container is not None:
            self.container.remove(force=True)
            self.container = None


def run_on_host(client, argv: list[str], stdin_text: str = "") -> str:
    """argv in the engine host's network namespace (a throwaway container of the lab's image)."""
    command = ["sh", "-c", 'printf "%s" "$LAB_STDIN" | "$@"', "host", *argv] if stdin_text else argv
    output = client.containers.run(IMAGE, command, entrypoint=[], network_mode="host", cap_drop=["ALL"],
                                   cap_add=["NET_ADMIN"], environment={"LAB_STDIN": stdin_text}, remove=True,
                                   labels={"lab.helper": "test"})
    return output.decode()
