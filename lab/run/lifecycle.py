"""`up`, `down` and `status` of a lab, composed from deploy stages and ports."""
from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from lab.render.deploy_plan import IMAGE, DeployPlan, plan_deploy
from lab.run.deploy import (
    create_networks,
    create_nodes,
    ensure_image,
    lab_labels,
    load_or_create_config_key,
    load_or_create_psks,
    load_plan_source,
    raise_if_dead,
    save_plan_source,
)
from lab.model import names
from lab.model.errors import LabError, WaitTimeout
from lab.model.kinds import ready_check
from lab.model.events import EventStream, LabDown, LabUp, Stage
from lab.run.locks import hold_lab
from lab.model.names import check_lab_name
from lab.model.schema import LabPlan
from lab.plan.checks import check_scenario
from lab.plan.load import load_plan
from lab.plan.resolve import resolve
from lab.render.configs import GUARD_RULES, guard_table, render_guard
from lab.plan.segments import plan_segments, split_host_subnets
from lab.run.ports import Adapters, ContainerInfo, ContainerRuntime
from lab.run.state import check_state_root, lab_dir, lab_files, make_lab_dir, remove_lab_files
from lab.run.status import LabStatus, collect_status

HEALTHY_WITHIN_S = 60.0
# One node's readiness check (its vtysh is bounded at 2 s); coreutils' timeout exits 124 at the bound.
READY_CHECK_WITHIN_S = 5.0
TIMED_OUT = 124
CONVERGED_WITHIN_S = 120.0
# Removing is repeated until the engine has shown nothing of the lab for a
# while: a create that was in flight when the user pressed Ctrl-C lands late.
GONE_FOR_S = 2.0
TEARDOWN_WITHIN_S = 60.0
UP_RUN_LABEL = "lab.up-run"


# The engine's kernel doesn't change while a process polls status: read it once.
_known_kernel_esp: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()


def read_status(lab: str, adapters: Adapters, rate_window_s: float = 0.0) -> LabStatus:
    status = collect_status(lab, adapters.runtime, adapters.ike_for, adapters.routes_for, adapters.links_for,
                            kernel_esp=_known_kernel_esp.get(adapters.runtime), rate_window_s=rate_window_s)
    if not status.host_kernel_esp.startswith("unknown"):
        _known_kernel_esp[adapters.runtime] = status.host_kernel_esp
    return status


def poll_until(done: Callable[[], bool], within_s: float, interval_s: float) -> bool:
    """Calls `done` every interval until it is true (True) or the time is up (False).

    Errors raised by `done` are not retried: a dead node fails at once.
    """
    retrying = Retrying(stop=stop_after_delay(within_s), wait=wait_fixed(interval_s),
                        retry=retry_if_result(lambda result: not result))
    try:
        return retrying(done)
    except RetryError:
        return False


def wait_for(what: str, check: Callable[[], list[str]], within_s: float, interval_s: float = 0.5) -> float:
    """Polls `check` (which returns what is still missing) until it returns nothing.

    Returns the seconds waited; on timeout raises WaitTimeout naming what was
    still missing at the last look.
    """
    start = time.monotonic()
    last: list[str] = []

    def nothing_missing() -> bool:
        nonlocal last
        last = check()
        return not last

    if not poll_until(nothing_missing, within_s, interval_s):
        raise WaitTimeout(f"{what} not reached within {within_s:.0f} s: {'; '.join(last[:5])}")
    return time.monotonic() - start


def wait_healthy(lab: str, runtime: ContainerRuntime, within_s: float) -> None:
    """Waits until every node runs and passes its kind's readiness check; a node that exited fails at once.

    The check runs here, while something waits, each node's until it passes: Docker's own
    healthcheck (an exec into every node every 2 s, for the lab's whole life) kept an idle lab at
    a fifth of a core (issue 18), so the nodes have none. A restarted node (a new pid) is checked again.
    """
    passed: set[tuple[str, int]] = set()

    def not_healthy() -> list[str]:
        raise_if_dead(lab, runtime)
        nodes = runtime.containers(lab_labels(lab))
        due = [c for c in nodes if c.status == "running" and (c.name, c.pid) not in passed]
        with ThreadPoolExecutor(max_workers=max(1, len(due))) as pool:
            answers = dict(zip((c.name for c in due), pool.map(lambda c: not_ready_because(runtime, c), due)))
        passed.update((c.name, c.pid) for c in due if answers[c.name] is None)
        return [f"{c.node} is {c.status}" if c.status != "running" else f"{c.node}: {answers[c.name]}"
                for c in nodes if c.status != "running" or answers.get(c.name)]

    wait_for("healthy nodes", not_healthy, within_s)


def not_ready_because(runtime: ContainerRuntime, c: ContainerInfo) -> str | None:
    """None when the node's readiness check passes, else what it said was missing."""
    try:
        code, output = runtime.exec(c.name, list(ready_check(c.kind)), timeout_s=READY_CHECK_WITHIN_S)
    except LabError as exc:
        return str(exc)
    if code == 0:
        return None
    if code == TIMED_OUT:
        return f"its readiness check did not answer within {READY_CHECK_WITHIN_S:.0f} s"
    said = output.strip().splitlines()
    return said[-1] if said else f"not ready (its check exited {code})"


def place_segments(plan: LabPlan, adapters: Adapters) -> LabPlan:
    """The plan with transport subnets that are free on the engine's host (the lab's own are kept)."""
    own = {plan.network_name(n): n for n in plan.scenario.networks}
    taken, reuse = split_host_subnets(own, adapters.host.routes(), adapters.runtime.network_subnets())
    return plan.model_copy(update={"segments": plan_segments(plan.scenario, plan.lab, taken, reuse)})


def up(
    plan: LabPlan,
    adapters: Adapters,
    events: EventStream | None = None,
    image: str = IMAGE,
    extra_labels: dict[str, str] | None = None,
    converge_within_s: float = CONVERGED_WITHIN_S,
) -> LabStatus:
    """Builds the lab (or completes a running one) and waits until it has converged; holds the lab.
    Its stages, and LabUp at the end, go to `events`."""
    events = events or EventStream()
    started = time.monotonic()
    with hold_lab(plan.lab, "up"):
        status = _up(plan, adapters, events, image, extra_labels, converge_within_s)
    events.publish(LabUp(plan.lab, status=status, took_s=time.monotonic() - started))
    return status


def _up(plan: LabPlan, adapters: Adapters, events: EventStream, image: str, extra_labels: dict[str, str] | None,
        converge_within_s: float) -> LabStatus:
    runtime = adapters.runtime
    events.stage(plan.lab, Stage.CHECKING_ENGINE)
    runtime.ping()
    image_id = ensure_image(runtime, image)
    # A repeated `up` that fails or is interrupted leaves the running lab as it was.
    existed = bool(runtime.lab_objects(lab_labels(plan.lab)))
    # A first `up` that fails removes only the files it wrote (not a psk.json filled in by hand).
    had_files = frozenset(f.name for f in lab_files(plan.lab).files)
    state_dir = make_lab_dir(plan.lab)
    # What this `up` makes carries its own mark: if it fails, it removes only that, never a lab of
    # the same name that another user (another state root, so another lock) brought up meanwhile.
    run = uuid.uuid4().hex[:12]
    extra_labels = {**(extra_labels or {}), UP_RUN_LABEL: run}
    try:
        # Two `up`s at once must not pick the same free subnets.
        with _placement_lock():
            events.stage(plan.lab, Stage.PLACING_NETWORKS, "on free transport subnets")
            plan = place_segments(plan, adapters)
            psks = load_or_create_psks(state_dir, [t.name for t in plan.tunnels])
            deploy: DeployPlan = plan_deploy(plan, psks, image=image, extra_labels=extra_labels, image_id=image_id,
                                             config_key=load_or_create_config_key(state_dir))
            # Before the first bridge exists, so no lab packet can ever be forwarded off the lab;
            # kept when whole, so its counters cover the lab's whole life.
            events.stage(plan.lab, Stage.INSTALLING_GUARD, f"nftables table inet {guard_table(plan.lab)}")
            repaired = ensure_guard(plan.lab, adapters)
            if repaired and existed:
                events.note(plan.lab, repaired)
            create_networks(deploy, runtime, events)
        create_nodes(deploy, runtime, events)

        events.stage(plan.lab, Stage.WAITING_HEALTHY)
        wait_healthy(plan.lab, runtime, HEALTHY_WITHIN_S)
        if existed:
            detach_stale_ports(plan, adapters)
        events.stage(plan.lab, Stage.WAITING_CONVERGED)
        wait_for("convergence", lambda: read_status(plan.lab, adapters).unconverged_reasons(), converge_within_s)
        save_plan_source(state_dir, plan)
        return read_status(plan.lab, adapters)
    except BaseException as exc:
        if existed or os.environ.get("LAB_KEEP_ON_FAILURE"):
            raise
        cause = str(exc) or exc.__class__.__name__
        with _uninterruptible():
            events.stage(plan.lab, Stage.REMOVING_FAILED_START, cause)
            try:
                _, left = teardown(plan.lab, adapters, run=run, keep_files=had_files)
            except LabError as cleanup:
                raise LabError(f"{cause}; and removing what was made failed: {cleanup}") from exc
        if left:
            raise LabError(f"{cause}; and these are left: "
                           f"{', '.join(left)} (`lab down --lab {plan.lab}` removes them)") from exc
        raise


def check_guard(lab: str, adapters: Adapters) -> tuple[dict[str, int], str | None]:
    """The lab's host guard as the host counts it, put back first when it is missing or incomplete
    (`nft flush ruleset`, a restart of the nftables service); with the one line that says so."""
    table = guard_table(lab)
    try:
        counters = adapters.host.counters(table)
    except LabError:
        counters = {}   # no such table
    if set(GUARD_RULES) <= set(counters):
        return counters, None
    adapters.host.apply_guard(table, render_guard(lab))
    return ({rule: 0 for rule in GUARD_RULES},
            f"the host's forwarding guard of lab {lab} was {'incomplete' if counters else 'missing'}: "
            f"re-applied (nftables table inet {table}; its counters start again from 0)")


def ensure_guard(lab: str, adapters: Adapters) -> str | None:
    """check_guard for a command that only needs the guard there: the line, or None when it was whole."""
    return check_guard(lab, adapters)[1]


def detach_stale_ports(plan: LabPlan, adapters: Adapters) -> list[str]:
    """Removes, from the lab's bridges, the ports of containers that are gone.

    A re-created or restarted node keeps its address and MAC, and the kernel
    tears the old network namespace down slowly (minutes, on a busy host):
    until then its port stays on the bridge, answers ARP for the node's
    address and draws the node's frames to a namespace with no daemon left.
    A bridge with a node we can't read (paused) is left alone.
    """
    live: set[int] = set()
    unread: set[str] = set()
    containers = adapters.runtime.containers(lab_labels(plan.lab))
    with ThreadPoolExecutor(max_workers=max(1, len(containers))) as pool:
        readings = dict(zip([c.node for c in containers], pool.map(_link_indexes(adapters), containers)))
    for c in containers:
        if c.status == "exited":
            continue    # an exited node has no port left to protect
        indexes = readings.get(c.node)
        if indexes is not None:
            live |= set(indexes.values())
        elif c.node in plan.nodes:
            unread |= {plan.segments[n].bridge for n in plan.nodes[c.node].links if n in plan.segments}
        else:
            return []   # a node this plan doesn't know, unread: its bridges are unknown, touch nothing
    return adapters.host.detach_stale_ports(plan.bridge_prefix, live, unread)


def _link_indexes(adapters: Adapters) -> Callable[[ContainerInfo], dict[str, int] | None]:
    def read(c: ContainerInfo) -> dict[str, int] | None:
        if c.status != "running":
            return None
        try:
            return adapters.links_for(c).link_indexes()
        except LabError:
            return None
    return read


@contextmanager
def _placement_lock() -> Iterator[None]:
    """Serialises subnet placement between `lab` processes of this machine (bounded wait)."""
    root = check_state_root(create=True)
    try:
        fd = os.open(root / ".placement.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise LabError(f"{root / '.placement.lock'}: {exc.strerror}") from None
    with os.fdopen(fd, "r+") as handle:
        def locked() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False  # another `up` is placing its networks

        if not poll_until(locked, TEARDOWN_WITHIN_S, 0.2):
            raise LabError(f"another `lab up` holds {root / '.placement.lock'}: try again")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _uninterruptible() -> Iterator[None]:
    """Ctrl-C waits until clean-up is over: a second one must not leave half a lab."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


KEPT = "kept: "


def teardown(lab: str, adapters: Adapters, run: str | None = None,
             keep_files: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """Removes every container and network of the lab (with `run`: only those one `up` made), then,
    once nothing of the lab is left, its guard and its files.

    Returns (removed, left): `left` names what could not be removed; an
    entry of `removed` starting with KEPT says what of the state folder was
    left and why. The guard goes last, once no lab bridge is left for it to
    protect. The state folder is checked before anything is removed.
    """
    runtime = adapters.runtime
    labels = {**lab_labels(lab), UP_RUN_LABEL: run} if run else lab_labels(lab)
    removed: list[str] = []
    files = lab_files(lab)   # refuses a state folder the lab didn't make before anything is removed
    with _uninterruptible():
        gone_since: float | None = None

        def gone_for_a_while() -> bool:
            """Removes what is there; true once the engine has shown nothing of the lab for GONE_FOR_S."""
            nonlocal gone_since
            removed.extend(runtime.remove_lab(labels))
            if runtime.lab_objects(labels):
                gone_since = None
            elif gone_since is None:
                gone_since = time.monotonic()
            return gone_since is not None and time.monotonic() - gone_since >= GONE_FOR_S

        poll_until(gone_for_a_while, TEARDOWN_WITHIN_S, 0.25)
        left = runtime.lab_objects(labels)
        if not left and not runtime.lab_objects(lab_labels(lab)):
            table = guard_table(lab)
            adapters.host.remove_guard(table)
            removed.append(f"nftables table inet {table}")
            gone, kept = remove_lab_files(files, keep_files)
            removed.extend(gone + ([KEPT + kept] if kept else []))
        return removed, left


def down(lab: str, adapters: Adapters, events: EventStream | None = None) -> list[str]:
    """Removes the lab and returns what was removed; raises naming what is left. Holds the lab."""
    events = events or EventStream()
    check_lab_name(lab, "lab")
    adapters.runtime.ping()
    with hold_lab(lab, "down"):
        events.stage(lab, Stage.REMOVING)
        removed, left = teardown(lab, adapters)
    if left:
        raise LabError(f"lab {lab}: could not remove {', '.join(left)}; run `lab down --lab {lab}` again")
    events.publish(LabDown(lab, removed=len([r for r in removed if not r.startswith(KEPT)])))
    return removed


def running_plan(lab: str, adapters: Adapters, default_scenario: str) -> LabPlan:
    """The plan of a running lab: from the scenario and profile `up` saved (a lab built from a
    YAML file included), else rebuilt from its containers' labels."""
    running = adapters.runtime.containers({"lab.name": lab})
    if not running:
        raise LabError(f"lab {lab} is not running: `lab up` first")
    source = load_plan_source(lab_dir(lab))
    # Saved state is checked as a scenario file is: a damaged one falls back to the labels.
    if source is not None and not check_scenario(source[0]):
        return resolve(*source, lab)
    labels = running[0].labels
    return load_plan(label_name(lab, labels, "lab.scenario") or default_scenario,
                     label_name(lab, labels, "lab.profile"), lab)


# Saved state: the labels that name a scenario or a profile, and the rule each value follows.
NAMED_BY_LABEL = {"lab.scenario": names.SHORT, "lab.profile": names.NODE}


def label_name(lab: str, labels: dict[str, str], label: str) -> str | None:
    """A scenario or profile name read back from a container's label, checked like one typed."""
    value = labels.get(label)
    problem = NAMED_BY_LABEL[label].problem(value) if value is not None else None
    if problem:
        raise LabError(f"lab {lab}: its {label} label is none this lab writes ({problem}): "
                       f"`lab down --lab {lab}` and `lab up` again")
    return value


def running_labs(adapters: Adapters) -> list[str]:
    """The labs on the engine; a label that is no valid lab name is someone else's container, never a path."""
    found = {c.labels.get("lab.name", "") for c in adapters.runtime.containers({"lab.name": ""})}
    return sorted(name for name in found if names.LAB.problem(name) is None)


def pick_lab(requested: str | None, adapters: Adapters, default: str) -> str:
    if requested:
        return check_lab_name(requested, "--lab")
    labs = running_labs(adapters)
    if len(labs) == 1:
        return labs[0]
    if not labs:
        return default
    raise LabError(f"several labs are running ({', '.join(labs)}): choose one with --lab")

