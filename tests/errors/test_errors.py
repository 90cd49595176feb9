"""Bad topologies: each file names the one-line message it must produce.

A case is either a whole file (for what isn't a scenario at all) or a change
to a built-in scenario (`base`, default active-standby; `set` / `delete` by
dotted path), so the cases stay true to the scenarios as they grow.
"""
from importlib import resources
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lab.ui.cli import app
from lab.model.errors import TopologyError
from lab.plan.load import load_scenario

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*.yaml"))


PATCH_KEYS = {"base", "set", "delete"}


def _parent(document, dotted: str):
    *path, last = dotted.split(".")
    for key in path:
        document = document[int(key)] if isinstance(document, list) else document[key]
    return document, int(last) if isinstance(document, list) else last


def scenario_file(path: Path, tmp_path: Path) -> Path:
    """The file to load: the case itself, or the default scenario with the case's change."""
    try:
        case = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return path
    if not isinstance(case, dict) or not set(case) <= PATCH_KEYS:
        return path
    base = case.get("base", "active-standby")
    scenario = yaml.safe_load((resources.files("lab") / "scenarios" / f"{base}.yaml").read_text())
    for dotted in case.get("delete", []):
        parent, key = _parent(scenario, dotted)
        del parent[key]
    for dotted, value in case.get("set", {}).items():
        parent, key = _parent(scenario, dotted)
        parent[key] = value
    built = tmp_path / path.name
    built.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return built


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect:' line"
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_topology_is_refused_with_the_field_named(path, tmp_path):
    with pytest.raises(TopologyError) as caught:
        load_scenario(str(scenario_file(path, tmp_path)))
    assert expected(path) in str(caught.value)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_cli_prints_one_line_and_no_traceback(path, tmp_path):
    # Validation comes before any engine is contacted: this would fail
    # differently (no engine) if `up` tried to create anything first.
    result = CliRunner().invoke(app, ["up", str(scenario_file(path, tmp_path))], env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert expected(path) in lines[0]
    assert "Traceback" not in result.output


def test_unknown_scenario_name_lists_the_known_ones():
    with pytest.raises(TopologyError, match="unknown scenario .*active-standby"):
        load_scenario("active-passive")


def test_missing_engine_gets_one_line():
    result = CliRunner().invoke(app, ["status"], env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.exit_code == 2
    assert "no Docker engine answers" in result.output
    assert "Traceback" not in result.output
