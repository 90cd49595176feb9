"""Real labs for integration tests: real containers, strongSwan and FRR.

Every object a test session creates carries its session label; whatever
happens, the finalizer removes everything with that label.
"""
import os
import time
import uuid

import pytest

from lab.run import lifecycle
from lab.render.deploy_plan import IMAGE
from lab.plan.load import load_plan
from lab.adapters.wiring import real_adapters

SESSION = f"pytest-{uuid.uuid4().hex[:8]}"
SESSION_LABELS = {"lab.session": SESSION}


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory):
    """The test session's own state folder: a user's labs keep theirs."""
    path = tmp_path_factory.mktemp("lab-state")
    os.environ["LAB_STATE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def adapters(state_dir):
    """Real adapters. A user's own labs may run beside the tests: every test lab has its own name."""
    a = real_adapters()
    a.runtime.ping()
    if a.runtime.image_id(IMAGE) is None:
        pytest.fail(f"{IMAGE} is not built: run `make images`")
    yield a
    labs = {c.labels.get("lab.name") for c in a.runtime.containers(SESSION_LABELS)}
    for lab in sorted(labs - {None}):
        lifecycle.teardown(lab, a)
    a.runtime.remove_lab(SESSION_LABELS)


def forwarded_out(adapters, plan):
    """Packets the host forwarded from the lab's bridges to anywhere else, counted after every filter."""
    return adapters.host.counters(f"azlab-{plan.lab}")["forwarded out of the lab"]


def start_lab(adapters, profile=None, plan=None, scenario="active-standby"):
    """A scenario (or `plan` again), up and converged, labelled with the test session.

    `up` removes what it made when it fails; the session finalizer sweeps the rest.
    """
    plan = plan or load_plan(scenario, profile, lab=f"it-{uuid.uuid4().hex[:6]}")
    started = time.monotonic()
    status = lifecycle.up(plan, adapters, extra_labels=SESSION_LABELS)
    return plan, status, time.monotonic() - started


@pytest.fixture(scope="module")
def running_lab(adapters, state_dir):
    """The default scenario (azure profile); torn down after the module."""
    plan, status, elapsed = start_lab(adapters)
    yield plan, status, elapsed
    lifecycle.down(plan.lab, adapters)
