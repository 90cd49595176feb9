"""Checks of the host before anything is created (pure, fed by adapters)."""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path



@dataclass(frozen=True)
class KernelSupport:
    esp: bool | None          # None: the kernel's config can't be read
    source: str

    @property
    def summary(self) -> str:
        if self.esp is None:
            return f"unknown ({self.source})"
        return f"{'yes' if self.esp else 'no'} ({self.source})"


def kernel_esp_support(config_paths: tuple[str, ...] = ("/proc/config.gz",)) -> KernelSupport:
    """Whether the host kernel can carry ESP itself (CONFIG_INET_ESP)."""
    for path in config_paths:
        p = Path(path)
        if not p.exists():
            continue
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt") as f:  # type: ignore[operator]
            for line in f:
                if line.startswith("CONFIG_INET_ESP="):
                    return KernelSupport(True, f"{path}: {line.strip()}")
        return KernelSupport(False, f"{path}: CONFIG_INET_ESP is not set")
    return KernelSupport(None, "no kernel config to read")
