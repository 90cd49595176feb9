"""The core loads no outside system's library: importing the model, planning, rendering and the
failover maths (and the run and failover layers, which reach the outside through lab/run/ports.py)
must not import docker, requests, vici or pyroute2; only lab/adapters may. Checked in a fresh
interpreter, since this one has long since imported the adapters for other tests."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = ("docker", "requests", "vici", "pyroute2")
CORE = ["lab.model", "lab.plan", "lab.render", "lab.failover.metrics", "lab.failover.statistics",
        "lab.failover.published", "lab.model.events"]
# Above the core, below the UI: typed by the ports, handed real adapters by lab/adapters/wiring.py.
THROUGH_PORTS = ["lab.run", "lab.failover", "lab.session"]

# Imports each name given, and every module of a package given; prints what of OUTSIDE got loaded.
PROBE = """
import importlib, json, pkgutil, sys
imported = []
for name in sys.argv[2:]:
    module = importlib.import_module(name)
    imported.append(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({"imported": imported, "loaded": [m for m in json.loads(sys.argv[1]) if m in sys.modules]}))
"""


def loaded_by(modules: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(OUTSIDE), *modules], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("modules, walked", [(CORE, "lab.plan.resolve"), (THROUGH_PORTS, "lab.run.lifecycle")],
                         ids=["core", "through-ports"])
def test_no_outside_library_is_loaded(modules, walked):
    found = loaded_by(modules)
    assert walked in found["imported"]   # each package's modules, not only its __init__
    assert found["loaded"] == []


def test_the_check_sees_an_adapter_load_its_library():
    assert "docker" in loaded_by(["lab.adapters.docker_runtime"])["loaded"]
