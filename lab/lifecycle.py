"""`up`, `down` and `status` of a lab, composed from deploy stages and ports."""
from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Callable

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from .deploy import (
    IMAGE,
    DeployPlan,
    check_host,
    create_networks,
    create_nodes,
    ensure_image,
    lab_labels,
    load_or_create_psks,
    plan_deploy,
    raise_if_dead,
    remove_lab,
    state_root,
    write_configs,
)
from .errors import LabError, WaitTimeout
from .hostcheck import kernel_esp_support
from .model import LabPlan
from .ports import ContainerRuntime
from .status import LabStatus, collect_status, not_ready
from .wiring import Adapters

Progress = Callable[[str], None]
HEALTHY_WITHIN_S = 60.0
CONVERGED_WITHIN_S = 120.0


@lru_cache(maxsize=1)
def _host_kernel_esp() -> str:
    """Read once: the host kernel doesn't change while a convergence wait polls status."""
    return kernel_esp_support().summary


def read_status(lab: str, adapters: Adapters) -> LabStatus:
    return collect_status(
        lab,
        adapters.runtime,
        adapters.ike_for,
        adapters.routes_for,
        adapters.links_for,
        host_kernel_esp=_host_kernel_esp(),
    )


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
    """Waits until every node runs and passes its healthcheck; a node that exited fails at once."""

    def not_healthy() -> list[str]:
        raise_if_dead(lab, runtime)
        return [f"{c.node} is {c.health or c.status}" for c in runtime.containers(lab_labels(lab))
                if not_ready(c.status, c.health)]

    wait_for("healthy nodes", not_healthy, within_s)


def up(
    plan: LabPlan,
    adapters: Adapters,
    progress: Progress,
    image: str = IMAGE,
    extra_labels: dict[str, str] | None = None,
    converge_within_s: float = CONVERGED_WITHIN_S,
) -> LabStatus:
    runtime = adapters.runtime
    progress("checking the Docker engine")
    runtime.ping()
    image_id = ensure_image(runtime, image)
    progress("checking lab subnets against the host's routes and Docker networks")
    check_host(plan, runtime, adapters.host_routes())
    state_dir = state_root() / plan.lab
    created = False
    try:
        psks = load_or_create_psks(state_dir, [t.name for t in plan.tunnels])
        deploy: DeployPlan = plan_deploy(plan, state_dir, psks, image=image, extra_labels=extra_labels,
                                              image_id=image_id)
        progress(f"writing configs to {state_dir}")
        write_configs(deploy)
        created = True
        create_networks(deploy, runtime, progress)
        create_nodes(deploy, runtime, progress)

        progress("waiting for daemons to be healthy")
        wait_healthy(plan.lab, runtime, HEALTHY_WITHIN_S)
        progress("waiting for IKE and BGP to converge")
        wait_for("convergence", lambda: read_status(plan.lab, adapters).unconverged_reasons(), converge_within_s)
        return read_status(plan.lab, adapters)
    except BaseException:
        if created and not os.environ.get("LAB_KEEP_ON_FAILURE"):
            progress("start-up failed: removing what was created")
            remove_lab(plan.lab, runtime, state_dir)
        raise


def down(lab: str, adapters: Adapters) -> list[str]:
    adapters.runtime.ping()
    return remove_lab(lab, adapters.runtime, state_root() / lab)


def running_labs(adapters: Adapters) -> list[str]:
    return sorted({c.labels.get("lab.name", "") for c in adapters.runtime.containers({"lab.name": ""})} - {""})


def pick_lab(requested: str | None, adapters: Adapters, default: str) -> str:
    if requested:
        return requested
    labs = running_labs(adapters)
    if len(labs) == 1:
        return labs[0]
    if not labs:
        return default
    raise LabError(f"several labs are running ({', '.join(labs)}): choose one with --lab")

