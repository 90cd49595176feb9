"""The engine host's network namespace, reached only through the Docker API.

A short-lived container of the lab's image runs in the host's network
namespace with NET_ADMIN and nothing else: it reads the host's routes and
installs or removes a lab's nftables guard. That works the same on a local
engine, a remote one (DOCKER_HOST) and Docker Desktop's VM, and needs no
root on this machine.
"""
from __future__ import annotations

import json
from ipaddress import IPv4Network

from docker.errors import APIError, ImageNotFound
from requests.exceptions import ConnectionError, ReadTimeout

from lab.model.errors import LabError
from lab.adapters.docker_runtime import DockerRuntime

GUARD_PREFIX = "azlab-"
HELPER_WITHIN_S = 30


class DockerHost:
    def __init__(self, runtime: DockerRuntime, image: str):
        self._runtime = runtime
        self._image = image

    def _run(self, argv: list[str], stdin_text: str = "") -> str:
        """Runs argv in the host's network namespace; the helper container is removed whatever happens."""
        env = {"LAB_STDIN": stdin_text} if stdin_text else {}
        command = ["sh", "-c", 'printf "%s" "$LAB_STDIN" | "$@"', "lab-host", *argv] if stdin_text else argv
        client = self._runtime.client
        try:
            helper = client.containers.create(
                self._image, command, entrypoint=[], network_mode="host", cap_add=["NET_ADMIN"],
                cap_drop=["ALL"], environment=env, labels={"lab.helper": "host"},
            )
        except ImageNotFound:
            raise LabError(f"engine host: {self._image} is not built: run `make images`") from None
        except APIError as exc:
            raise LabError(f"engine host: {exc.explanation}") from None
        try:
            helper.start()
            code = helper.wait(timeout=HELPER_WITHIN_S).get("StatusCode", 1)
            output = helper.logs(stdout=True, stderr=False).decode(errors="replace")
            if code != 0:
                detail = helper.logs(stdout=False, stderr=True).decode(errors="replace").strip().splitlines()
                raise LabError(f"engine host: {argv[0]} failed: {detail[-1] if detail else f'exit {code}'}")
            return output
        except (APIError, ReadTimeout, ConnectionError) as exc:
            raise LabError(f"engine host: {argv[0]} did not finish ({exc.__class__.__name__})") from None
        finally:
            try:
                helper.remove(force=True)
            except APIError:
                pass

    def routes(self) -> list[tuple[IPv4Network, str]]:
        """The engine host's IPv4 routes of its main table, as (prefix, interface); no default."""
        found = []
        for route in json.loads(self._run(["ip", "-j", "-4", "route", "show", "table", "main"]) or "[]"):
            dst = route.get("dst", "default")
            if dst == "default":
                continue
            found.append((IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False), route.get("dev", "?")))
        return found

    def apply_guard(self, table: str, script: str) -> None:
        self._run(["nft", "-f", "-"], stdin_text=script)

    def remove_guard(self, table: str) -> None:
        # Declaring the table first makes the delete succeed whether or not it exists.
        self._run(["nft", "-f", "-"], stdin_text=f"table inet {table}\ndelete table inet {table}\n")

    def guards(self) -> list[str]:
        listing = json.loads(self._run(["nft", "-j", "list", "tables", "inet"]) or "{}")
        return [item["table"]["name"] for item in listing.get("nftables", [])
                if "table" in item and item["table"]["name"].startswith(GUARD_PREFIX)]

    def counters(self, table: str) -> dict[str, int]:
        """Packets counted by each commented rule of a table."""
        listing = json.loads(self._run(["nft", "-j", "list", "table", "inet", table]) or "{}")
        found: dict[str, int] = {}
        for item in listing.get("nftables", []):
            rule = item.get("rule")
            if not rule:
                continue
            for expr in rule.get("expr", []):
                if "counter" in expr:
                    name = rule.get("comment", f"{rule['chain']}#{rule['handle']}")
                    found[name] = found.get(name, 0) + int(expr["counter"]["packets"])
        return found

    def detach_stale_ports(self, bridge_prefix: str, live: set[int], keep: set[str]) -> list[str]:
        """Deletes the veths on the lab's bridges whose far end is no live container's link
        (`live`: those links' indexes); bridges in `keep` are left alone. Returns what went."""
        ports = json.loads(self._run(["ip", "-j", "link", "show", "type", "veth"]) or "[]")
        stale = [p["ifname"] for p in ports
                 if str(p.get("master", "")).startswith(f"{bridge_prefix}-") and p.get("master") not in keep
                 and p.get("link_index") not in live]
        if stale:
            self._run(["sh", "-c", 'for port; do ip link del "$port" 2>/dev/null || true; done', "lab-host", *stale])
        return stale
