"""The console in a real browser on a real lab: `lab ui` as a user starts it, Debian's Chromium.

One lab (active-standby, fast profile) for the module, in the order a trainer goes: the page shows
every node; `break` kills the active instance and the page shows the other take over and the outage
while it happens; `repair` brings the lab back; a timed failover from the page ends in its verdict;
a capture comes down as a pcap. The screenshot in docs/ and the README is taken here, after the
timed run (LAB_SCREENSHOTS=1). Every page checks, at its end, that it asked nothing of any host but
the console's own (conftest.py).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from lab.ui.pytest_plugin import LabChoice

pytestmark = pytest.mark.integration

LAB_COMMAND = str(Path(sys.executable).with_name("lab"))
URL_LINE = re.compile(r"console at (http://127\.0\.0\.1:\d+/)")
# Bounds, from what the fast profile takes on a 2-core machine (about 1 s to hand over, 15 s to
# fail back, about 40 s for a timed run with its restore and failback).
TAKEOVER_MS = 20_000
REPAIR_MS = 60_000
FAILOVER_MS = 180_000


@pytest.fixture(scope="module")
def console(lab_factory):
    """A converged lab and `lab ui` serving it; stopped by SIGTERM, which it takes as Ctrl-C (a
    background job's Ctrl-C is ignored)."""
    session = lab_factory.start(LabChoice("active-standby", "fast"))
    process = subprocess.Popen([LAB_COMMAND, "ui", "--lab", session.name], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = process.stdout.readline()
        found = URL_LINE.search(line)
        assert found, f"lab ui printed {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        yield session, found.group(1).rstrip("/")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        lab_factory.stop(session)


def _state(origin: str) -> dict:
    with urllib.request.urlopen(f"{origin}/api/state", timeout=10) as response:
        return json.load(response)


def test_the_console_shows_breaks_repairs_times_and_captures(console, console_page, screenshot):
    session, origin = console
    cp = console_page(origin + "/")
    page = cp.page

    # Every node of the plan, drawn, and the lab converged.
    for node in session.plan.nodes:
        expect(page.locator(f"#node-{node}")).to_be_visible()
    expect(page.locator("#converged")).to_have_text("converged", timeout=REPAIR_MS)
    before = _state(origin)["active"]["azure-gw"]
    assert before == ["azure-gw-0"], before
    expect(page.locator("#node-azure-gw-0")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator("#chart polyline.delivery")).to_have_count(2, timeout=TAKEOVER_MS)

    # Break: kill the active instance. The standby takes over, and the outage is drawn as it happens.
    page.select_option("#break-fault", "kill")
    page.select_option("#break-target", "azure-gw-0")
    page.click("#break-button")
    expect(page.locator("#node-azure-gw-1")).to_have_class(re.compile(r"\bactive\b"), timeout=TAKEOVER_MS)
    expect(page.locator("#node-azure-gw-0")).to_have_class(re.compile(r"\bstopped\b"), timeout=TAKEOVER_MS)
    expect(page.locator("#outage")).to_contain_text("outage", timeout=TAKEOVER_MS)
    expect(page.locator("#faults")).to_contain_text("kill", timeout=TAKEOVER_MS)
    expect(page.locator("#operation")).to_contain_text("break kill on azure-gw-0: done")
    assert _state(origin)["active"]["azure-gw"] == ["azure-gw-1"]

    # Repair: the fault undone, back on the initial instance, converged again.
    page.click("#repair-button")
    expect(page.locator("#operation")).to_contain_text("repair: done", timeout=REPAIR_MS)
    expect(page.locator("#converged")).to_have_text("converged", timeout=REPAIR_MS)
    expect(page.locator("#faults")).to_have_text("", timeout=REPAIR_MS)
    expect(page.locator("#node-azure-gw-0")).to_have_class(re.compile(r"\bactive\b"), timeout=REPAIR_MS)
    expect(page.locator("#node-azure-gw-0")).to_have_class(re.compile(r"\brunning\b"))

    # A timed failover from the page: its verdict against the target and its source, its phases, its files.
    page.select_option("#failover-fault", "kill")
    page.click("#failover-button")
    expect(page.locator("#verdict")).to_have_text(re.compile(r"^(PASS|FAIL|INVALID)$"), timeout=FAILOVER_MS)
    expect(page.locator("#verdict-source")).to_contain_text("source:")
    assert page.locator("#phases tbody tr").count() >= 3
    links = page.locator("#report-files a")
    assert links.count() >= 3
    report = page.request.get(origin + links.filter(has_text="report.json").get_attribute("href"))
    assert report.ok and report.json()["fault"] == "kill"
    verdict = page.locator("#verdict").inner_text()
    assert verdict == report.json()["verdict"]
    expect(page.locator("#converged")).to_have_text("converged", timeout=REPAIR_MS)
    screenshot(page, "console")

    # A capture, downloaded as a pcap.
    page.select_option("#capture-node", "onprem-0")
    page.fill("#capture-seconds", "2")
    with page.expect_download(timeout=30_000) as download:
        page.click("#capture-button")
    path = download.value.path()
    data = Path(path).read_bytes()
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"), data[:4]
    expect(page.locator("#capture-status")).to_contain_text("bytes")
    cp.assert_only_local()
