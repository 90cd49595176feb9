"""Every failover figure the README publishes comes from a committed report, and the current code,
re-analysing that report's raw probes, still gives the README's figure."""
import re
from pathlib import Path

import pytest

from lab.failover.published import FIGURES, reanalyse

README = Path(__file__).resolve().parents[2] / "README.md"
# A published row: | case | profile (target) | N | → median (min–max) | ← median (min–max) | restore | verdict | link |
ROW = re.compile(r"^\|(?P<cells>.*\(docs/figures/(?P<name>[\w-]+)/summary\.md\).*)\|\s*$")
FIGURE = re.compile(r"\*\*(?P<median>\d+\.\d+|never)\*\*")


def published_rows():
    rows = []
    for line in README.read_text().splitlines():
        found = ROW.match(line)
        if found:
            rows.append((found["name"], [c.strip() for c in found["cells"].split("|")]))
    return rows


def test_the_readme_publishes_figures_from_committed_reports():
    names = [name for name, _ in published_rows()]
    assert len(names) >= 10 and len(set(names)) == len(names)
    for name in names:
        assert (FIGURES / name / "report.json").is_file(), name


def _median(cell: str) -> float | None:
    found = FIGURE.search(cell)
    assert found, cell
    return None if found["median"] == "never" else float(found["median"])


@pytest.mark.parametrize("name, cells", published_rows(), ids=[name for name, _ in published_rows()])
def test_each_published_figure_is_what_its_report_gives_today(name, cells):
    figures = reanalyse(FIGURES / name / "report.json")
    n, forward, backward, restore = cells[2], cells[3], cells[4], cells[5]
    directions = list(figures.failover)
    valid = figures.failover[directions[0]]
    assert n == f"{valid.n}" + (f" ({valid.invalid} invalid)" if valid.invalid else ""), (n, valid)
    for cell, direction in ((forward, directions[0]), (backward, directions[1])):
        median = figures.failover[direction].median
        assert _median(cell) == (None if median is None else pytest.approx(median, abs=0.005)), (direction, cell)
    restores = [s.median for s in figures.restore.values()]
    worst = None if None in restores or not restores else max(restores)
    assert _median(restore) == (None if worst is None else pytest.approx(worst, abs=0.005)), restore
