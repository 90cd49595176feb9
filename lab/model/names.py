"""The rule every name a user can type must follow, checked where the name enters.

Names end up in container and network names, folder names under the state
root, Linux interface names, nftables tables and configs that root runs in
the nodes. So a name is a plain token, matched whole (`fullmatch`: `$`
would let a trailing newline through), and its rule lives in one place.
Pure: imports nothing from the lab but its errors.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from lab.model.errors import TopologyError


class BadName(ValueError):
    """A name that breaks its rule (a ValueError, so pydantic reports it as a field error)."""


@dataclass(frozen=True)
class NameRule:
    what: str
    pattern: str
    max_length: int
    says: str

    def problem(self, value: object) -> str | None:
        """Why `value` is not a valid name, or None."""
        if not isinstance(value, str):
            return f"a {self.what} is a string, got {type(value).__name__}"
        if len(value) > self.max_length or not re.fullmatch(self.pattern, value):
            return f"{_shown(value)} is not a valid {self.what}: {self.says}, at most {self.max_length} characters"
        return None

    def check(self, value: object) -> str:
        problem = self.problem(value)
        if problem:
            raise BadName(problem)
        return value  # type: ignore[return-value]


def _shown(value: str) -> str:
    """The value as a user can read it on one line: control characters escaped, long ones cut."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


_TOKEN = "lower-case letters, digits and '-', starting with a letter and not ending with '-'"

# Lab names: container names (lab-<lab>-<node>), the state folder, the guard's nft table.
LAB = NameRule("lab name", r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", 40,
               "lower-case letters, digits and '-', not starting or ending with '-'")
# Nodes, gateways, VRRP groups, tunnels, profiles: container names and config identifiers.
NODE = NameRule("name", r"[a-z][a-z0-9-]*[a-z0-9]", 40, _TOKEN)
# A network names the node's link: Linux allows 15 characters for an interface name.
NETWORK = NameRule("network name", r"[a-z][a-z0-9-]*[a-z0-9]", 15, _TOKEN)
# Scenario and tunnel names also make strongSwan connection names and BGP descriptions.
SHORT = NameRule("scenario or tunnel name", r"[a-z][a-z0-9-]*[a-z0-9]", 24, _TOKEN)
# Keys of data the lab defines (fault names, departures, Azure's algorithm names).
KEY = NameRule("key", r"[A-Za-z0-9][A-Za-z0-9_.-]*", 40,
               "letters, digits, '_', '.' and '-', starting with a letter or digit")


LabName = Annotated[str, AfterValidator(LAB.check)]
NodeName = Annotated[str, AfterValidator(NODE.check)]
NetworkName = Annotated[str, AfterValidator(NETWORK.check)]
ShortName = Annotated[str, AfterValidator(SHORT.check)]
Key = Annotated[str, AfterValidator(KEY.check)]

# Free text (descriptions, sources) is shown in reports, never run: one line, no control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(value: str) -> str:
    if _CONTROL.search(value):
        raise BadName(f"{_shown(value)}: text here is one line without control characters")
    if len(value) > 2000:
        raise BadName("text here is at most 2000 characters")
    return value


Text = Annotated[str, AfterValidator(_one_line)]


def check_lab_name(lab: object, where: str) -> str:
    """The one check of a lab name, wherever it enters: an option, the environment, saved state."""
    problem = LAB.problem(lab)
    if problem:
        raise TopologyError(where, [problem])
    return lab  # type: ignore[return-value]


def engine_prefix(lab: str) -> str:
    """How the name of each container and network of a lab starts on the engine."""
    return f"lab-{lab}-"


def container_name(lab: str, node: str) -> str:
    """A node's container: lab-<lab>-<node>, the one place the pattern is built."""
    return engine_prefix(lab) + node


def network_name(lab: str, network: str) -> str:
    """A scenario network's Docker network: lab-<lab>-<network>."""
    return engine_prefix(lab) + network
