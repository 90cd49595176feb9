"""The README and docs/*.md point only at things that exist: every relative link at a file (and, with
#anchor, at one of its headings), every repository path quoted as code at a file or folder. A module
that moves without its pages following fails here, not in a newcomer's hands."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# A path into the repository, quoted whole: `lab/failover/runner.py`, `docs/figures/`.
REPO_PATH = re.compile(r"(?:lab|scripts|tests|images|docs)/[\w./-]*")


def prose(page: Path) -> str:
    return FENCE.sub("", page.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(page)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(CODE.sub("", prose(page))) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, broken


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_quoted_repository_path_exists(page):
    quoted = [c for c in CODE.findall(prose(page)) if REPO_PATH.fullmatch(c)]
    missing = [c for c in quoted if not (ROOT / c).exists()]
    assert not missing, missing


def test_every_docs_page_is_reached_from_the_readme():
    reached, todo = set(), [(ROOT / "README.md").resolve()]
    while todo:
        page = todo.pop()
        if page in reached or page.suffix != ".md" or not page.is_file():
            continue
        reached.add(page)
        todo += [(page.parent / t.partition("#")[0]).resolve() for t in links(page) if t.partition("#")[0]]
    unreached = [p.name for p in PAGES if p.resolve() not in reached]
    assert not unreached, unreached


def test_the_readme_sets_up_with_two_commands_in_order():
    block = re.search(r"^## Set-up\n+```sh\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    assert block, "README.md: no ## Set-up section with a sh block"
    commands = [line.split("#")[0].strip() for line in block[1].splitlines() if line.strip()]
    assert commands == ["make lab-up", "make test"]


def test_slug_follows_github():
    assert slug("Scenario `active-standby` (the default)") == "scenario-active-standby-the-default"
    assert slug("What a user types can't harm the host") == "what-a-user-types-cant-harm-the-host"
    assert slug("ESP throughput (`make bench-throughput`)") == "esp-throughput-make-bench-throughput"
