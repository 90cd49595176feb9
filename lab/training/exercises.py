"""Exercises for trainers: a lab started broken or weakened, and a check that judges the running lab.

An exercise is data (exercises.yaml beside this module: its texts, its scenario and profile, how it
is weakened, its hint and its solution) plus one check here, registered in CHECKS by name. `start`
writes a copy of the exercise's scenario into the lab's state folder, brings the lab up from it
through LabSession, runs the weakening's commands in the nodes and records the exercise there
(exercise.json, 0600). `check` reads the live lab only (VICI SAs, config files in the nodes, FRR's
routes, one timed failover), so a fix made in the nodes and one made in the scenario copy count
alike. A check is a function of (LabSession, plan) returning one line per problem still there;
the judging is pure and kept apart (judge_*), so the unit tests feed it made-up states.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lab.model import names
from lab.model.azure import azure_rules
from lab.model.errors import LabError
from lab.model.events import EventStream
from lab.model.ipsec import ENCRYPTION, GROUPS, INTEGRITY, gateway_proposals
from lab.model.kinds import Can, able
from lab.model.names import LabName, NodeName
from lab.model.schema import LabPlan, Target, TunnelPlan
from lab.plan.load import builtin_profiles, builtin_scenarios
from lab.run import lifecycle
from lab.run.locks import hold_lab
from lab.run.paths import EXPRESSROUTE, VPN, PathRow, carriers, route_paths
from lab.run.ports import Adapters, BgpPath, IkeSaState
from lab.run.state import lab_dir, make_lab_dir, read_private, write_private
from lab.run.status import running_node
from lab.session import LabSession

# In the lab's state folder (lab/run/state.py LAB_FILES: `lab down` removes them with the lab).
RECORD_FILE = "exercise.json"
SCENARIO_COPY = "exercise-scenario.yaml"
LAB_PLACEHOLDER = "{lab}"
# After the weakening's commands: as long as `lab up` waits for convergence.
CONVERGE_AGAIN_WITHIN_S = lifecycle.CONVERGED_WITHIN_S
NODE_COMMAND_TIMEOUT_S = 60.0


class _Data(BaseModel):
    """A piece of exercises.yaml or of a record: typos are errors."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioEdit(_Data):
    """One value changed in the scenario copy: `path` is dotted keys and list indexes."""
    path: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    was: Any
    value: Any


class NodeCommand(_Data):
    """A command run in a node after `up`, as a person typing at the device would."""
    node: NodeName
    argv: list[str] = Field(min_length=1)


class Weakening(_Data):
    scenario: list[ScenarioEdit] = []
    in_node: list[NodeCommand] = []
    # Wait for the lab to converge after the commands (False: the exercise leaves it broken).
    converge: bool = True


class Exercise(_Data):
    number: int = Field(ge=1)
    slug: NodeName
    title: names.Text
    scenario: str
    profile: str
    docs: str = Field(pattern=r"^docs/exercises/[a-z0-9-]+\.md$")
    check: str
    check_takes: names.Text
    weakening: Weakening = Weakening()
    situation: str = Field(min_length=1)
    hint: str = Field(min_length=1)
    solution: str = Field(min_length=1)

    @field_validator("scenario")
    @classmethod
    def _builtin_scenario(cls, value: str) -> str:
        if value not in builtin_scenarios():
            raise ValueError(f"{value!r} is no built-in scenario ({', '.join(builtin_scenarios())})")
        return value

    @field_validator("profile")
    @classmethod
    def _builtin_profile(cls, value: str) -> str:
        if value not in builtin_profiles():
            raise ValueError(f"{value!r} is no built-in profile ({', '.join(builtin_profiles())})")
        return value

    @field_validator("check")
    @classmethod
    def _registered_check(cls, value: str) -> str:
        if value not in CHECKS:
            raise ValueError(f"{value!r} is no check of lab/training/exercises.py ({', '.join(CHECKS)})")
        return value

    @property
    def default_lab(self) -> str:
        return f"ex{self.number}"

    def text(self, field: str, lab: str) -> str:
        """A text with the lab's name in it (replaced, not formatted: the shell lines hold braces)."""
        return getattr(self, field).replace(LAB_PLACEHOLDER, lab).strip()

    def solution_lines(self, lab: str) -> list[str]:
        return self.text("solution", lab).splitlines()

    def solution_commands(self, lab: str) -> list[str]:
        """The solution's shell commands, comments left out."""
        return [line for line in self.solution_lines(lab) if line.strip() and not line.lstrip().startswith("#")]


class ExerciseBook(_Data):
    exercises: list[Exercise] = Field(min_length=1)


@lru_cache(maxsize=1)
def exercises() -> dict[int, Exercise]:
    """Every exercise by number, read and checked once: numbered 1..N, each check used once."""
    label = "lab/training/exercises.yaml"
    try:
        book = ExerciseBook.model_validate(yaml.safe_load(
            (resources.files("lab.training") / "exercises.yaml").read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise LabError(f"{label}: {str(exc).splitlines()[0]}") from None
    found = {e.number: e for e in book.exercises}
    if sorted(found) != list(range(1, len(book.exercises) + 1)):
        raise LabError(f"{label}: exercises are numbered 1 to {len(book.exercises)}, once each")
    unused = set(CHECKS) - {e.check for e in book.exercises}
    if unused:
        raise LabError(f"{label}: no exercise uses the check(s) {', '.join(sorted(unused))}")
    return found


def get_exercise(number: int) -> Exercise:
    known = exercises()
    if number not in known:
        raise LabError(f"exercise {number}: no such exercise (1 to {len(known)}; `lab exercise list`)")
    return known[number]


# -- the scenario copy ---------------------------------------------------------------------------

def apply_edit(data: Any, edit: ScenarioEdit) -> None:
    """Sets one value of a scenario's data, refusing a path that isn't there or holds another value."""
    *parents, last = edit.path.split(".")
    node = data
    for part in parents:
        node = _step(node, part, edit.path)
    current = _step(node, last, edit.path)
    if current != edit.was:
        raise LabError(f"exercise data: {edit.path} holds {current!r}, not {edit.was!r}: the scenario changed")
    if isinstance(node, list):
        node[int(last)] = edit.value
    else:
        node[last] = edit.value


def _step(node: Any, part: str, path: str) -> Any:
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    if isinstance(node, dict) and part in node:
        return node[part]
    raise LabError(f"exercise data: the scenario has no {path} (at {part!r})")


def render_copy(exercise: Exercise, lab: str) -> str:
    """The exercise's scenario as a file: the built-in one, weakened, with the exercise's profile.

    Written without the built-in file's comments: they would give the answer away."""
    source = resources.files("lab") / "scenarios" / f"{exercise.scenario}.yaml"
    data = yaml.safe_load(source.read_text())
    for edit in exercise.weakening.scenario:
        apply_edit(data, edit)
    data["profile"] = exercise.profile
    header = (f"# Exercise {exercise.number} ({exercise.title}), lab {lab}: scenario {exercise.scenario}, "
              f"written by `lab exercise start {exercise.number}`.\n"
              f"# Edit it, then `lab up THIS_FILE --lab {lab}` re-creates the nodes whose configs change;\n"
              f"# `lab exercise check --lab {lab}` judges the running lab, however it was fixed.\n")
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=False, width=110)


# -- the record of the exercise started on a lab ---------------------------------------------------

class ExerciseRecord(_Data):
    exercise: int
    slug: str
    lab: LabName
    started_at: str
    scenario_copy: str = SCENARIO_COPY


def record_path(lab: str) -> Path:
    return lab_dir(lab) / RECORD_FILE


def read_record(lab: str) -> ExerciseRecord | None:
    """The exercise started on `lab`, or None; a record that isn't one this lab wrote is one line."""
    path = record_path(lab)
    text = read_private(path)
    if text is None:
        return None
    again = f"`lab down --lab {lab}` and `lab exercise start N --lab {lab}` again"
    try:
        record = ExerciseRecord.model_validate(json.loads(text))
    except (ValueError, RecursionError) as exc:
        why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not valid JSON"
        raise LabError(f"{path}: not an exercise record ({why}): {again}") from None
    known = exercises()
    if record.exercise not in known or known[record.exercise].slug != record.slug or record.lab != lab:
        raise LabError(f"{path}: records exercise {record.exercise} ({record.slug}) of lab {record.lab}, "
                       f"none `lab exercise list` has for this lab: {again}")
    return record


def write_record(lab: str, exercise: Exercise) -> ExerciseRecord:
    record = ExerciseRecord(exercise=exercise.number, slug=exercise.slug, lab=lab,
                            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    write_private(record_path(lab), record.model_dump_json())
    return record


def exercise_labs(adapters: Adapters) -> list[str]:
    """The running labs an exercise was started on."""
    return [lab for lab in lifecycle.running_labs(adapters) if read_private(record_path(lab)) is not None]


def pick_lab(requested: str | None, adapters: Adapters) -> str:
    """The lab named, else the one exercise lab running; one line when there is none or several."""
    if requested is not None:
        return names.check_lab_name(requested, "--lab")
    labs = exercise_labs(adapters)
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no exercise lab is running: `lab exercise start N` starts one")
    raise LabError(f"several exercise labs are running ({', '.join(labs)}): choose one with --lab")


# -- start and check -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Started:
    exercise: Exercise
    lab: str
    scenario_copy: Path
    recreated: bool       # the lab ran an exercise before and was started again from scratch


def start(number: int, lab: str | None, adapters: Adapters, events: EventStream | None = None) -> Started:
    """Brings the exercise's lab up from its scenario copy, weakens it and records the exercise.

    A lab of that name that runs an earlier exercise starts again from scratch; any other lab of
    that name is refused (nothing of it is touched). A start that fails takes its lab down again."""
    exercise = get_exercise(number)
    lab = names.check_lab_name(lab or exercise.default_lab, "--lab")
    events = events or EventStream()
    adapters.runtime.ping()
    with hold_lab(lab, "exercise start"):
        running = lab in lifecycle.running_labs(adapters)
        if running and read_record(lab) is None:
            raise LabError(f"lab {lab} is running and runs no exercise: choose another --lab, "
                           f"or `lab down --lab {lab}` first")
        if running:
            events.note(lab, f"lab {lab} runs an earlier exercise: starting it again from scratch")
            lifecycle.down(lab, adapters, events)
        copy = make_lab_dir(lab) / SCENARIO_COPY
        write_private(copy, render_copy(exercise, lab))
        session = LabSession(str(copy), None, lab, adapters=adapters, events=events)
        try:
            session.up()
            weaken(exercise, session)
            write_record(lab, exercise)
        except BaseException as exc:
            try:
                lifecycle.down(lab, adapters, events)
            except LabError as cleanup:
                raise LabError(f"{exc}; and taking lab {lab} down failed: {cleanup}") from exc
            raise
    return Started(exercise, lab, copy, running)


def weaken(exercise: Exercise, session: LabSession) -> None:
    """The weakening's commands, in order, in the running nodes; then convergence, if asked."""
    runtime = session.adapters.runtime
    for step in exercise.weakening.in_node:
        container = running_node(runtime, session.name, step.node).name
        code, output = runtime.exec(container, step.argv, timeout_s=NODE_COMMAND_TIMEOUT_S)
        if code != 0:
            said = [line for line in output.strip().splitlines() if not line.startswith("plugin '")]
            raise LabError(f"{step.node}: `{shlex.join(step.argv)}` exited {code}: {(said or [''])[-1][:200]}")
    if exercise.weakening.converge and exercise.weakening.in_node:
        lifecycle.wait_for("convergence after the exercise's changes",
                           lambda: lifecycle.read_status(session.name, session.adapters).unconverged_reasons(),
                           CONVERGE_AGAIN_WITHIN_S)


def started_on(lab: str, adapters: Adapters) -> Exercise:
    """The exercise recorded on a running lab; one line when the lab isn't running or has none."""
    if lab not in lifecycle.running_labs(adapters):
        raise LabError(f"lab {lab} is not running: `lab exercise start N --lab {lab}` starts an exercise on it")
    record = read_record(lab)
    if record is None:
        raise LabError(f"lab {lab}: no exercise was started on it (`lab exercise start N --lab {lab}`)")
    return get_exercise(record.exercise)


def check(lab: str, adapters: Adapters, events: EventStream | None = None) -> tuple[Exercise, list[str]]:
    """The exercise on `lab` and one line per problem still there (none: solved)."""
    adapters.runtime.ping()
    exercise = started_on(lab, adapters)
    session = LabSession.attach(lab, adapters=adapters, events=events)
    return exercise, CHECKS[exercise.check](session, session.plan)


# -- strongSwan's settings files (strongswan.conf, swanctl.conf): the little they need ---------------

_SECTION = re.compile(r"^([A-Za-z0-9_.-]+)\s*(?::\s*[A-Za-z0-9_.,\s-]+)?\{$")
_VALUE = re.compile(r"^([A-Za-z0-9_.-]+)\s*=\s*(.*)$")


def parse_settings(text: str) -> dict[str, Any]:
    """strongSwan's settings syntax as nested dicts: `name {` ... `}` sections and `key = value`,
    # comments; `include` lines are not followed (the lab's files include only keys)."""
    root: dict[str, Any] = {}
    stack = [root]
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("include "):
            continue
        if line == "}":
            if len(stack) > 1:
                stack.pop()
            continue
        section = _SECTION.match(line)
        if section:
            child = stack[-1].setdefault(section.group(1), {})
            stack.append(child if isinstance(child, dict) else {})
            continue
        value = _VALUE.match(line)
        if value:
            stack[-1][value.group(1)] = value.group(2).strip().strip('"')
    return root


def duration_s(text: str) -> float:
    """A strongSwan time value: plain seconds, or with s, m, h or d."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text.strip())
    if match is None:
        raise ValueError(f"{text!r} is no strongSwan time value")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


# -- exercise 1: the device's retransmission settings --------------------------------------------

STRONGSWAN_CONF = "/etc/strongswan.conf"
SWANCTL_CONF = "/etc/swanctl/swanctl.conf"


@dataclass(frozen=True)
class Retransmission:
    """charon's IKEv2 retransmission settings (strongswan.conf `charon { ... }`); None: not set, the default."""
    timeout_s: float | None = None
    base: float | None = None
    tries: int | None = None
    limit_s: float | None = None

    # strongSwan's defaults (strongswan.conf(5)).
    DEFAULTS = {"timeout_s": 4.0, "base": 1.8, "tries": 5, "limit_s": 0.0}

    def value(self, name: str) -> float:
        found = getattr(self, name)
        return self.DEFAULTS[name] if found is None else found

    @property
    def give_up_s(self) -> float:
        """How long after its first unanswered request charon gives up on the peer: each of the
        tries + 1 sends waits timeout x base^k (at most the limit, where one is set); jitter only
        shortens it."""
        limit = self.value("limit_s")
        waits = [self.value("timeout_s") * self.value("base") ** k for k in range(int(self.value("tries")) + 1)]
        return sum(min(w, limit) if limit > 0 else w for w in waits)

    def describe(self) -> str:
        parts = [f"retransmit_timeout {self.value('timeout_s'):g} s", f"base {self.value('base'):g}",
                 f"{int(self.value('tries'))} tries"]
        unset = [n for n in ("timeout_s", "base", "tries") if getattr(self, n) is None]
        if len(unset) == 3:
            return ", ".join(parts) + ": strongSwan's defaults"
        return ", ".join(parts) + (f" ({', '.join(n.removesuffix('_s') for n in unset)} left at strongSwan's default)"
                                   if unset else "")


def retransmission_of(settings: dict[str, Any]) -> Retransmission:
    """The retransmission settings of a parsed strongswan.conf; a value charon can't read is refused."""
    charon = settings.get("charon", {})
    if not isinstance(charon, dict):
        charon = {}

    def number(key: str, kind: type) -> Any:
        text = charon.get(key)
        if text is None:
            return None
        try:
            return kind(text)
        except ValueError:
            raise LabError(f"{STRONGSWAN_CONF}: charon.{key} = {text!r} is no number") from None

    return Retransmission(number("retransmit_timeout", float), number("retransmit_base", float),
                          number("retransmit_tries", int), number("retransmit_limit", float))


def judge_retransmission(device: str, settings: Retransmission, dpd_delays_s: dict[str, float | None],
                         target: Target) -> list[str]:
    """One line when a lost gateway instance would go unnoticed past the unplanned target: the worst
    of the device's connections (no DPD at all: never noticed)."""
    lines = []
    for conn, delay in dpd_delays_s.items():
        if not delay:
            lines.append(f"{device}: connection {conn} has no dpd_delay, so charon never checks that the gateway "
                         f"instance is alive: a lost one goes unnoticed (target {target.value:g} s)")
    timed = {conn: delay for conn, delay in dpd_delays_s.items() if delay}
    if not timed:
        return lines
    conn, delay = max(timed.items(), key=lambda item: item[1])
    outage = delay + settings.give_up_s
    if outage > target.value:
        lines.append(
            f"{device}: charon gives up on a dead gateway instance {settings.give_up_s:.1f} s after its first "
            f"unanswered request ({settings.describe()}); with dpd_delay {delay:g} s (connection {conn}) the lost "
            f"instance's flows wait about {outage:.0f} s, over the unplanned target of {target.value:g} s "
            f"({target.source}). Read from {STRONGSWAN_CONF}, not timed: a run would take {outage:.0f} s")
    return lines


def judge_sa_ages(device: str, tunnels: Sequence[str], sas: Sequence[IkeSaState],
                  settings_changed_ago_s: float | None) -> list[str]:
    """charon reads the retransmission settings when it makes an IKE SA: an SA older than the file's
    last change still runs the old ones; a tunnel without an SA is named too."""
    by_name = {sa.name: sa for sa in sas if sa.state == "ESTABLISHED"}
    lines = []
    for tunnel in tunnels:
        sa = by_name.get(tunnel)
        if sa is None:
            lines.append(f"{device}: tunnel {tunnel} has no established IKE SA (`swanctl --initiate --child {tunnel}`)")
        elif (settings_changed_ago_s is not None and sa.established_s is not None
              and sa.established_s > settings_changed_ago_s + 1):
            lines.append(f"{device}: the IKE SA of tunnel {tunnel} was made {sa.established_s} s ago, before "
                         f"{STRONGSWAN_CONF} last changed ({settings_changed_ago_s:.0f} s ago): charon reads the "
                         "retransmission settings when it makes an IKE SA, so it still runs the old ones "
                         "(`swanctl --reload-settings`, then make the SA again)")
    return lines


def devices(plan: LabPlan) -> list[str]:
    """The on-premises VPN devices: the nodes that start tunnels and have some."""
    return [n for n, spec in plan.nodes.items() if able(spec.kind, Can.START_TUNNELS) and plan.tunnels_of(n)]


def _device_tunnels(plan: LabPlan, device: str) -> list[TunnelPlan]:
    return [t for t in plan.tunnels if t.device == device]


def check_retransmission(session: LabSession, plan: LabPlan) -> list[str]:
    runtime = session.adapters.runtime
    target = plan.target_for("kill", planned=False)
    lines = []
    for device in devices(plan):
        info = running_node(runtime, plan.lab, device)
        settings = retransmission_of(parse_settings(runtime.read_file(info.name, STRONGSWAN_CONF)))
        conns = parse_settings(runtime.read_file(info.name, SWANCTL_CONF)).get("connections", {})
        tunnels = [t.name for t in _device_tunnels(plan, device)]
        delays = {}
        for tunnel in tunnels:
            text = (conns.get(tunnel) or {}).get("dpd_delay") if isinstance(conns, dict) else None
            try:
                delays[tunnel] = duration_s(text) if text else None
            except ValueError as exc:
                raise LabError(f"{device}: {SWANCTL_CONF}: connection {tunnel}: dpd_delay {exc}") from None
        found = judge_retransmission(device, settings, delays, target)
        if not found:
            found = judge_sa_ages(device, tunnels, session.adapters.ike_for(info).list_sas(),
                                  _changed_ago_s(runtime, info.name, STRONGSWAN_CONF))
        lines += found
    return lines


def _changed_ago_s(runtime, container: str, path: str) -> float | None:
    """How long ago a node's file last changed, by the node's own clock (the engine may be remote)."""
    code, output = runtime.exec(container, ["stat", "-c", "%Y", path], timeout_s=10)
    now_code, now = runtime.exec(container, ["date", "+%s"], timeout_s=10)
    try:
        return float(now.strip()) - float(output.strip()) if code == 0 and now_code == 0 else None
    except ValueError:
        return None


# -- exercise 2: the device's proposals against Azure's rules ------------------------------------

# strongSwan's other spellings of the keywords lab/model/ipsec.py writes.
_ALIASES = {"sha": "sha1", "sha2_256": "sha256", "sha2_384": "sha384", "sha2_512": "sha512",
            "prfsha": "prfsha1", "prfsha2_256": "prfsha256", "prfsha2_384": "prfsha384",
            **{f"aes{bits}gcm{icv}": f"aes{bits}gcm16" for bits in (128, 192, 256) for icv in ("128", "")}}
_AEAD = re.compile(r"^(aes\d+gcm\d*|aes\d+ccm\d*|chacha20poly1305)$")
_GROUP = re.compile(r"^(modp\d+(s\d+)?|ecp\d+(bp)?|curve\d+|x\d+|none)$")
_ENCRYPTION = re.compile(r"^(aes\d*(ctr|gcm|ccm)?\d*|3des|des|blowfish\d*|camellia\d*|cast\d*|null|chacha20poly1305)$")


@dataclass(frozen=True)
class Transforms:
    """One proposal's algorithms by type (strongSwan keywords): every combination is offered."""
    encryption: tuple[str, ...]
    integrity: tuple[str, ...]       # for IKE with an AEAD cipher: the PRFs ("sha256" for prfsha256)
    groups: tuple[str, ...]          # "" for none (ESP without PFS)

    def combinations(self) -> set[tuple[str, str, str]]:
        return set(product(self.encryption, self.integrity or ("",), self.groups or ("",)))


def parse_proposal(text: str, ike: bool) -> Transforms:
    """A strongSwan proposal (`aes256-sha256-modp1024`) by algorithm type; keywords it can't place
    go with the integrity algorithms (where an unknown one matches nothing Azure takes)."""
    encryption, integrity, prfs, groups = [], [], [], []
    for token in (_ALIASES.get(t, t) for t in text.strip().lower().split("-") if t):
        if _GROUP.match(token):
            groups.append("" if token == "none" else token)
        elif token.startswith("prf"):
            prfs.append(token.removeprefix("prf"))
        elif _ENCRYPTION.match(token):
            encryption.append(token)
        else:
            integrity.append(token)
    aead = any(_AEAD.match(e) for e in encryption)
    # An IKE proposal's PRF: given, or (strongSwan) the integrity algorithms' own; an AEAD has only the PRF.
    hashes = prfs if ike and (aead or prfs) else integrity
    return Transforms(tuple(dict.fromkeys(encryption)), tuple(dict.fromkeys(hashes)), tuple(dict.fromkeys(groups)))


def allowed_combinations(proposals: str, ike: bool) -> set[tuple[str, str, str]]:
    return set().union(*(parse_proposal(p, ike).combinations() for p in proposals.split(",") if p.strip()))


def _azure_names(keyword: str, position: int, ike: bool) -> str:
    """The Azure names a strongSwan keyword stands for (lab/model/ipsec.py's own tables)."""
    table = [ENCRYPTION, INTEGRITY, GROUPS][position]
    found = [azure for azure, ours in table.items() if ours == keyword]
    if position == 2:   # the same group is DHGroupN for IKE and PFSN for ESP
        found = [name for name in found if name.startswith("PFS") != ike]
    return "/".join(found) if found else "none of Azure's"


def judge_proposals(device: str, tunnel: str, kind: str, configured: str | None, allowed: str,
                    policy: str, source: str = "") -> list[str]:
    """One line per proposal of `configured` (the device's, comma-separated) with no combination the
    gateway takes (`allowed`: what it accepts, as lab/model/ipsec.py renders it from Azure's rules)."""
    what = "IKE proposal" if kind == "ike" else "ESP proposal"
    if not configured:
        return [f"{device}: tunnel {tunnel} sets no {what.lower()}s, so strongSwan's defaults go out: "
                f"name what {policy} takes ({allowed})"]
    ike = kind == "ike"
    takes = allowed_combinations(allowed, ike)
    lines = []
    for text in (p.strip() for p in configured.split(",") if p.strip()):
        if text == "default":
            lines.append(f"{device}: tunnel {tunnel}'s {what} 'default' (strongSwan's own list) is not {policy}: "
                         f"name Azure's algorithms ({allowed})")
            continue
        offered = parse_proposal(text, ike)
        if offered.combinations() & takes:
            continue
        why = []
        for position, (label, values) in enumerate((("encryption", offered.encryption),
                                                    ("integrity/PRF" if ike else "integrity", offered.integrity),
                                                    ("DH group" if ike else "PFS group", offered.groups))):
            accepted = {c[position] for c in takes}
            if not set(values or ("",)) & accepted:
                def named(v: str) -> str:
                    return f"{v} ({_azure_names(v, position, ike)})" if v else "none"
                why.append(f"its {label} {', '.join(named(v) for v in values or ('',))}: it takes "
                           f"{', '.join(sorted(named(v) for v in accepted))}")
        reason = "; ".join(why) or f"no combination of its algorithms is one it lists: {allowed}"
        lines.append(f"{device}: tunnel {tunnel}'s {what} {text} is none {policy} allows ({reason})"
                     + (f"; {source}" if source else ""))
    return lines


def judge_ike_sas(device: str, tunnels: Sequence[TunnelPlan], sas: Sequence[IkeSaState]) -> list[str]:
    """A line for each of the device's tunnels without an established IKE SA with its gateway."""
    up = {sa.name for sa in sas if sa.state == "ESTABLISHED"}
    return [f"{device}: no IKE SA with gateway {t.gateway} on tunnel {t.name} (to {t.gateway_public_ip}); "
            "why is in charon's log on both ends (/var/log/charon.log)"
            for t in tunnels if t.name not in up]


def policy_of(tunnel: TunnelPlan) -> tuple[str, str]:
    """The policy the gateway applies to a tunnel, and where Azure documents it."""
    rules = azure_rules()
    if tunnel.ipsec_policy is not None:
        return "the connection's custom IPsec/IKE policy", rules.custom_policy.source
    return "Azure's default IPsec/IKE policy", rules.default_policy.source


SA_ON_ITS_WAY_S = 10.0


def check_proposals(session: LabSession, plan: LabPlan) -> list[str]:
    runtime = session.adapters.runtime
    lines: list[str] = []
    waiting: list[tuple[str, list[TunnelPlan], Any]] = []
    for device in devices(plan):
        info = running_node(runtime, plan.lab, device)
        conns = parse_settings(runtime.read_file(info.name, SWANCTL_CONF)).get("connections", {})
        tunnels = _device_tunnels(plan, device)
        found = []
        for t in tunnels:
            conn = conns.get(t.name) if isinstance(conns, dict) else None
            if not isinstance(conn, dict):
                found.append(f"{device}: {SWANCTL_CONF} has no connection {t.name}")
                continue
            offers = gateway_proposals(t.ipsec_policy)
            child = (conn.get("children") or {}).get(t.name) or {}
            found += judge_proposals(device, t.name, "ike", conn.get("proposals"), offers.ike, *policy_of(t))
            found += judge_proposals(device, t.name, "esp", child.get("esp_proposals") if isinstance(child, dict)
                                     else None, offers.esp, *policy_of(t))
        lines += found
        waiting.append((device, tunnels, session.adapters.ike_for(info)))

    def missing() -> list[str]:
        return [line for device, tunnels, ike in waiting for line in judge_ike_sas(device, tunnels, ike.list_sas())]

    # With every proposal right, a missing SA may be on its way (`swanctl --load-conns` initiates it).
    absent = missing()
    if absent and not lines:
        lifecycle.poll_until(lambda: not missing(), SA_ON_ITS_WAY_S, 0.5)
        absent = missing()
    return absent + lines


# -- exercise 3: a timed blackhole and its verdict --------------------------------------------------

BLACKHOLE_PROFILE = "fast"


@dataclass(frozen=True)
class GatewayShape:
    """What a VPN gateway gives each device: its mode, and how many tunnels to it."""
    name: str
    mode: str
    tunnels_per_device: int


def judge_blackhole(target: str, verdict: str, target_s: float, directions: Sequence[tuple[str, float | None]],
                    gateway: GatewayShape | None, unmeasured: Sequence[str] = ()) -> list[str]:
    """The verdict of one timed blackhole run: nothing when traffic came back within the target."""
    if verdict == "PASS":
        return []
    if verdict == "INVALID":
        why = "; ".join(unmeasured) or "no valid run"
        return [f"the timed blackhole run on {target} could not be measured ({why}): check again"]
    shown = ", ".join(f"{name}: {'not back' if s is None else f'{s:.2f} s'}" for name, s in directions)
    lines = [f"blackhole on {target}: {verdict}, traffic not back within the {target_s:g} s target ({shown})"]
    if gateway is not None and gateway.tunnels_per_device == 1:
        lines.append(f"gateway {gateway.name} runs {gateway.mode}: one tunnel from each device, to its one public IP, "
                     "no second path; the blackholed instance is alive, so VRRP keeps it active and the standby "
                     "never takes over: traffic is lost until the path is repaired")
    return lines


def gateway_shape(plan: LabPlan, instance: str) -> GatewayShape | None:
    owner = plan.instance_gateway(instance)
    if owner is None:
        return None
    name, gateway = owner
    per_device: dict[str, int] = {}
    for t in plan.tunnels:
        if t.gateway == name:
            per_device[t.device] = per_device.get(t.device, 0) + 1
    return GatewayShape(name, gateway.mode, min(per_device.values(), default=0))


def check_blackhole(session: LabSession, plan: LabPlan) -> list[str]:
    if plan.profile.name != BLACKHOLE_PROFILE:
        return [f"lab {plan.lab} runs profile {plan.profile.name}: this check times one blackhole run with the "
                f"{BLACKHOLE_PROFILE} profile (under {plan.profile.name}'s timers it would take minutes): "
                f"`lab up SCENARIO --profile {BLACKHOLE_PROFILE} --lab {plan.lab}`"]
    result = session.failover("blackhole", runs=1)
    return judge_blackhole(result.target, result.verdict, result.target_s,
                           [(d.name, d.rate_derived_s) for d in result.directions],
                           gateway_shape(plan, result.target), result.report.unmeasured)


# -- exercise 4: which path carries each prefix, and why --------------------------------------------

# FRR's selectionReason, as a person names the attribute.
ATTRIBUTES = {"Local Pref": "local preference", "AS Path": "AS path length", "Weight": "weight",
              "MED": "MED", "Origin": "origin", "Peer Type": "eBGP over iBGP", "Router ID": "router ID",
              "Older Path": "the older path", "IGP Metric": "IGP metric", "Neighbor IP": "neighbour address"}


def _attribute_values(reason: str, path: BgpPath) -> str | None:
    if reason == "Local Pref":
        return "100 (default)" if path.local_pref is None else str(path.local_pref)
    if reason == "Weight":
        return str(path.weight)
    if reason == "AS Path":
        return f"{len(path.as_path.split())} ASes ({path.as_path or 'none'})"
    return None


def circuit_sessions(plan: LabPlan) -> list:
    """The circuit's BGP sessions at its on-premises end (not the MSEE's)."""
    return [b for b in plan.bgp_sessions if b.carrier == EXPRESSROUTE and b.peering
            and not able(plan.nodes[b.node].kind, Can.EDGE_CIRCUITS)]


def choosing_between_carriers(plan: LabPlan) -> set[str]:
    """The routers that hold sessions over both ExpressRoute and the VPN: where the choice is made."""
    held: dict[str, set[str]] = {}
    for b in plan.bgp_sessions:
        held.setdefault(b.node, set()).add(b.carrier)
    return {node for node, kinds in held.items() if {EXPRESSROUTE, VPN} <= kinds}


def judge_paths(plan: LabPlan, rows: Sequence[PathRow], circuit: dict[str, str],
                bgp: dict[tuple[str, str], list[BgpPath] | str]) -> list[str]:
    """Each prefix the VPN carries while the circuit is up, at a router that chooses between them,
    with the attribute that decided it (`circuit`: each circuit link's session state; `bgp`: the
    paths each such router holds for the prefix, or why they could not be read)."""
    if not circuit:
        return [f"scenario {plan.scenario.name} has no ExpressRoute circuit: this check judges a circuit and a VPN"]
    if not any(state == "Established" for state in circuit.values()):
        states = ", ".join(f"{link}: {state}" for link, state in circuit.items())
        return [f"the circuit is down ({states}): the check judges the paths while it is up"]
    choosing = choosing_between_carriers(plan)
    lines = []
    for row in rows:
        if row.node not in choosing or VPN not in row.carrier.split("+"):
            continue
        via = ", ".join(row.via) or "?"
        line = f"{row.node}: {row.prefix} is carried by the VPN ({via}) while the circuit is up"
        paths = bgp.get((row.node, row.prefix), "not read")
        lines.append(f"{line}: {decided_by(plan, row.node, paths)}")
    return lines


def decided_by(plan: LabPlan, node: str, paths: list[BgpPath] | str) -> str:
    """The attribute that made BGP pick the VPN's path over the circuit's, with both values."""
    if isinstance(paths, str):
        return f"BGP's paths could not be read ({paths})"
    best = next((p for p in paths if p.best), None)
    if best is None:
        return "BGP holds no best path for it"
    circuit = [p for p in paths if not p.best and carriers(plan, node, [p.next_hop])[0] == {EXPRESSROUTE}]
    attribute = ATTRIBUTES.get(best.reason, best.reason or "?")
    if not circuit:
        return f"BGP holds no path over the circuit for it (best by {attribute})"
    beaten = circuit[0]
    mine, theirs = _attribute_values(best.reason, best), _attribute_values(best.reason, beaten)
    where = carriers(plan, node, [beaten.next_hop])[1][0]
    if mine is None:
        return f"BGP decided by {attribute} (FRR: {best.reason!r}) over the circuit's path ({where})"
    return f"BGP decided by {attribute}, {mine} on the VPN's path over {theirs} on the circuit's ({where})"


def check_paths(session: LabSession, plan: LabPlan) -> list[str]:
    status = session.status()
    states = {(r.node, r.peer): r.state for r in status.bgp}
    circuit = {b.peering: states.get((b.node, str(b.peer_address)), "not read") for b in circuit_sessions(plan)}
    rows = route_paths(plan, status.routes)
    choosing = choosing_between_carriers(plan)
    bgp: dict[tuple[str, str], list[BgpPath] | str] = {}
    for row in rows:
        if row.node in choosing and VPN in row.carrier.split("+"):
            try:
                bgp[(row.node, row.prefix)] = session.adapters.routes_for(
                    running_node(session.adapters.runtime, plan.lab, row.node)).bgp_paths(row.prefix)
            except LabError as exc:
                bgp[(row.node, row.prefix)] = str(exc)
    return judge_paths(plan, rows, circuit, bgp)


# Each exercise names its check here (exercises.yaml `check`); an unknown name is refused when the
# data loads, and a check no exercise uses too.
CHECKS: dict[str, Callable[[LabSession, LabPlan], list[str]]] = {
    "retransmission": check_retransmission,
    "proposals": check_proposals,
    "blackhole": check_blackhole,
    "paths": check_paths,
}

__all__ = ["CHECKS", "Exercise", "ExerciseRecord", "Started", "check", "exercises",
           "get_exercise", "pick_lab", "read_record", "render_copy", "start", "started_on"]
