"""The Docker engine, through the Docker SDK."""
from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import threading
import time
import uuid
from pathlib import Path
from datetime import datetime, timezone
from ipaddress import IPv4Network
from typing import Iterator

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from requests.exceptions import RequestException
from docker.types import EndpointConfig, IPAMConfig, IPAMPool
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from lab.model.errors import DeployError, EngineError, LabError
from lab.model.specs import ContainerSpec, NetworkSpec
from lab.run.ports import HELPER_LABEL, ContainerInfo

# Container events a failover timeline cares about (not the healthchecks' execs).
LIFECYCLE_EVENTS = ("kill", "die", "stop", "start", "restart", "pause", "unpause", "oom")
DEFAULT_ENGINE = "unix:///var/run/docker.sock"
# The environment variable that names a streamed exec, so `ExecStream.stop` finds it in the node.
STREAM_TOKEN = "LAB_STREAM"
STOP_WITHIN_S = 5.0
STOP_EVERY_S = 0.5
CLOCK_ANSWER_WITHIN_S = 5.0
# The niceness of every exec but the probes' and the clock's (see _exec_run).
EXEC_NICENESS = 19
CLOCK_SESSION_WITHIN_S = 30
SSH_SOCKET = "$XDG_RUNTIME_DIR/azlab-docker.sock"
SSH_FORWARD = f"ssh -NL {SSH_SOCKET}:/var/run/docker.sock"
# Docker's way to turn an image's HEALTHCHECK off.
NO_HEALTHCHECK = {"test": ["NONE"]}
# Long-lived streams (probes, event watches) and a status read of every node at once share the pool.
CONNECTIONS = 32


class DockerRuntime:
    def __init__(self, client: docker.DockerClient | None = None):
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = engine_client()
            except DockerException as exc:
                raise engine_error(exc) from None
        return self._client

    def ping(self) -> None:
        try:
            self.client.ping()
        except (DockerException, OSError) as exc:
            raise engine_error(exc) from None

    def engine_summary(self) -> str:
        """The machine the lab runs on: the engine's, which need not be this one."""
        try:
            info = self.client.info()
        except (DockerException, OSError) as exc:
            raise engine_error(exc) from None
        return (f"{info.get('NCPU', '?')} CPU, {info.get('MemTotal', 0) / 2**30:.1f} GiB, "
                f"{info.get('OperatingSystem', '?')}, kernel {info.get('KernelVersion', '?')}, "
                f"Docker {info.get('ServerVersion', '?')} at {engine_address()}")

    def image_id(self, image: str) -> str | None:
        try:
            return self.client.images.get(image).id
        except ImageNotFound:
            return None

    def image_labels(self, image: str) -> dict[str, str]:
        try:
            return self.client.images.get(image).labels or {}
        except ImageNotFound:
            return {}

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
                # Only what the kind needs (lab/model/kinds.py), and no way to gain more (setuid, file caps).
                cap_drop=["ALL"],
                cap_add=list(spec.capabilities),
                security_opt=["no-new-privileges"],
                group_add=list(spec.groups),
                mem_limit=spec.memory_bytes or None,
                memswap_limit=spec.memory_bytes or None,
                pids_limit=spec.pids or None,
                dns=list(spec.dns) or None,
                dns_opt=["timeout:1", "attempts:1"] if spec.dns else None,
                devices=["/dev/net/tun:/dev/net/tun:rwm"] if spec.needs_tun else [],
                sysctls=spec.sysctls,
                network=first_net,
                networking_config={first_net: EndpointConfig(version="1.41", ipv4_address=first_ip)},
                init=True,
                # None of the image's periodic healthcheck: an exec into every node every 2 s kept an idle
                # lab at a fifth of a core (issue 18). `lab` runs the check itself while it waits for a node.
                healthcheck=NO_HEALTHCHECK,
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
            if HELPER_LABEL in c.labels:
                continue
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

    def _exec_run(self, name: str, argv: list[str], timeout_s: float, demux: bool):
        """exec_run has no timeout of its own: the command runs under coreutils' timeout.

        At the lowest CPU priority: `lab`'s own reads (status, SAs, routes) once delayed probes past
        the Forwarding Delay Threshold on a 2-core machine (userspace ESP starved of CPU), so the
        lab measured itself. The daemons, the probes and their streams keep their priority.
        """
        try:
            container = self.client.containers.get(name)
            return container.exec_run(["nice", "-n", str(EXEC_NICENESS), "timeout", "--kill-after=2", str(timeout_s),
                                       *argv], demux=demux)
        except NotFound:
            raise LabError(f"node container {name} does not exist") from None
        except APIError as exc:
            raise LabError(f"{name}: {exc.explanation}") from None
        except RequestException as exc:  # the engine's connection itself: timed out or dropped
            raise LabError(f"{name}: the engine did not answer {argv[0]} ({exc.__class__.__name__})") from None

    def exec(self, name: str, argv: list[str], timeout_s: float = 10.0) -> tuple[int, str]:
        result = self._exec_run(name, argv, timeout_s, demux=False)
        return result.exit_code, (result.output or b"").decode(errors="replace")

    def exec_split(self, name: str, argv: list[str], timeout_s: float = 10.0) -> tuple[int, str, str]:
        """(exit code, stdout, stderr): for commands whose stdout is data."""
        result = self._exec_run(name, argv, timeout_s, demux=True)
        stdout, stderr = result.output or (None, None)
        return result.exit_code, (stdout or b"").decode(errors="replace"), (stderr or b"").decode(errors="replace")

    def exec_bytes(self, name: str, argv: list[str], timeout_s: float = 10.0) -> tuple[int, bytes, str]:
        """(exit code, stdout as bytes, stderr): for commands whose stdout is binary (a pcap)."""
        result = self._exec_run(name, argv, timeout_s, demux=True)
        stdout, stderr = result.output or (None, None)
        return result.exit_code, stdout or b"", (stderr or b"").decode(errors="replace")

    def clock_samples(self, name: str, count: int) -> list[tuple[int, int, int, int]]:
        """Round trips to lab-agent's clock over one exec session's stdin and stdout.

        Each sample is (this machine's monotonic ns when asked, the node's
        monotonic ns, the node's wall-clock ns, this machine's monotonic ns
        when answered). One session for all: no process start inside a round trip.
        """
        api = self.client.api
        try:
            # Bounded in the node too: a transport that loses our end of stdin can't leave it running.
            exec_id = api.exec_create(self._get(name).id, ["timeout", str(CLOCK_SESSION_WITHIN_S), "lab-agent", "clock"],
                                      stdin=True, stdout=True, stderr=False, tty=False)["Id"]
            attached = api.exec_start(exec_id, socket=True)
        except (APIError, RequestException) as exc:
            raise LabError(f"{name}: can't start lab-agent clock ({exc})") from None
        sock = getattr(attached, "_sock", attached)
        sock.settimeout(CLOCK_ANSWER_WITHIN_S)
        samples, pending = [], b""
        try:
            for _ in range(count):
                asked = time.monotonic_ns()
                sock.sendall(b"\n")
                while b"\n" not in pending:
                    pending += _frame(sock)
                answered = time.monotonic_ns()
                line, pending = pending.split(b"\n", 1)
                reading = json.loads(line)
                samples.append((asked, int(reading["monotonic"]), int(reading["realtime"]), answered))
        except (OSError, ValueError, KeyError) as exc:
            raise LabError(f"{name}: lab-agent clock did not answer ({exc})") from None
        finally:
            try:
                sock.shutdown(socket.SHUT_WR)  # end of stdin: the agent exits
            except OSError:
                pass
            sock.close()
        return samples

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
        """Starts argv in the container and returns its output lines as they come.

        The process carries a fresh token in its environment, so `stop` can
        find and signal it from inside the node, wherever the engine runs.
        """
        api = self.client.api
        token = uuid.uuid4().hex
        try:
            exec_id = api.exec_create(self._get(name).id, argv, stdout=True, stderr=True,
                                      environment={STREAM_TOKEN: token})["Id"]
            chunks = api.exec_start(exec_id, stream=True, demux=False)
        except APIError as exc:
            raise LabError(f"{name}: can't start {argv[0]} ({exc.explanation})") from None
        return ExecStream(self, name, token, exec_id, chunks)

    def exec_running(self, exec_id: str) -> bool:
        try:
            return bool(self.client.api.exec_inspect(exec_id).get("Running"))
        except (APIError, NotFound):
            return False


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
    """Lines from a running exec; `stop` sends it SIGTERM with a second exec in the container."""

    def __init__(self, runtime: DockerRuntime, name: str, token: str, exec_id: str, chunks: Iterator[bytes]):
        self._runtime = runtime
        self._name = name
        self._token = token
        self._exec_id = exec_id
        self._chunks = chunks
        self._lock = threading.Lock()
        self._stopped = False

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
        """SIGTERM to the process with this stream's token, repeated until the exec has ended (bounded).

        Repeated because the engine answers exec_start before the process
        runs: a stop that comes first finds nothing yet. A node that died
        took the process with it: nothing to do.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        signal_it = ["sh", "-c", 'for p in /proc/[0-9]*; do grep -qsxz "$0=$1" "$p/environ" && kill -TERM "${p#/proc/}"; '
                                 "done; true", STREAM_TOKEN, self._token]

        def ended() -> bool:
            try:
                self._runtime.exec(self._name, signal_it)
            except LabError:
                return True
            return not self._runtime.exec_running(self._exec_id)

        try:
            Retrying(stop=stop_after_delay(STOP_WITHIN_S), wait=wait_fixed(STOP_EVERY_S),
                     retry=retry_if_result(lambda done: not done))(ended)
        except RetryError:
            pass  # still running: its own --duration bound ends it


def _frame(sock) -> bytes:
    """One frame of an exec session's multiplexed output: 8-byte header (stream, size), then the data."""
    header = _exactly(sock, 8)
    return _exactly(sock, int.from_bytes(header[4:], "big"))


def _exactly(sock, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("the exec session ended")
        data += chunk
    return data


def engine_client() -> docker.DockerClient:
    """DOCKER_HOST with the TLS settings Docker's own variables give, else the current context's endpoint."""
    address = engine_address()
    if address.startswith("ssh://"):
        # Tried: docker-py 7.1.0's SSH transport broke when an exec session closed (BrokenPipeError,
        # running the system's ssh), or failed to open channels partway through `lab up` (paramiko).
        # A forwarded socket is plain TCP, the path the tests cover.
        # To a unix socket, not a TCP port: ssh makes it 0600 (StreamLocalBindMask), where a
        # port on 127.0.0.1 would open a root-equivalent engine to every local user.
        raise EngineError(f"{address}: ssh:// engines are not supported; forward the engine's socket to one "
                          f"only you can open instead ({SSH_FORWARD} USER@HOST) and set "
                          f"DOCKER_HOST=unix://{SSH_SOCKET}")
    if os.environ.get("DOCKER_HOST"):
        # from_env honours DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
        return docker.from_env(timeout=30, max_pool_size=CONNECTIONS)
    context = _current_context()
    tls = context.TLSConfig if context is not None else None
    return docker.DockerClient(base_url=address, timeout=30, max_pool_size=CONNECTIONS, tls=tls or False)


def _current_context():
    """The Docker CLI's current context (Docker Desktop sets one), or None."""
    try:
        from docker.context import ContextAPI

        return ContextAPI.get_current_context()
    except Exception:  # an unreadable ~/.docker is no reason not to try the default
        return None


def engine_address() -> str:
    """DOCKER_HOST, else the current context's endpoint, else the local socket."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    context = _current_context()
    return (context.Host if context is not None else None) or DEFAULT_ENGINE


def engine_error(exc: Exception) -> EngineError:
    where = engine_address()
    if "Permission denied" in str(exc) or isinstance(exc, PermissionError):
        return EngineError(f"permission denied on the Docker engine at {where}: add your user to the docker group "
                           "(`sudo usermod -aG docker $USER`, then log in again) or set DOCKER_HOST to an engine you may use")
    return EngineError(f"no Docker engine answers at {where} ({exc.__class__.__name__}): "
                       "start it (`make engine` installs and starts one on Debian) or set DOCKER_HOST")
