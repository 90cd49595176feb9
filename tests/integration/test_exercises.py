"""`lab exercise`, through the real lab, as a trainee runs it: for each exercise `start`, `check` red
(exit 1, naming the problem), the printed `solution` pasted into bash as printed, `check` green.

Every command is the installed `lab` in a subprocess. Each exercise runs on a lab of its own (its
scenario and profile differ), taken down at the end of its test, whatever happened. Budget: about
3.5 minutes in all, most of it exercise 3's two timed blackhole runs (docs/exercises/README.md)."""
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.run.state import lab_dir
from lab.training.exercises import RECORD_FILE, SCENARIO_COPY, get_exercise

from .conftest import SESSION

BIN = Path(sys.executable).parent
LAB = str(BIN / "lab")
# What the red check must name, per exercise: the problem the weakening made.
NAMES_THE_PROBLEM = {
    1: ["strongSwan's defaults", "over the unplanned target of 90 s"],
    2: ["no IKE SA with gateway azure-gw", "IKE proposal aes256-sha256-modp2048", "DHGroup14"],
    3: ["runs active-standby: one tunnel", "traffic is lost until the path is repaired"],
    4: ["is carried by the VPN", "while the circuit is up", "decided by local preference", "over 50 on the circuit's"],
}
TIMES: dict[str, float] = {}


def lab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def paste(script: str) -> subprocess.CompletedProcess:
    """The solution as a trainee pastes it: bash, `lab` on the PATH, stopping at the first failure."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=300, env=env)


def timed(key: str, call, *args, **kwargs):
    started = time.monotonic()
    try:
        return call(*args, **kwargs)
    finally:
        TIMES[key] = time.monotonic() - started


@pytest.fixture(scope="module", autouse=True)
def report_times(state_dir, adapters):
    """The state folder and engine of the suite; each step's time printed at the end (-s shows it)."""
    yield
    for key, seconds in sorted(TIMES.items()):
        print(f"exercise timing: {key}: {seconds:.1f} s")


# Exercise 3 (about 2 min: a timed blackhole on each scenario) runs in make test-all, beside the
# sweep that times active/standby's blackhole; its judging is in the unit tests.
@pytest.mark.parametrize("number", [1, 2, pytest.param(3, marks=pytest.mark.sweep), 4])
def test_exercise_start_check_solution_check(number):
    exercise = get_exercise(number)
    name = f"ex{number}-{SESSION.removeprefix('pytest-')}"
    try:
        started = timed(f"{number} start", lab, "exercise", "start", str(number), "--lab", name)
        assert started.returncode == 0, started.stderr[-2000:]
        assert exercise.title in started.stdout and f"lab exercise check --lab {name}" in started.stdout
        folder = lab_dir(name)
        assert stat.S_IMODE((folder / RECORD_FILE).stat().st_mode) == 0o600
        assert str(folder / SCENARIO_COPY) in started.stdout and (folder / SCENARIO_COPY).is_file()

        red = timed(f"{number} check (red)", lab, "exercise", "check", "--lab", name)
        assert red.returncode == 1, red.stdout + red.stderr[-2000:]
        for words in NAMES_THE_PROBLEM[number]:
            assert words in red.stdout, red.stdout

        solution = lab("exercise", "solution", "--lab", name)
        assert solution.returncode == 0, solution.stderr
        assert solution.stdout.strip() == "\n".join(exercise.solution_lines(name))
        pasted = timed(f"{number} solution", paste, solution.stdout)
        assert pasted.returncode == 0, pasted.stdout[-1000:] + pasted.stderr[-2000:]

        green = timed(f"{number} check (green)", lab, "exercise", "check", "--lab", name)
        assert green.returncode == 0, green.stdout + green.stderr[-2000:]
        assert green.stdout.strip() == f"solved: exercise {number} ({exercise.title}) on lab {name}: no problem left"
    finally:
        down = timed(f"{number} down", lab, "down", "--lab", name)
        assert down.returncode == 0, down.stderr[-2000:]
    # The exercise's files went with the lab.
    assert not lab_dir(name).exists()
