"""The node image's build context: the Dockerfile folder plus lab-agent's wheels.

The wheels are fetched here, on the client, which can reach PyPI, and are
checked against the hashes pinned in agent-requirements.txt; the engine
then builds without needing a package index of its own.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from lab.model.errors import LabError

AGENT_REQUIREMENTS = "agent-requirements.txt"
PIP_WITHIN_S = 300


def prepare_context(source: Path, into: Path) -> Path:
    """Copies `source` into `into` and downloads the agent's wheels into its wheels/ folder."""
    context = into / "context"
    shutil.copytree(source, context, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "-r", str(context / AGENT_REQUIREMENTS), "-d", str(context / "wheels")]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PIP_WITHIN_S)
    except subprocess.TimeoutExpired:
        raise LabError(f"downloading lab-agent's wheels took over {PIP_WITHIN_S} s (pip download)") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(f"can't download lab-agent's wheels ({AGENT_REQUIREMENTS}): {last}")
    return context
