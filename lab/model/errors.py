"""One error family, so the CLI can print any of them as one clear line."""


class LabError(Exception):
    """Base of every error the lab reports to a user."""


class TopologyError(LabError):
    """A scenario that can't be built; carries every problem found, not just the first."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class HostConflictError(LabError):
    """A lab subnet collides with something already on the host."""


class EngineError(LabError):
    """No usable Docker engine."""


class DeployError(LabError):
    """Bringing a node up failed; names the node."""

    def __init__(self, node: str, reason: str):
        self.node = node
        super().__init__(f"node {node!r}: {reason}")


class WaitTimeout(LabError):
    """A bounded wait ran out; says what was awaited and what was last seen."""
