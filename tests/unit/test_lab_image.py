"""The suite is not configurable by accident: another LAB_IMAGE must not change what the unit tests see."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_setting_lab_image_does_not_break_the_unit_tests():
    # LAB_IMAGE is read when lab.deploy is imported, so only a fresh process shows its effect.
    env = {**os.environ, "LAB_IMAGE": "registry.example/someone-else:9.9"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/unit", "tests/golden",
         "tests/errors", "--deselect", "tests/unit/test_lab_image.py::test_setting_lab_image_does_not_break_the_unit_tests"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
