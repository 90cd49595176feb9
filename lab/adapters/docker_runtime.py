"""The Docker engine, through the Docker SDK."""
from __future__ import annotations

import io
import os
import signal
import tarfile
import threading
from pathlib import Path
from datetime import datetime, timezone
from ipaddress import IPv4Network
from typing import Iterator

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import EndpointConfig, IPAMConfig, IPAMPool

from ..errors import DeployError, EngineError, LabError
from ..ports import ContainerInfo, ContainerSpec, NetworkSpec

# Container events a failover timeline cares about (not the healthchecks' execs).
LIFECYCLE_EVENTS = ("kill", "die", "stop", "start", "restart", "pause", "unpause", "oom")


class DockerRuntime:
    def __init__(self, client: docker.DockerClient | None = None):
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=30)
            except DockerException as exc:
                raise EngineError(f"no Docker engine answers ({exc.__class__.__name__}): run `make engine` or start dockerd") from None
        return self._client

    def ping(self) -> None:
        try:
            self.client.ping()
        except (DockerException, OSError) as exc:
            raise EngineError(f"no Docker engine answers ({exc.__class__.__name__}): run `make engine` or start dockerd") from None

    def image_id(self, image: str) -> str | None:
        try:
            return self.client.images.get(image).id
        except ImageNotFound:
            return None

    def build_image(self, context: str, tag: str, progress) -> None:
        """docker build through the SDK; streams each step to `progress`."""
        try:
            for chunk in self.client.api.build(path=context, tag=tag, rm=True, decode=True):
                if "error" in chunk:
                    raise LabError(f"image {tag}: {chunk['error'].strip()}")
                line = (chunk.get("stream") or "").strip()
                if line.startswith("Step "):
                    progress(line)
        except APIError as exc:
            raise LabError(f"image {tag}: {exc.explanation}") from None

    def network_subnets(self) -> dict[str, list[IPv4Network]]:
        found: dict[str, list[IPv4Network]] = {}
        for net in self.client.networks.list():
            configs = (net.attrs.get("IPAM") or {}).get("Config") or []
            subnets = [IPv4Network(c["Subnet"]) for c in configs if "." in c.get("Subnet", "")]
            found[net.name] = subnets
        return found

    def create_network(self, spec: NetworkSpec) -> None:
        try:
            existing = self.client.networks.get(spec.name)
        except NotFound:
            existing = None
        if existing is not None:
            configs = (existing.attrs.get("IPAM") or {}).get("Config") or []
            options = existing.attrs.get("Options") or {}
            if [c.get("Subnet") for c in configs] != [str(spec.subnet)] or any(
                    options.get(k) != v for k, v in spec.options.items()):
                # Made by another version or by hand: its bridge may not be the guard's.
                raise LabError(f"network {spec.name} exists with other settings: `lab down` the lab first")
            return
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(spec.subnet), gateway=spec.bridge_address)])
        try:
            self.client.networks.create(
                spec.name,
                driver="bridge",
                ipam=ipam,
                labels=spec.labels,
                internal=False,
                options=spec.options,
            )
        except APIError as exc:
            raise LabError(f"network {spec.name}: {exc.explanation}") from None

    def create_container(self, spec: ContainerSpec) -> None:
        networks = list(spec.addresses.items())
        first_net, first_ip = networks[0]
        try:
            container = self.client.containers.create(
                spec.image,
                name=spec.name,
                hostname=spec.hostname,
                labels=spec.labels,
                cap_add=list(spec.capabilities),
                devices=["/dev/net/tun:/dev/net/tun:rwm"] if spec.needs_tun else [],
                sysctls=spec.sysctls,
                network=first_net,
                networking_config={first_net: EndpointConfig(version="1.41", ipv4_address=first_ip)},
                init=True,
                detach=True,
            )
            container.put_archive("/", _config_archive(spec.files))
            for net_name, address in networks[1:]:
                self.client.networks.get(net_name).connect(container, ipv4_address=address)
        except APIError as exc:
            raise DeployError(spec.hostname, exc.explanation or str(exc)) from None

    def start(self, name: str) -> None:
        try:
            self.client.containers.get(name).start()
        except APIError as exc:
            raise DeployError(name, exc.explanation or str(exc)) from None

    def containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        filters = {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}
        found = []
        for c in self.client.containers.list(all=True, filters=filters):
            state = c.attrs.get("State", {})
            found.append(
                ContainerInfo(
                    name=c.name,
                    node=c.labels.get("lab.node", c.name),
                    kind=c.labels.get("lab.kind", ""),
                    status=state.get("Status", c.status),
                    health=(state.get("Health") or {}).get("Status"),
                    pid=int(state.get("Pid") or 0),
                    config_hash=c.labels.get("lab.config-hash", ""),
                    labels=dict(c.labels),
                )
            )
        return sorted(found, key=lambda c: c.name)

    def _lab_objects(self, labels: dict[str, str]) -> list[tuple[object, dict]]:
        """(object, remove() arguments) of everything carrying the labels, containers first."""
        filters = {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}
        return ([(c, {"force": True, "v": True}) for c in self.client.containers.list(all=True, filters=filters)]
                + [(n, {}) for n in self.client.networks.list(filters=filters)]
                # Compose's key volume; `lab up` itself makes none.
                + [(v, {"force": True}) for v in self.client.volumes.list(filters=filters)])

    def lab_objects(self, labels: dict[str, str]) -> list[str]:
        """Names of every container, network and volume carrying the labels."""
        return [o.name for o, _ in self._lab_objects(labels)]

    def remove_lab(self, labels: dict[str, str]) -> list[str]:
        """Removes what carries the labels, containers first; returns what it removed.

        An object the engine won't remove yet (a network whose container is
        still going) is skipped: callers repeat until `lab_objects` is empty.
        """
        removed = []
        for obj, how in self._lab_objects(labels):
            try:
                obj.remove(**how)
                removed.append(obj.name)
            except (NotFound, APIError):
                pass
        return removed

    def exec(self, name: str, argv: list[str], timeout_s: float = 10.0) -> tuple[int, str]:
        """exec_run has no timeout of its own: the command runs under coreutils' timeout."""
        try:
            container = self.client.containers.get(name)
            result = container.exec_run(["timeout", "--kill-after=2", str(timeout_s), *argv], demux=False)
        except NotFound:
            raise LabError(f"node container {name} does not exist") from None
        except APIError as exc:
            raise LabError(f"{name}: {exc.explanation}") from None
        return result.exit_code, (result.output or b"").decode(errors="replace")

    def logs(self, name: str, tail: int | None = None, since_ns: int | None = None,
             until_ns: int | None = None, timestamps: bool = False) -> str:
        """A container's output; with since/until (wall-clock ns) only that window."""
        window = {}
        if since_ns is not None:
            window["since"] = _utc(since_ns)
        if until_ns is not None:
            window["until"] = _utc(until_ns)
        try:
            raw = self._get(name).logs(tail=tail or "all", timestamps=timestamps, **window)
        except APIError as exc:
            raise LabError(f"{name}: {exc.explanation}") from None
        return raw.decode(errors="replace")

    def _get(self, name: str):
        try:
            return self.client.containers.get(name)
        except NotFound:
            raise LabError(f"node container {name} does not exist") from None

    def _act(self, name: str, action: str, call) -> None:
        try:
            call(self._get(name))
        except APIError as exc:
            raise LabError(f"{name}: can't {action} ({exc.explanation})") from None

    def kill(self, name: str, signal_name: str = "SIGKILL") -> None:
        self._act(name, "kill", lambda c: c.kill(signal=signal_name))

    def restart(self, name: str) -> None:
        self._act(name, "restart", lambda c: c.restart(timeout=10))

    def pause(self, name: str) -> None:
        self._act(name, "pause", lambda c: c.pause())

    def unpause(self, name: str) -> None:
        self._act(name, "unpause", lambda c: c.unpause())

    def read_file(self, name: str, path: str) -> str:
        """A file from a container's filesystem; works on stopped containers too."""
        try:
            stream, _ = self._get(name).get_archive(path)
        except NotFound:
            return ""
        except APIError as exc:
            raise LabError(f"{name}: can't read {path} ({exc.explanation})") from None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            handle = archive.extractfile(member) if member else None
            return handle.read().decode(errors="replace") if handle else ""

    def events(self, labels: dict[str, str], since_ns: int, until_ns: int) -> list[dict]:
        """The engine's container events of a past window (wall-clock ns)."""
        filters = {"type": "container", "event": list(LIFECYCLE_EVENTS),
                   "label": [f"{k}={v}" if v else k for k, v in labels.items()]}
        try:
            stream = self.client.events(since=_utc(since_ns), until=_utc(until_ns), filters=filters, decode=True)
            return list(stream)
        except APIError as exc:
            raise LabError(f"engine events: {exc.explanation}") from None

    def stream_exec(self, name: str, argv: list[str]) -> "ExecStream":
        """Starts argv in the container and returns its output lines as they come."""
        api = self.client.api
        try:
            exec_id = api.exec_create(self._get(name).id, argv, stdout=True, stderr=True)["Id"]
            chunks = api.exec_start(exec_id, stream=True, demux=False)
        except APIError as exc:
            raise LabError(f"{name}: can't start {argv[0]} ({exc.explanation})") from None
        return ExecStream(api, exec_id, chunks)


def _config_archive(files) -> bytes:
    """/lab as a tar: 0755 folders, except secrets/ (0700); each file with its own mode."""
    buffer = io.BytesIO()
    folders = {str(p) for f in files for p in Path("lab", f.path).parents if str(p) != "."}
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in sorted(folders):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o700 if Path(folder).name == "secrets" else 0o755
            archive.addfile(info)
        for f in files:
            data = f.text.encode()
            info = tarfile.TarInfo(f"lab/{f.path}")
            info.size, info.mode = len(data), f.mode
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _utc(epoch_ns: int) -> datetime:
    return datetime.fromtimestamp(epoch_ns / 1e9, tz=timezone.utc)


class ExecStream:
    """Lines from a running exec; `stop` sends it SIGTERM (as root on the engine's host)."""

    def __init__(self, api, exec_id: str, chunks: Iterator[bytes]):
        self._api = api
        self._exec_id = exec_id
        self._chunks = chunks
        self._lock = threading.Lock()

    def lines(self) -> Iterator[str]:
        pending = b""
        for chunk in self._chunks:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode(errors="replace")
        if pending:
            yield pending.decode(errors="replace")

    def stop(self) -> None:
        with self._lock:
            try:
                pid = int(self._api.exec_inspect(self._exec_id).get("Pid") or 0)
            except APIError:
                return
            if pid > 0:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
