"""The pytest plugin as a user meets it: examples/ run by pytest in its own process, on the real
engine, its one lab brought up, timed, broken, repaired and taken down by the plugin."""
import os
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Up (about a minute on 2 cores), two timed failovers, a break and a repair: well under this.
WITHIN_S = 1200


def test_the_example_project_passes_two_fails_one_with_its_breakdown_and_leaves_no_lab(adapters, state_dir,
                                                                                      tmp_path):
    prefix = f"plugin-{uuid.uuid4().hex[:4]}"
    junit, results = tmp_path / "junit.xml", tmp_path / "results"
    # The project's own ini (profiles/branch-fast.yaml: the fast profile's timers); the test session's
    # state folder, inherited through LAB_STATE_DIR.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "--lab-require-engine",
         f"--junitxml={junit}", "--lab-results", str(results), "-o", f"lab_prefix={prefix}"],
        cwd=EXAMPLES, capture_output=True, text=True, timeout=WITHIN_S, env=os.environ.copy())
    out = done.stdout
    print(out)   # what a user sees (pytest -rP shows it)
    assert done.returncode == 1, out[-3000:] + done.stderr[-2000:]
    assert re.search(r"=+ 1 failed, 2 passed in ", out), out[-3000:]
    assert "FAILED tests/test_branch_failover.py::test_a_target_no_gateway_meets_fails_and_shows_where_the_time_went" \
        in out

    # The failure shows the verdict against the target it asked for, each direction and each phase.
    section = out[out.index("- lab failover 1: kill on azure-gw-0 -"):]
    assert "kill on azure-gw-0: FAIL, target 0.05 s (asked for; the profile's is 4 s)" in section
    for name in ("branch-pc → azure-vm", "azure-vm → branch-pc"):
        assert re.search(rf"{name}\s+rate-derived\s+\d+\.\d\d s\s+loss-derived\s+\d+\.\d\d s\s+lost \d+", section), \
            section[:2000]
    assert "breakdown of run 1 (seconds after the fault):" in section
    for phase in ("detected", "public IP moved", "IKE re-established", "BGP Established", "traffic restored"):
        assert re.search(rf"^  {phase}\s+\d+\.\d\d s", section, re.M), (phase, section[:2000])

    # JUnit: each failover's figures as properties of its test case, and the report files where they say.
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    kill = {p.get("name"): p.get("value")
            for p in cases["test_losing_the_active_instance_converges_within_ten_seconds"].iter("property")}
    assert kill["lab.failover.1.fault"] == "kill on azure-gw-0" and kill["lab.failover.1.target_s"] == "4"
    assert kill["lab.failover.1.verdict"] in ("PASS", "FAIL")
    assert 0 < float(kill["lab.failover.1.rate_derived_s"]) < 10
    for name in ("branch-pc → azure-vm", "azure-vm → branch-pc"):
        assert float(kill[f"lab.failover.1.{name}.rate_derived_s"]) > 0
        assert int(kill[f"lab.failover.1.{name}.lost"]) > 0
    folder = Path(kill["lab.failover.1.folder"])
    assert folder.parent.parent == results and (folder / "summary.md").is_file() and (folder / "report.json").is_file()
    demo = {p.get("name"): p.get("value")
            for p in cases["test_a_target_no_gateway_meets_fails_and_shows_where_the_time_went"].iter("property")}
    assert (demo["lab.failover.1.verdict"], demo["lab.failover.1.target_s"]) == ("FAIL", "0.05")

    # Nothing of the lab is left: containers, networks, the host's guard, its state folder.
    left = [n for n in adapters.runtime.lab_objects({"lab.name": ""}) if prefix in n]
    assert left == []
    assert not [g for g in adapters.host.guards() if prefix in g]
    assert not [p.name for p in state_dir.iterdir() if p.name.startswith(prefix)]
