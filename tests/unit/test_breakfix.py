"""`lab break` / `lab repair` bookkeeping: a fault is recorded before it is injected."""
import pytest

from lab.failover import breakfix
from lab.model.errors import LabError
from lab.plan.load import load_plan


class HalfFault:
    """A fault whose injection stops half-way (as an interrupted `lab break` would)."""
    name = "maintenance"

    def __init__(self):
        self.restored = []

    def check(self, plan, spec):
        pass

    def inject(self, target):
        raise KeyboardInterrupt

    def restore(self, target):
        self.restored.append(target)
        return "instance restarted"


@pytest.fixture
def wired(monkeypatch):
    fault = HalfFault()
    failed_back = []
    monkeypatch.setattr(breakfix, "get_fault", lambda name: fault)
    monkeypatch.setattr(breakfix, "fault_target", lambda plan, adapters, spec: spec.text)
    monkeypatch.setattr(breakfix, "holders", lambda plan, adapters: {"azure-gw": ["azure-gw-0"]})
    monkeypatch.setattr(breakfix, "fail_back", lambda plan, adapters, initial: failed_back.append(initial))
    monkeypatch.setattr(breakfix, "ensure_guard", lambda lab, adapters: None)
    monkeypatch.setattr(breakfix, "_still_running", lambda plan, adapters: None)
    return fault, failed_back


def test_an_interrupted_break_is_still_undone_by_repair(wired, tmp_path):
    fault, failed_back = wired
    plan = load_plan("active-standby")
    with pytest.raises(KeyboardInterrupt):
        breakfix.break_lab(plan, None, "maintenance", "azure-gw-0", tmp_path)
    assert breakfix.faults_in_place(tmp_path) == ["maintenance on azure-gw-0"]
    done = breakfix.repair_lab(plan, None, tmp_path)
    assert fault.restored == ["azure-gw-0"]
    assert failed_back == [{"azure-gw": ["azure-gw-0"]}]
    assert done[0] == "maintenance on azure-gw-0: instance restarted"
    assert breakfix.faults_in_place(tmp_path) == []


def test_a_restore_that_finds_half_a_fault_does_not_stop_the_repair(wired, tmp_path, monkeypatch):
    fault, failed_back = wired
    plan = load_plan("active-standby")

    def refuse(target):
        raise LabError("no such rule")

    monkeypatch.setattr(fault, "restore", refuse)
    with pytest.raises(KeyboardInterrupt):
        breakfix.break_lab(plan, None, "maintenance", "azure-gw-0", tmp_path)
    done = breakfix.repair_lab(plan, None, tmp_path)
    assert done[0] == "maintenance on azure-gw-0: partly undone (no such rule)"
    assert failed_back and breakfix.faults_in_place(tmp_path) == []
