"""What is seen outside a lab, captured beyond the guard: the tests' proof that nothing leaves.

The guard's own "forwarded out of the lab" counter sits behind its drop
rule, so it can only read 0 while that rule exists. This capture doesn't
depend on the guard (or on nftables at all): tcpdump, in the engine host's
network namespace, on every interface that is no lab's (not a lab bridge
or one of its ports), for any packet to or from the lab's addresses: the
uplink, docker0, other Docker networks. Other labs' bridges are left out,
because a lab of the same scenario uses the same addresses; a packet from
this lab into another would cross the guard's counted "into the lab" drop.
Before it is trusted, every tcpdump must say it listens, and the capture
must see a canary: an ARP who-has for an address of the transport pool,
sent into a veth pair of its own in the host's namespace (nothing is sent
on a real interface).
"""
from __future__ import annotations

import json
import re
import shlex
import time
from ipaddress import IPv4Network

from lab.render.deploy_plan import IMAGE
from lab.plan.segments import transport_pool
from lab.model.schema import LabPlan


def lab_prefixes(plan: LabPlan) -> list[IPv4Network]:
    """Every address a lab packet can carry: scenario networks, sites, tunnel pool, transport subnets."""
    found = [n.subnet for n in plan.scenario.networks.values()] + [plan.scenario.tunnel_pool]
    found += plan.routed_prefixes() + [transport_pool()]
    return sorted(set(IPv4Network(p) for p in found))


# Every lab's bridges (segments.bridge_prefix): inside one lab or another, not "outside".
LAB_BRIDGE = re.compile(r"az[0-9a-f]{7}-[0-9]+")
# The pool's last host address: no lab segment takes it before the pool is full.
CANARY = str(transport_pool().broadcast_address - 1)
CANARY_LINK = "labcanary"


def _outside(port: dict) -> bool:
    """An interface a packet could leave the lab by: up (a down one carries nothing, and tcpdump can't
    open it), not a lab bridge, and not a container's veth unless it is a port of another bridge
    (docker0's, say). A veth on no bridge leads only into the host's own stack, whose way out (the
    uplink, the other bridges) is watched; and a lab node's veth is on no bridge for a moment while
    Docker attaches it, so watching it would count that lab's own traffic later."""
    name, master = port["ifname"], port.get("master", "")
    if name == "lo" or "UP" not in port.get("flags", []) or LAB_BRIDGE.fullmatch(name) or LAB_BRIDGE.fullmatch(master):
        return False
    is_veth = (port.get("linkinfo") or {}).get("info_kind") == "veth"
    return not is_veth or bool(master) or name.startswith(CANARY_LINK)


class OutsideCapture:
    """tcpdump on every interface beyond the lab's, started before the lab and read at any time."""

    def __init__(self, adapters, plan: LabPlan):
        self.client = adapters.runtime.client
        self.plan = plan
        self.container = None
        self.interfaces: list[str] = []

    def start(self) -> "OutsideCapture":
        run_on_host(self.client, ["sh", "-c", f"ip link del {CANARY_LINK} 2>/dev/null; "
                                              f"ip link add {CANARY_LINK} type veth peer name {CANARY_LINK}p && "
                                              f"ip link set {CANARY_LINK} up && ip link set {CANARY_LINK}p up"])
        ports = json.loads(run_on_host(self.client, ["ip", "-j", "-d", "link", "show"]))
        self.interfaces = sorted(p["ifname"] for p in ports if _outside(p))
        bpf = " or ".join(f"net {net}" for net in lab_prefixes(self.plan))
        script = " ".join(f"tcpdump -n -l -i {shlex.quote(i)} {shlex.quote(bpf)} 2>>/tmp/listening "
                           f"| sed -u 's/^/{i} /' >> /tmp/seen &" for i in self.interfaces)
        self.container = self.client.containers.run(
            IMAGE, ["sh", "-c", f": > /tmp/seen; {script} wait"], entrypoint=[], network_mode="host",
            cap_drop=["ALL"], cap_add=["NET_RAW", "NET_ADMIN", "SETUID", "SETGID"], detach=True,
            labels={"lab.helper": "capture"})
        try:
            deadline = time.monotonic() + 20
            while self._read("/tmp/listening").count("listening on") < len(self.interfaces):
                assert time.monotonic() < deadline, f"tcpdump did not start on {self.interfaces}"
                time.sleep(0.2)
            self._canary()
        except BaseException:
            self.stop()
            raise
        return self

    def _canary(self) -> None:
        """One ARP request into the capture's own veth pair, for an address of the pool: it must be seen."""
        code, output = self.container.exec_run(["arping", "-c", "1", "-w", "1", "-I", f"{CANARY_LINK}p", CANARY])
        deadline = time.monotonic() + 10
        while not any(CANARY in line for line in self._lines()):
            assert time.monotonic() < deadline, f"the capture missed its canary ({output.decode()[-200:]})"
            time.sleep(0.2)

    def _read(self, path: str) -> str:
        code, output = self.container.exec_run(["cat", path])
        return output.decode(errors="replace") if code == 0 else ""

    def _lines(self) -> list[str]:
        return [line for line in self._read("/tmp/seen").splitlines() if line.strip()]

    def seen(self) -> list[str]:
        """Every lab packet seen outside so far but the canary, as 'interface tcpdump-line'."""
        assert self.container is not None and self._read("/tmp/listening"), "the capture is not running"
        return [line for line in self._lines() if CANARY not in line]

    def stop(self) -> None:
        if self.container is not None:
            self.container.remove(force=True)
            self.container = None
        run_on_host(self.client, ["sh", "-c", f"ip link del {CANARY_LINK} 2>/dev/null || true"])


def run_on_host(client, argv: list[str], stdin_text: str = "") -> str:
    """argv in the engine host's network namespace (a throwaway container of the lab's image)."""
    command = ["sh", "-c", 'printf "%s" "$LAB_STDIN" | "$@"', "host", *argv] if stdin_text else argv
    output = client.containers.run(IMAGE, command, entrypoint=[], network_mode="host", cap_drop=["ALL"],
                                   cap_add=["NET_ADMIN"], environment={"LAB_STDIN": stdin_text}, remove=True,
                                   labels={"lab.helper": "test"})
    return output.decode()
