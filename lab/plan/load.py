"""Scenario and profile files → validated models: read within the lab's limits, parsed, checked.

Every problem of a file is reported at once, each naming its field (the
cross-checks are lab/plan/checks.py); a scenario that loads resolves
(lab/plan/resolve.py) without surprises.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lab.model import names
from lab.model.errors import TopologyError
from lab.model.limits import lab_limits
from lab.model.names import check_lab_name
from lab.model.schema import LabPlan, Profile, Scenario
from lab.plan.checks import check_profile, check_scenario
from lab.plan.resolve import resolve

M = TypeVar("M", bound=BaseModel)


def builtin_scenarios() -> list[str]:
    folder = resources.files("lab") / "scenarios"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_profiles() -> list[str]:
    folder = resources.files("lab") / "profiles"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _locate(name_or_path: str, folder: str, known: list[str]) -> tuple[str, str]:
    """Returns (label, text) for a built-in name or a file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise TopologyError(str(path), ["no such file"])
        return path.name, _read_text(path.name, path)
    if name_or_path not in known:
        raise TopologyError(name_or_path, [f"unknown {folder[:-1]} (known: {', '.join(known)})"])
    label = f"{name_or_path}.yaml"
    return label, _read_text(label, resources.files("lab") / folder / label)


def _read_text(label: str, source: Path | Traversable) -> str:
    """The file's text; refused in one line when it is too large or not UTF-8."""
    limits = lab_limits()
    most = limits.file_bytes.value
    try:
        with source.open("rb") as file:
            data = file.read(most + 1)  # no more: a huge file is never read whole
            size = file.seek(0, io.SEEK_END)
    except OSError as exc:
        raise TopologyError(label, [f"can't read it ({exc.strerror or exc})"]) from None
    if len(data) > most:
        raise TopologyError(label, [limits.refusal("file_bytes", f"{size:,} bytes")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TopologyError(label, [f"line {line}, byte {exc.start} (0x{data[exc.start]:02x}): not UTF-8 text "
                                    f"({exc.reason}); scenarios and profiles are UTF-8"]) from None


@dataclass
class _OpenCollection:
    anchor: str | None
    level: int
    nodes_before: int  # the document's expanded node count when it opened
    deepest: int       # the deepest level inside it so far


def _check_yaml_bounds(label: str, text: str) -> None:
    """Refuses YAML nested deeper, or larger once aliases are expanded, than the limits: before
    it is composed, by walking the parser's events (no recursion). PyYAML composes recursively
    (a RecursionError near 500 levels), and an alias is one node to safe_load but its whole
    anchor to whatever walks the data: a few lines of aliases (a billion laughs) stand for 10^9."""
    limits = lab_limits()
    expanded = 0
    anchored: dict[str, tuple[int, int]] = {}  # anchor -> its nodes, and the levels it spans
    opened: list[_OpenCollection] = []

    def refuse(limit: str, found: str) -> TopologyError:
        return TopologyError(label, [limits.refusal(limit, f"line {event.start_mark.line + 1}: {found}")])

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            done = opened.pop()
            if done.anchor is not None:
                anchored[done.anchor] = (expanded - done.nodes_before, done.deepest - done.level + 1)
            if opened:
                opened[-1].deepest = max(opened[-1].deepest, done.deepest)
            continue
        if isinstance(event, yaml.AliasEvent):
            if any(c.anchor == event.anchor for c in opened):
                raise refuse("yaml_nodes", f"*{event.anchor} lies inside its own anchor, so it expands without end")
            nodes, levels = anchored.get(event.anchor, (1, 0))  # an unknown one: the composer says so
        elif isinstance(event, yaml.CollectionStartEvent):
            opened.append(_OpenCollection(event.anchor, len(opened) + 1, expanded, len(opened) + 1))
            nodes, levels = 1, 0
        elif isinstance(event, yaml.ScalarEvent):
            nodes, levels = 1, 0
            if event.anchor is not None:
                anchored[event.anchor] = (1, 0)
        else:
            continue  # stream and document boundaries
        expanded += nodes
        reached = len(opened) + levels
        if reached > limits.yaml_depth.value:
            raise refuse("yaml_depth", f"nested {reached} levels deep")
        if expanded > limits.yaml_nodes.value:
            raise refuse("yaml_nodes", f"{expanded:,} YAML nodes so far, aliases expanded")
        if opened:
            opened[-1].deepest = max(opened[-1].deepest, reached)


def _parse(label: str, text: str, model: type[M]) -> M:
    try:
        _check_yaml_bounds(label, text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise TopologyError(label, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    except ValueError as exc:  # a constructor's: a date like 2024-13-01, an integer of over 4,300 digits
        raise TopologyError(label, [f"not valid YAML ({exc})"]) from None
    if not isinstance(raw, dict):
        raise TopologyError(label, ["expected a mapping at the top level"])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise TopologyError(label, [_describe(err) for err in exc.errors()]) from None


GATEWAY_TAGS = ("vpn", "expressroute")


def _field_part(part: object) -> str:
    text = str(part)
    return text if names.KEY.problem(text) is None else repr(text)


def _describe(err: dict) -> str:
    """One line per pydantic error; a name a user typed is shown escaped (it may hold a newline)."""
    loc = list(err["loc"])
    if len(loc) > 2 and loc[0] == "gateways" and loc[2] in GATEWAY_TAGS:
        del loc[2]      # the gateway type's tag pydantic puts in: not a field the user wrote
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc.pop()
    field = ".".join(_field_part(part) for part in loc) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    elif err["type"] == "missing":
        message = "required field is missing"
    value = err.get("input")
    shown = ""
    if err["type"] not in ("missing", "extra_forbidden", "value_error") and isinstance(value, (str, int, float)):
        shown = f" (got {value!r})"
    return f"{field}{' (name)' if is_key else ''}: {message}{shown}"


def load_scenario(name_or_path: str) -> tuple[str, Scenario]:
    label, text = _locate(name_or_path, "scenarios", builtin_scenarios())
    scenario = _parse(label, text, Scenario)
    problems = check_scenario(scenario)
    if problems:
        raise TopologyError(label, problems)
    return label, scenario


def load_profile(name_or_path: str) -> Profile:
    label, text = _locate(name_or_path, "profiles", builtin_profiles())
    profile = _parse(label, text, Profile)
    problems = check_profile(profile)
    if problems:
        raise TopologyError(label, problems)
    return profile


def load_plan(scenario: str, profile: str | None = None, lab: str | None = None) -> LabPlan:
    if lab is not None:
        check_lab_name(lab, "--lab")
    _, model = load_scenario(scenario)
    return resolve(model, load_profile(profile or model.profile), lab)
