"""Azure's documented rules and limits for VPN gateways, read from azure.yaml (pure)."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict


class SkuLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tunnels: int
    throughput_mbps: int


class ReservedAsns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    gateway_default: int
    ranges: list[tuple[int, int]]

    def reserved(self, asn: int) -> bool:
        return any(low <= asn <= high for low, high in self.ranges)


class Skus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    default: str
    limits: dict[str, SkuLimits]


class PskRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    min_length: int
    max_length: int
    forbidden: str

    def problem(self, key: str) -> str | None:
        """Why Azure would refuse `key` as a connection's shared key; None when it takes it."""
        if not self.min_length <= len(key) <= self.max_length:
            return f"{len(key)} characters, Azure takes {self.min_length} to {self.max_length}"
        bad = sorted({c for c in key if not 0x21 <= ord(c) <= 0x7E or c in self.forbidden})
        if bad:
            return f"contains {', '.join(repr(c) for c in bad)}: Azure takes printable ASCII without space, '-' or '~'"
        return None


class AzureRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reserved_asns: ReservedAsns
    psk: PskRule
    skus: Skus


@lru_cache(maxsize=1)
def azure_rules() -> AzureRules:
    return AzureRules.model_validate(yaml.safe_load((resources.files("lab") / "azure.yaml").read_text()))
