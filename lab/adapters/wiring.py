"""The one place where real adapters are built and handed to the core (as lab.run.ports.Adapters)."""
from __future__ import annotations

from lab.adapters.docker_host import DockerHost
from lab.adapters.docker_runtime import DockerRuntime
from lab.adapters.frr_route import FrrRoute
from lab.adapters.node_agent import AgentIke, AgentLink, AgentLogs, NodeAgent
from lab.render.deploy_plan import IMAGE
from lab.run.deploy import check_image
from lab.run.ports import Adapters


def real_adapters() -> Adapters:
    runtime = DockerRuntime()
    return Adapters(
        runtime=runtime,
        ike_for=lambda c: AgentIke(NodeAgent(c.node, c.name, runtime)),
        routes_for=lambda c: FrrRoute(c.node, c.name, runtime),
        links_for=lambda c: AgentLink(NodeAgent(c.node, c.name, runtime)),
        host=DockerHost(runtime, check_image(IMAGE)),
        logs_for=lambda c: AgentLogs(NodeAgent(c.node, c.name, runtime)),
    )
