"""Real labs for integration tests: real containers, strongSwan and FRR.

Every object a test session creates carries its session label; whatever
happens, the finalizer removes everything with that label.
"""
import os
import time
import uuid

import pytest

from lab import lifecycle
from lab.deploy import IMAGE
from lab.topology import load_plan
from lab.wiring import real_adapters

SESSION = f"pytest-{uuid.uuid4().hex[:8]}"
SESSION_LABELS = {"lab.session": SESSION}


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def adapters():
    a = real_adapters()
    a.runtime.ping()
    if a.runtime.image_id(IMAGE) is None:
        pytest.fail(f"{IMAGE} is not built: run `make images`")
    running = lifecycle.running_labs(a)
    if running:
        # Every test lab uses the default scenario's subnets: they would collide.
        pytest.fail(f"lab {', '.join(running)} is running: `lab down` it before the integration tests")
    yield a
    a.runtime.remove_lab({"lab.session": SESSION})


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("lab-state")
    os.environ["LAB_STATE_DIR"] = str(path)
    return path


def start_lab(adapters, profile=None, plan=None):
    """The default scenario (or `plan` again), up and converged, labelled with the test session."""
    plan = plan or load_plan("active-standby", profile, lab=f"it-{uuid.uuid4().hex[:6]}")
    started = time.monotonic()
    try:
        status = lifecycle.up(plan, adapters, progress=lambda m: None, extra_labels=SESSION_LABELS)
    except BaseException:
        adapters.runtime.remove_lab({"lab.name": plan.lab})
        raise
    return plan, status, time.monotonic() - started


@pytest.fixture(scope="module")
def running_lab(adapters, state_dir):
    """The default scenario (azure profile); torn down after the module."""
    plan, status, elapsed = start_lab(adapters)
    yield plan, status, elapsed
    lifecycle.down(plan.lab, adapters)
