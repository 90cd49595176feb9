"""The browser fixtures themselves, on tiny pages from Python's http.server on 127.0.0.1: no lab."""
import os
import re
import struct
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

HERE = Path(__file__).parent
# Outside addresses that nothing can answer: a non-routable private address and a reserved name.
# Neither is ever reached: the route aborts both, and the dead proxy would refuse them anyway.
OUTSIDE_IMG = "http://10.255.255.1/x.png"
OUTSIDE_FETCH = "http://example.invalid/"
OUTSIDE_WS = "ws://example.invalid/socket"
SSE_HOLD_S = 5   # the event stream stays open this long after its last event


@pytest.fixture(autouse=True)
def no_committed_screenshots(monkeypatch):
    """Before `screenshot` reads it (autouse comes first): these tests never rewrite docs/screenshots."""
    monkeypatch.delenv("LAB_SCREENSHOTS", raising=False)


PAGES = {
    "outside.html": f"""<!doctype html><title>outside</title>
<p id=img>loading</p><p id=fetch>loading</p><p id=ws>loading</p>
<img src="{OUTSIDE_IMG}" onerror="document.getElementById('img').textContent='img failed'">
<script>
fetch("{OUTSIDE_FETCH}").then(() => document.getElementById('fetch').textContent = 'fetched',
                              () => document.getElementById('fetch').textContent = 'fetch failed');
const ws = new WebSocket("{OUTSIDE_WS}");
ws.onclose = () => document.getElementById('ws').textContent = 'ws closed';
</script>""",
    "local.html": """<!doctype html><title>local</title>
<link rel=icon href="data:,"><link rel=stylesheet href="/style.css">
<h1>Harness</h1><button id=go>Go</button><p id=out>idle</p><p id=events>none</p>
<img src="/dot.png" alt="">
<script src="/app.js"></script>""",
    "style.css": "body { font-family: 'DejaVu Sans', sans-serif; } #out { color: #036; }",
    # The answer comes late, so reading it must wait for it; the events come over server-sent events.
    "app.js": """document.getElementById('go').addEventListener('click', () =>
  setTimeout(() => document.getElementById('out').textContent = 'clicked', 400));
const es = new EventSource('/events');
es.onmessage = (e) => { document.getElementById('events').textContent = e.data;
                        if (e.data === 'tick 3') es.close(); };""",
    "errors.html": """<!doctype html><title>errors</title>
<script>console.error('bad thing');</script><script>throw new Error('boom');</script>""",
}
# A 1x1 PNG, so the page has a local image to load.
DOT_PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f8cf000003010100c9fe92ef0000000049454e44ae426082")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """http://127.0.0.1:PORT serving PAGES, and /events: three server-sent events, then held open."""
    root = tmp_path_factory.mktemp("site")
    for name, text in PAGES.items():
        (root / name).write_text(text)
    (root / "dot.png").write_bytes(DOT_PNG)
    stop = threading.Event()

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):   # quiet: pytest shows stderr of failing tests only
            pass

        def do_GET(self):
            if self.path != "/events":
                return super().do_GET()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for n in (1, 2, 3):
                self.wfile.write(f"data: tick {n}\n\n".encode())
                self.wfile.flush()
            # Held open: the page sees tick 3 only if the stream reaches it before the response ends.
            stop.wait(SSE_HOLD_S)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_outside_requests_are_blocked_and_recorded(console_page, site):
    cp = console_page(f"{site}/outside.html")
    expect(cp.page.locator("#img")).to_have_text("img failed")
    expect(cp.page.locator("#fetch")).to_have_text("fetch failed")
    expect(cp.page.locator("#ws")).to_have_text("ws closed")

    assert sorted(cp.take_outside()) == sorted([OUTSIDE_IMG, OUTSIDE_FETCH, OUTSIDE_WS])
    # Aborted by the route (blocked by client), not left to time out or to the proxy.
    for url in (OUTSIDE_IMG, OUTSIDE_FETCH):
        assert cp.failures[url].startswith("net::ERR_BLOCKED_BY_CLIENT"), cp.failures
    assert cp.requests == [f"{site}/outside.html"]
    # Chromium logs each blocked load; taken, they don't fail the test.
    errors = cp.take_errors()
    assert errors and all("ERR_BLOCKED_BY_CLIENT" in e or "WebSocket" in e for e in errors), errors


def test_local_page_passes_and_locators_wait(console_page, site):
    cp = console_page(f"{site}/local.html")
    cp.page.get_by_role("button", name="Go").click()
    # The text changes 400 ms after the click: the locator waits for it.
    expect(cp.page.locator("#out")).to_have_text("clicked")
    assert cp.page.locator("#out").text_content() == "clicked"
    # Server-sent events stream through the route: tick 3 arrives while the response is still open.
    expect(cp.page.locator("#events")).to_have_text("tick 3", timeout=(SSE_HOLD_S - 2) * 1000)

    cp.assert_only_local()
    assert cp.outside() == []
    assert {f"{site}/{p}" for p in ("local.html", "style.css", "app.js", "dot.png", "events")} <= set(cp.requests)
    # The one failure: the page's own es.close() after tick 3 ends the stream.
    assert cp.errors == [] and cp.failures == {f"{site}/events": "net::ERR_ABORTED"}, (cp.errors, cp.failures)


def test_errors_are_collected(console_page, site):
    cp = console_page(f"{site}/errors.html")
    # Both came while the page loaded, so they are in by the time goto returns.
    errors = cp.take_errors()
    assert any(e.startswith("console.error: bad thing") for e in errors), errors
    assert any(e.startswith("uncaught: boom") for e in errors), errors


def test_console_page_takes_only_127_0_0_1(console_page):
    for url in ("http://localhost:8000/", "https://127.0.0.1:8000/", "http://127.0.0.1/", "http://10.0.0.1:80/"):
        with pytest.raises(ValueError, match="is not http://127.0.0.1:PORT"):
            console_page(url)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_screenshot_is_a_png(console_page, site, screenshot, tmp_path):
    cp = console_page(f"{site}/local.html")
    expect(cp.page.locator("#events")).to_have_text("tick 3")
    path = screenshot(cp.page, "harness")
    assert path == tmp_path / "harness.png"
    width, height = png_size(path)
    assert width == 1280 and height >= 800
    with pytest.raises(ValueError, match="screenshot name"):
        screenshot(cp.page, "../harness")


def test_browser_runs_with_the_flags(chromium_browser, dead_proxy):
    """The flags reach Chromium, with a fresh profile: chrome://version shows its command line."""
    page = chromium_browser.new_page()
    try:
        page.goto("chrome://version")
        command_line = page.locator("#command_line").text_content()
        profile = page.locator("#profile_path").text_content()
    finally:
        page.close()
    for flag in ("--headless", "--no-sandbox", "--disable-background-networking", "--disable-quic",
                 "--disable-component-update", "--disable-sync", f"--proxy-server={dead_proxy}"):
        assert flag in command_line.split(), (flag, command_line)
    assert re.search(r"/playwright_chromiumdev_profile-\w+", profile), profile


def run_copy(root: Path, test_source: str, env: dict[str, str], chromium: str | None = None) -> str:
    """Runs test_source beside a copy of conftest.py in root/tests/browser (root stands for the repo)."""
    folder = root / "tests" / "browser"
    folder.mkdir(parents=True)
    conftest = (HERE / "conftest.py").read_text()
    if chromium:
        line = 'CHROMIUM = Path("/usr/bin/chromium")'
        assert line in conftest
        conftest = conftest.replace(line, f"CHROMIUM = Path({chromium!r})")
    (folder / "conftest.py").write_text(conftest)
    (folder / "test_copy.py").write_text(test_source)
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "LAB_SCREENSHOTS")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "-p", "no:lab", str(folder)], capture_output=True, text=True, timeout=60,
                         cwd=root, env={**base, **env})
    return f"exit {run.returncode}\n{run.stdout}{run.stderr}"


def test_a_bad_page_fails_its_test_and_screenshots_go_to_docs(tmp_path):
    """A page's error or outside request fails a test that passed, at teardown; LAB_SCREENSHOTS=1 writes docs/."""
    (tmp_path / "page.html").write_text(f"<!doctype html><title>wait</title><h1>Copy</h1><script>"
                                        f"console.error('left over');"
                                        f"fetch('{OUTSIDE_FETCH}').catch(() => document.title = 'done');</script>")
    out = run_copy(tmp_path, """
import functools, http.server, threading
import pytest
from playwright.sync_api import expect

@pytest.fixture(scope="module")
def site():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=%r)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()

def test_bad(console_page, site):
    cp = console_page(site + "/page.html")
    expect(cp.page).to_have_title("done")

def test_shot(console_page, site, screenshot):
    cp = console_page(site + "/page.html")
    expect(cp.page).to_have_title("done")
    cp.take_errors(), cp.take_outside()
    screenshot(cp.page, "copy")
""" % str(tmp_path), {"LAB_SCREENSHOTS": "1"})
    assert out.startswith("exit 1\n") and re.search(r"\b2 passed, 1 error\b", out), out
    assert "ERROR at teardown of test_bad" in out, out
    assert "console.error: left over" in out and f"requests outside it: ['{OUTSIDE_FETCH}']" in out, out
    assert png_size(tmp_path / "docs" / "screenshots" / "copy.png")[0] == 1280


@pytest.mark.parametrize("ci", ["", "true"])
def test_missing_chromium_skips_here_and_fails_in_ci(tmp_path, ci):
    out = run_copy(tmp_path, "def test_any(chromium_browser):\n    pass\n", {"CI": ci} if ci else {},
                   chromium=str(tmp_path / "no-chromium"))
    assert "is missing: run `bash scripts/ensure-browser.sh`" in out, out
    if ci:
        assert out.startswith("exit 1\n") and "1 error" in out and "CI must run the browser tests" in out, out
    else:
        assert out.startswith("exit 0\n") and "1 skipped" in out, out
