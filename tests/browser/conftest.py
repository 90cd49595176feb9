"""Browser tests: Debian's Chromium (/usr/bin/chromium, scripts/ensure-browser.sh) driven by Playwright.

Playwright's own browser download needs a network we don't have, so it drives the system Chromium.
Every page is opened through `console_page`, which keeps it on 127.0.0.1 twice over: a context route
aborts any request to another host (and records it), and the browser sends whatever slips past the
route to a dead local proxy, so no packet leaves the machine even if the routing had a gap. A test
fails when its page made a request off its origin or logged an error, unless it took them (take_*).
"""
from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Request, Route, WebSocketRoute, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
LOCAL_HOST = "127.0.0.1"
# Schemes that never reach a network: recorded, but not outside requests.
NO_NETWORK = {"data", "blob", "about"}
# Bounds for every wait: a locator or a page load that hangs fails the test in seconds, not 30 s.
ACTION_TIMEOUT_MS = 10_000
# Without the background-networking flags Chromium reaches for Google's hosts at every start.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's Chromium with Playwright (scripts/ensure-browser.sh)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def dead_proxy() -> Iterator[str]:
    """A local port that refuses every connection (bound, never listening): the browser's proxy."""
    with socket.socket() as sock:
        sock.bind((LOCAL_HOST, 0))
        yield f"http://{LOCAL_HOST}:{sock.getsockname()[1]}"


@pytest.fixture(scope="session")
def chromium_browser(dead_proxy: str) -> Iterator[Browser]:
    """Headless system Chromium, for the whole session.

    Playwright starts it with a new empty --user-data-dir of its own (it refuses one in `args`) and
    removes it on close. Loopback is never proxied (Chromium's implicit bypass), everything else goes
    to `dead_proxy`. Missing Chromium skips the browser tests on a developer's machine and fails them
    in CI, which must run them.
    """
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing: run `bash scripts/ensure-browser.sh`"
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run the browser tests)")
        pytest.skip(why)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, chromium_sandbox=False,
                                     args=[*CHROMIUM_ARGS, f"--proxy-server={dead_proxy}"],
                                     timeout=30_000)
        yield browser
        browser.close()


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname == LOCAL_HOST


@dataclass
class ConsolePage:
    """One page in a context of its own, on `origin` (http://127.0.0.1:PORT)."""
    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)   # every URL asked for, in order, blocked ones too
    failures: dict[str, str] = field(default_factory=dict)  # URL -> why it failed (net::ERR_BLOCKED_BY_CLIENT)
    errors: list[str] = field(default_factory=list)     # console.error lines and uncaught exceptions

    def url(self, path: str = "/") -> str:
        return self.origin + "/" + path.lstrip("/")

    def outside(self) -> list[str]:
        """Recorded URLs that are not http:// or ws:// on this page's origin."""
        port = urlsplit(self.origin).port
        return [u for u in self.requests
                if urlsplit(u).scheme not in NO_NETWORK
                and not (urlsplit(u).scheme in ("http", "ws") and _is_local(u) and urlsplit(u).port == port)]

    def assert_only_local(self) -> None:
        outside = self.outside()
        assert not outside, f"requests outside {self.origin}: {outside}"

    def take_outside(self) -> list[str]:
        """The outside requests so far, no longer failing the test: for a test that provokes them."""
        outside = self.outside()
        self.requests = [u for u in self.requests if u not in outside]
        return outside

    def take_errors(self) -> list[str]:
        """The page's errors so far, no longer failing the test: for a test that provokes them."""
        errors, self.errors = self.errors, []
        return errors


def _on_console(errors: list[str], msg: ConsoleMessage) -> None:
    if msg.type == "error":
        where = msg.location or {}
        errors.append(f"console.error: {msg.text} ({where.get('url', '?')}:{where.get('lineNumber', '?')})")


@pytest.fixture
def console_page(chromium_browser: Browser) -> Iterator[Callable[..., ConsolePage]]:
    """console_page(url, goto=True): a new context + page on url's origin, which must be http://127.0.0.1:PORT.

    At teardown the test fails if any page it opened asked for something off its origin or logged an
    error (console.error, an uncaught exception) that the test did not take.
    """
    opened: list[tuple[ConsolePage, object]] = []

    def open_page(url: str, goto: bool = True) -> ConsolePage:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname != LOCAL_HOST or parts.port is None:
            raise ValueError(f"console_page: {url!r} is not http://{LOCAL_HOST}:PORT/...")
        # Service workers blocked: their fetches would bypass the routes below; fixed size,
        # locale, zone and motion so committed screenshots don't change from machine to machine.
        context = chromium_browser.new_context(
            service_workers="block", viewport={"width": 1280, "height": 800}, device_scale_factor=1,
            locale="en-US", timezone_id="UTC", color_scheme="light", reduced_motion="reduce")
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
        cp = ConsolePage(page=None, origin=f"http://{LOCAL_HOST}:{parts.port}")  # type: ignore[arg-type]

        def route(r: Route) -> None:
            if _is_local(r.request.url):
                r.continue_()
            else:
                r.abort("blockedbyclient")

        def route_ws(ws: WebSocketRoute) -> None:
            cp.requests.append(ws.url)   # no request event for a websocket: record it here
            if _is_local(ws.url):
                ws.connect_to_server()   # forwards both ways as it is
            else:
                ws.close(code=1008, reason="outside 127.0.0.1: blocked by the test")

        def failed(req: Request) -> None:
            cp.failures[req.url] = req.failure or "failed"

        # On the context, not the page: it also sees popups' and workers' requests.
        context.on("request", lambda req: cp.requests.append(req.url))
        context.on("requestfailed", failed)
        context.route("**/*", route)
        context.route_web_socket(re.compile(".*"), route_ws)
        page = context.new_page()
        cp.page = page
        page.on("console", lambda msg: _on_console(cp.errors, msg))
        page.on("pageerror", lambda exc: cp.errors.append(f"uncaught: {exc}"))
        opened.append((cp, context))
        if goto:
            page.goto(url)
        return cp

    yield open_page

    problems = []
    for cp, context in opened:
        try:
            context.close()    # delivers the events still queued
        except Error as exc:
            problems.append(f"{cp.origin}: closing the page failed: {exc}")
        if cp.outside():
            problems.append(f"{cp.origin}: requests outside it: {cp.outside()}")
        problems += [f"{cp.origin}: {e}" for e in cp.errors]
    if problems:
        pytest.fail("the page(s) went wrong:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """screenshot(page, name) -> the PNG's path: docs/screenshots/NAME.png with LAB_SCREENSHOTS=1, else tmp_path.

    A plain test run leaves the committed screenshots alone.
    """
    setting = os.environ.get("LAB_SCREENSHOTS", "")
    if setting not in ("", "0", "1"):
        raise ValueError(f"LAB_SCREENSHOTS={setting!r}: use 1 to write docs/screenshots/, 0 or unset for tmp_path")
    folder = SCREENSHOTS if setting == "1" else tmp_path

    def take(page: Page, name: str) -> Path:
        if not SCREENSHOT_NAME.fullmatch(name):
            raise ValueError(f"screenshot name {name!r}: use 1-64 of a-z, 0-9, '-', '_' (no path, no .png)")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return take
