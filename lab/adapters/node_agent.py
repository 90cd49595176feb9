"""strongSwan (VICI), the node's netlink and its logs, through lab-agent in its container.

Everything goes through the engine's exec API, so `lab` needs no root and
no view of the engine host's /proc: the same code drives a local engine, a
non-root user's, Docker Desktop's VM or a remote one (DOCKER_HOST). The
agent answers in JSON; this module turns its answers into the ports' types.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Iterator

from lab.model.errors import LabError
from lab.run.ports import ChildSaState, ExecStream, IkeSaState

AGENT = "lab-agent"
CALL_WITHIN_S = 10.0
TIMED_OUT = 124  # coreutils' timeout, which every exec runs under


class NodeAgent:
    """One node's lab-agent: a command in, one JSON document out."""

    def __init__(self, node: str, container: str, runtime):
        self.node = node
        self.container = container
        self.runtime = runtime

    def call(self, *args: str, within_s: float = CALL_WITHIN_S) -> Any:
        code, stdout, stderr = self.runtime.exec_split(self.container, [AGENT, *args], timeout_s=within_s)
        if code == TIMED_OUT:
            raise LabError(f"{self.node}: {AGENT} {args[0]} did not answer within {within_s:g} s")
        if code != 0:
            reason = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}"
            raise LabError(f"{self.node}: {reason}")
        try:
            return json.loads(stdout)
        except json.JSONDecodeError:
            raise LabError(f"{self.node}: {AGENT} {args[0]} gave no JSON: {stdout.strip()[:200]}") from None

    def stream(self, *args: str) -> ExecStream:
        return self.runtime.stream_exec(self.container, [AGENT, *args])


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _texts(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def algorithms(sa: dict) -> str:
    """What an SA negotiated, in strongSwan's own notation (cipher-keysize/integrity/PRF/group)."""
    cipher = str(sa.get("encr-alg", ""))
    if cipher and sa.get("encr-keysize"):
        cipher += f"-{sa['encr-keysize']}"
    return "/".join(str(part) for part in (cipher, sa.get("integ-alg"), sa.get("prf-alg"), sa.get("dh-group")) if part)


def ike_sas(answers: list[dict]) -> list[IkeSaState]:
    """VICI list-sas answers (as lab-agent prints them) as typed SAs."""
    sas = []
    for answer in answers:
        for name, ike in answer.items():
            children = [
                ChildSaState(
                    name=str(child.get("name", key)),
                    state=str(child.get("state", "")),
                    packets_in=_int(child.get("packets-in", 0)),
                    packets_out=_int(child.get("packets-out", 0)),
                    bytes_in=_int(child.get("bytes-in", 0)),
                    bytes_out=_int(child.get("bytes-out", 0)),
                    local_ts=_texts(child.get("local-ts")),
                    remote_ts=_texts(child.get("remote-ts")),
                    algorithms=algorithms(child),
                )
                for key, child in (ike.get("child-sas") or {}).items()
            ]
            sas.append(IkeSaState(
                name=str(name),
                state=str(ike.get("state", "")),
                local_host=str(ike.get("local-host", "")),
                remote_host=str(ike.get("remote-host", "")),
                established_s=_int(ike["established"]) if "established" in ike else None,
                children=children,
                algorithms=algorithms(ike),
            ))
    return sas


class AgentIke:
    def __init__(self, agent: NodeAgent):
        self.agent = agent

    def list_sas(self) -> list[IkeSaState]:
        return ike_sas(self.agent.call("sas"))

    def terminate(self, ike: str, timeout_s: float) -> None:
        self.agent.call("terminate", ike, str(int(timeout_s * 1000)), within_s=timeout_s + 5)

    def watch(self, names: list[str], within_s: float) -> "AgentEventWatch":
        """Subscribes to charon's events for at most `within_s`; iterate it, close it to stop."""
        return AgentEventWatch(self.agent.node, self.agent.stream("watch", "--within", f"{within_s:.0f}", *names))


class AgentStream:
    """A streaming lab-agent command: a ready line once it listens, then one JSON document per line."""

    what = "stream"

    def __init__(self, node: str, stream: ExecStream):
        self.node = node
        self._stream = stream
        self._ready = threading.Event()
        self._listening = False
        self._said = ""

    def wait_ready(self, within_s: float) -> None:
        """Returns once the agent listens, so nothing is missed from then on."""
        if not self._ready.wait(within_s):
            raise LabError(f"{self.node}: {self.what} was not ready within {within_s:.0f} s")
        if not self._listening:
            raise LabError(f"{self.node}: {self.what} ended at once ({self._said or 'no output'})")

    def documents(self) -> Iterator[dict]:
        try:
            for line in self._stream.lines():
                try:
                    document = json.loads(line)
                except json.JSONDecodeError:
                    self._said = line.strip() or self._said  # the agent's error, or a torn last line
                    continue
                if "ready" in document:
                    self._listening = True
                    self._ready.set()
                else:
                    yield document
        finally:
            self._ready.set()  # a stream that ended can't become ready: don't keep anyone waiting

    def close(self) -> None:
        self._stream.stop()


class AgentEventWatch(AgentStream):
    """One VICI subscription in the node: (stamp, name, message) per event, stamped there."""

    what = "charon's event subscription"

    def __iter__(self) -> Iterator[tuple[int, str, dict]]:
        for document in self.documents():
            if "label" in document:
                yield int(document["t"]), str(document["label"]), document.get("message") or {}


class AgentLogTail(AgentStream):
    """Lines written to a node's files: (stamp, file, line), stamped in the node when read."""

    what = "the tail of its logs"

    def __iter__(self) -> Iterator[tuple[int, str, str]]:
        for document in self.documents():
            if "line" in document:
                yield int(document["t"]), str(document["path"]), str(document["line"])


class AgentLogs:
    def __init__(self, agent: NodeAgent):
        self.agent = agent

    def tail(self, paths: list[str], within_s: float) -> AgentLogTail:
        """Follows the files from their end for at most `within_s`; iterate it, close it to stop."""
        return AgentLogTail(self.agent.node, self.agent.stream("tail", "--within", f"{within_s:.0f}", *paths))


class AgentLink:
    """The node's links, routes and rules (pyroute2 in the node)."""

    def __init__(self, agent: NodeAgent):
        self.agent = agent
        self._links: dict | None = None

    def _snapshot(self) -> dict:
        # Kinds and addresses come from one call: status asks for both.
        if self._links is None:
            self._links = self.agent.call("links")
        return self._links

    def addresses(self) -> dict[str, list[str]]:
        return self._snapshot()["addresses"]

    def link_kinds(self) -> dict[str, str]:
        return self._snapshot()["kinds"]

    def link_indexes(self) -> dict[str, int]:
        return {name: int(index) for name, index in self._snapshot()["indexes"].items()}

    def set_link(self, name: str, up: bool) -> int:
        """Returns when it took effect, on the node's (the lab's) clock."""
        self._links = None
        return int(self.agent.call("set-link", name, "up" if up else "down")["t"])

    def block_udp_ports(self, ports: list[int], blocked: bool) -> int:
        """Returns when it took effect, on the node's (the lab's) clock."""
        return int(self.agent.call("block-udp", "on" if blocked else "off", *map(str, ports))["t"])

    def fence(self, on: bool) -> int:
        """Returns when it took effect, on the node's (the lab's) clock."""
        return int(self.agent.call("fence", "on" if on else "off")["t"])

    def cut(self, name: str, on: bool) -> int:
        """Drops all that the interface would pass, leaving it up. Returns when it took effect,
        on the node's (the lab's) clock."""
        return int(self.agent.call("cut", name, "on" if on else "off")["t"])

    def route_lookup(self, destination: str) -> str | None:
        """The interface a packet to `destination` would leave by, or None if unroutable."""
        return self.agent.call("route-get", destination)["interface"]

    def kernel_option(self, option: str) -> tuple[str | None, str]:
        """The engine kernel's build option (value or 'not set', None if unreadable) and where it was read."""
        answer = self.agent.call("kernel-config", option)
        return answer["value"], answer["source"]
