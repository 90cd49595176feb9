"""Break a running lab by hand and repair it: the faults of a failover run, for training.

`break_lab` injects a fault and leaves it in place; `repair_lab` undoes every
fault still recorded, newest first, and fails back to the instances that
were active before the first one. The record lives in the lab's state
folder, so `lab down` removes it with the lab.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import LabError
from .experiment import fail_back, fault_target, holders
from .faults import check_target, get_fault, resolve_target
from .model import LabPlan
from .wiring import Adapters

RECORD = "injected-faults.json"


def _read(state_dir: Path) -> dict:
    path = state_dir / RECORD
    if not path.exists():
        return {"initial": {}, "faults": []}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise LabError(f"{path} is damaged: `lab down` and `lab up` start afresh") from None


def _write(state_dir: Path, record: dict) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / RECORD).write_text(json.dumps(record, indent=1))


def faults_in_place(state_dir: Path) -> list[str]:
    return [f"{f['fault']} on {f['target']}" for f in _read(state_dir)["faults"]]


def break_lab(plan: LabPlan, adapters: Adapters, fault_name: str, target: str, state_dir: Path) -> str:
    """Injects one fault and records it; returns what was done."""
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
