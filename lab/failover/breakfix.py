"""Break a running lab by hand and repair it: the faults of a failover run, for training.

`break_lab` injects a fault and leaves it in place; `repair_lab` undoes every
fault still recorded, newest first, and fails back to the instances that
were active before the first one. The record lives in the lab's state
folder, so `lab down` removes it with the lab.
"""
from __future__ import annotations

import json
from pathlib import Path

from lab.model.errors import LabError
from lab.failover.runner import fail_back, fault_target, holders
from lab.failover.faults import check_target, get_fault, resolve_target
from lab.run.lifecycle import ensure_guard
from lab.run.locks import hold_lab
from lab.model.schema import LabPlan
from lab.run.state import make_lab_dir, read_private, write_private
from lab.run.ports import Adapters

RECORD = "injected-faults.json"


def _read(state_dir: Path) -> dict:
    path = state_dir / RECORD
    text = read_private(path)
    if text is None:
        return {"initial": {}, "faults": []}
    try:
        record = json.loads(text)
        if not (isinstance(record.get("initial"), dict) and isinstance(record.get("faults"), list)
                and all(isinstance(f.get("fault"), str) and isinstance(f.get("target"), str)
                        for f in record["faults"])):
            raise ValueError("unexpected shape")
        return record
    except (ValueError, AttributeError, RecursionError):
        raise LabError(f"{path} is damaged: `lab down` and `lab up` start afresh") from None


def _write(state_dir: Path, record: dict) -> None:
    write_private(state_dir / RECORD, json.dumps(record, indent=1))


def faults_in_place(state_dir: Path) -> list[str]:
    return [f"{f['fault']} on {f['target']}" for f in _read(state_dir)["faults"]]


def break_lab(plan: LabPlan, adapters: Adapters, fault_name: str, target: str, state_dir: Path) -> str:
    """Injects one fault and records it; returns what was done."""
    with hold_lab(plan.lab, "break"):
        _still_running(plan, adapters)
        make_lab_dir(plan.lab)
        repaired = ensure_guard(plan.lab, adapters)
        done = _break(plan, adapters, fault_name, target, state_dir)
    return f"{done} ({repaired})" if repaired else done


def _still_running(plan: LabPlan, adapters: Adapters) -> None:
    """Looked at once the lab is held: a `down` that held it before may have removed it."""
    if not adapters.runtime.lab_objects({"lab.name": plan.lab}):
        raise LabError(f"lab {plan.lab} is not running: `lab up` first")


def _break(plan: LabPlan, adapters: Adapters, fault_name: str, target: str, state_dir: Path) -> str:
    fault = get_fault(fault_name)
    spec = check_target(plan, fault, target)
    record = _read(state_dir)
    if any(f["fault"] == fault.name and f["target"] == target for f in record["faults"]):
        raise LabError(f"{fault.name} is already in place on {target}: `lab repair` first")
    if not record["faults"]:
        record["initial"] = holders(plan, adapters)
    # Recorded before it is injected: a break that fails or is interrupted
    # half-way (UDP 500 already blocked, say) is still undone by `lab repair`.
    record["faults"].append({"fault": fault.name, "target": target})
    _write(state_dir, record)
    return fault.inject(fault_target(plan, adapters, spec))


def repair_lab(plan: LabPlan, adapters: Adapters, state_dir: Path) -> list[str]:
    """Restores every recorded fault, newest first, then fails back; returns what was done."""
    with hold_lab(plan.lab, "repair"):
        _still_running(plan, adapters)
        repaired = ensure_guard(plan.lab, adapters)
        return ([repaired] if repaired else []) + _repair(plan, adapters, state_dir)


def _repair(plan: LabPlan, adapters: Adapters, state_dir: Path) -> list[str]:
    record = _read(state_dir)
    done = []
    for entry in reversed(record["faults"]):
        try:
            spec = resolve_target(plan, entry["target"])
            restored = get_fault(entry["fault"]).restore(fault_target(plan, adapters, spec))
        except LabError as exc:
            # Half-injected: part of the fault was never there to undo; the rest still is.
            restored = f"partly undone ({exc})"
        done.append(f"{entry['fault']} on {entry['target']}: {restored}")
    (state_dir / RECORD).unlink(missing_ok=True)
    if record["initial"]:
        fail_back(plan, adapters, record["initial"])
        done.append("failed back to " + ", ".join(i for active in record["initial"].values() for i in active))
    return done
