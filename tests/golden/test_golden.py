"""Golden files: a scenario and profile in, every node's rendered configs out.

The default scenario with its own (azure) profile has no case here: its
rendered configs are committed as compose/active-standby/, which
tests/unit/test_compose.py holds to the renderers byte for byte.
"""
import difflib
from pathlib import Path

import pytest
import yaml

from lab.render.deploy_plan import plan_deploy
from lab.plan.load import load_plan

HERE = Path(__file__).parent
CASES = sorted(p.name for p in HERE.iterdir() if (p / "case.yaml").exists())
# A fixed stand-in key: golden files must be stable, and real keys never land in git.
TEST_PSK = "dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA="


def rendered(case: str) -> dict[str, str]:
    spec = yaml.safe_load((HERE / case / "case.yaml").read_text())
    plan = load_plan(spec["scenario"], spec.get("profile"))
    deploy = plan_deploy(plan, {t.name: TEST_PSK for t in plan.tunnels})
    return {f"{spec.hostname}/{f.path}": f.text for spec in deploy.nodes for f in spec.files}


@pytest.mark.parametrize("case", CASES)
def test_golden(case, request):
    expected_dir = HERE / case / "expected"
    actual = rendered(case)
    if request.config.getoption("--regen-golden"):
        for rel, text in actual.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_text(text)
    expected = {str(p.relative_to(expected_dir)): p.read_text() for p in expected_dir.rglob("*") if p.is_file()}
    assert sorted(actual) == sorted(expected), "set of rendered files differs (run pytest --regen-golden)"
    diffs = []
    for rel in sorted(actual):
        if actual[rel] != expected[rel]:
            diffs.extend(difflib.unified_diff(expected[rel].splitlines(), actual[rel].splitlines(),
                                              f"expected/{rel}", f"rendered/{rel}", lineterm=""))
    assert not diffs, "\n".join(diffs)
