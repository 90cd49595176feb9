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


class AzureRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reserved_asns: ReservedAsns
    skus: Skus


@lru_cache(maxsize=1)
def azure_rules() -> AzureRules:
    return AzureRules.model_validate(yaml.safe_load((resources.files("lab") / "azure.yaml").read_text()))
