"""`lab capture`: being written (issue 20)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app` (nothing yet)."""
