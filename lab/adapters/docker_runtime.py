"""The Docker engine, through the Docker SDK."""
from __future__ import annotations

from ipaddress import IPv4Network

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import EndpointConfig, IPAMConfig, IPAMPool

from ..errors import DeployError, EngineError, LabError
from ..ports import ContainerInfo, ContainerSpec, NetworkSpec

LABEL_PREFIX = "lab."


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

    def image_exists(self, image: str) -> bool:
        try:
            self.client.images.get(image)
            return True
        except ImageNotFound:
            return False

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
            return
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(spec.subnet), gateway=spec.bridge_address)])
        try:
            self.client.networks.create(
                spec.name,
                driver="bridge",
                ipam=ipam,
                labels=spec.labels,
                # Not `internal`: Docker's internal-network rules drop every
                # routed packet. Instead no NAT, and nodes keep no default
                # route, so nothing can leave the machine.
                internal=False,
                options={
                    "com.docker.network.bridge.enable_ip_masquerade": "false",
                    "com.docker.network.bridge.enable_icc": "true",
                },
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
                volumes={spec.config_dir: {"bind": "/lab", "mode": "ro"}},
                network=first_net,
                networking_config={first_net: EndpointConfig(version="1.41", ipv4_address=first_ip)},
                init=True,
                detach=True,
            )
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

    def remove_lab(self, labels: dict[str, str]) -> list[str]:
        filters = {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}
        removed = []
        for c in self.client.containers.list(all=True, filters=filters):
            try:
                c.remove(force=True, v=True)
                removed.append(c.name)
            except NotFound:
                pass
        for net in self.client.networks.list(filters=filters):
            try:
                net.remove()
                removed.append(net.name)
            except NotFound:
                pass
        # Compose's key volume; `lab up` itself makes none.
        for volume in self.client.volumes.list(filters=filters):
            try:
                volume.remove(force=True)
                removed.append(volume.name)
            except NotFound:
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

    def logs(self, name: str, tail: int | None = None) -> str:
        try:
            return self.client.containers.get(name).logs(tail=tail or "all").decode(errors="replace")
        except NotFound:
            raise LabError(f"node container {name} does not exist") from None
