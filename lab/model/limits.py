"""How much one scenario or profile file may ask of the lab, read from limits.yaml (pure)."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import Field

from lab.model.schema import Strict


class Limit(Strict):
    value: int = Field(gt=0)
    reason: str


class Limits(Strict):
    file_bytes: Limit
    yaml_depth: Limit
    yaml_nodes: Limit
    nodes: Limit
    networks: Limit
    tunnels: Limit

    def refusal(self, name: str, found: str) -> str:
        """One line: what was found, past the limit `name`, with the limit's value and reason."""
        limit: Limit = getattr(self, name)
        return f"{found}; the lab takes at most {limit.value:,} (limits.yaml {name}: {limit.reason})"


@lru_cache(maxsize=1)
def lab_limits() -> Limits:
    return Limits.model_validate(yaml.safe_load((resources.files("lab.model") / "limits.yaml").read_text()))
