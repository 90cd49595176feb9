"""Real labs for integration tests: real containers, strongSwan and FRR.

The labs come from the lab's pytest plugin (lab/ui/pytest_plugin.py), as users' own tests get
theirs: a name of its own, this test session's label, removed even when start-up fails; at the
end the plugin sweeps whatever still carries the label. The fixtures and helpers below keep the
names the tests use.
"""
import os
import time
import uuid

import pytest

from lab.plan.load import load_plan
from lab.render.deploy_plan import IMAGE
from lab.session import LabSession
from lab.ui.pytest_plugin import LabFactory, factory_of

SESSION = f"pytest-{uuid.uuid4().hex[:8]}"
SESSION_LABELS = {"lab.session": SESSION}
LABS: LabFactory | None = None   # the plugin's factory of this run, set up in pytest_configure


def pytest_configure(config):
    global LABS
    LABS = factory_of(config)
    # The suite's own labs are it-...; tests that call lifecycle.up themselves label with SESSION,
    # so one sweep covers both. A missing engine fails the suite: it must never pass by skipping.
    LABS.prefix = "it"
    LABS.use_session(SESSION)
    LABS.require_engine = True


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
def adapters(state_dir, lab_factory):
    """Real adapters (the plugin's). A user's own labs may run beside the tests: every test lab has its own name."""
    a = lab_factory.adapters()
    if a.runtime.image_id(IMAGE) is None:
        pytest.fail(f"{IMAGE} is not built: run `make images`")
    return a


def forwarded_out(adapters, plan):
    """Packets the host forwarded from the lab's bridges to anywhere else, counted after every filter."""
    return adapters.host.counters(f"azlab-{plan.lab}")["forwarded out of the lab"]


def start_lab(adapters, profile=None, plan=None, scenario="active-standby"):
    """A scenario (or `plan` again), up and converged, labelled with the test session.

    A start that fails leaves nothing (the plugin removes it) and fails the test in one line.
    """
    plan = plan or load_plan(scenario, profile, lab=LABS.new_name())
    session = LABS.adopt(LabSession.from_plan(plan, adapters=adapters))
    started = time.monotonic()
    status = LABS.up(session)
    return plan, status, time.monotonic() - started


@pytest.fixture(scope="module")
def running_lab(adapters, state_dir):
    """The default scenario (azure profile); torn down after the module."""
    plan, status, elapsed = start_lab(adapters)
    yield plan, status, elapsed
    LABS.stop(LabSession.from_plan(plan, adapters=adapters))
