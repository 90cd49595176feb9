"""What the engine's kernel can do, from its build options (pure, fed by lab-agent)."""
from __future__ import annotations

from dataclasses import dataclass

ESP_OPTION = "CONFIG_INET_ESP"


@dataclass(frozen=True)
class KernelSupport:
    esp: bool | None          # None: the kernel's config can't be read
    source: str

    @property
    def summary(self) -> str:
        if self.esp is None:
            return f"unknown ({self.source})"
        return f"{'yes' if self.esp else 'no'} ({self.source})"


def kernel_esp_support(value: str | None, source: str) -> KernelSupport:
    """Whether the engine's kernel can carry ESP itself, from CONFIG_INET_ESP's value (y, m, 'not set')."""
    if value is None:
        return KernelSupport(None, source)
    if value in ("y", "m"):
        return KernelSupport(True, f"{source}: {ESP_OPTION}={value}")
    return KernelSupport(False, f"{source}: {ESP_OPTION} is not set")
