"""`lab ui`'s server: the page, a small JSON API and one stream of server-sent events.

    GET  /                      the page (static/ of this package; nothing from any other host)
    GET  /api/lab               the lab: scenario, profile, nodes, the faults and targets its plan allows, profiles
    GET  /api/topology          the plan's layout (lab.ui.topology), JSON
    GET  /api/topology.svg      the same, drawn (`lab graph`'s picture, with ids the page colours)
    GET  /api/state             the live state (lab.ui.console.live)
    GET  /api/events            server-sent events: every event of the lab's stream as JSON, and `state`
    POST /api/break             {"fault", "target"?}                 -> 202 {"operation"}
    POST /api/repair            {}                                   -> 202 {"operation"}
    POST /api/failover          {"fault", "target"?, "profile"?, "runs"?} -> 202 {"operation"}
    GET  /api/operations/ID     what became of an operation (running, done with its result, failed)
    GET  /api/operations/ID/files/NAME   a finished failover's report file
    GET  /api/capture?node=N&link=L&seconds=S&filter=BPF   a pcap, as a download (X-Lab-Console: 1)

One operation and one capture at a time (409 while one runs). Served on 127.0.0.1 by default, where
a request must name this host and port (a DNS-rebinding page can't) and a POST or a capture must
carry `X-Lab-Console: 1` from the page's own origin (another site's page can't send it without a
CORS preflight, which is never answered); a refused request ends its connection, so no body is
read as a request. With a token (any other address) every API call needs it (`Authorization:
Bearer TOKEN`, or the cookie `POST /api/login` sets), whatever Host it names. docs/console.md
documents the API for scripts.
"""
from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import queue
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import cached_property, lru_cache
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from lab.failover.faults import FAULTS, target_choices
from lab.model.errors import LabError
from lab.model.events import (
    ControlEvent,
    FailoverDone,
    LabDown,
    LabEvent,
    LabUp,
    Note,
    PhaseObserved,
    ProbeTick,
    RunDone,
    StageChanged,
)
from lab.plan.load import builtin_profiles
from lab.session import LabSession
from lab.ui.console.live import LiveState
from lab.ui.console.monitor import ConsoleMonitor, DeliveryTick

log = logging.getLogger("lab.console")

STATUS_EVERY_S = 5.0          # a full status read while idle; events fill in between
STATUS_SOON_S = 0.7           # after a best-path change or an operation: read again shortly
CLIENT_QUEUE = 2000           # events a slow page may fall behind by before it is dropped
KEEPALIVE_S = 15.0
MAX_BODY = 16 * 1024
# A connection that sends nothing for this long is closed (a stalled page's stream too): a silent
# client can't hold a handler thread for ever.
IDLE_S = 60.0
# A failover's runs are bounded by the runner (each well under this); this bounds the wait at Ctrl-C,
# per run of the operation (a page may ask for 10: a flat bound gave up mid-run, the fault in place).
OPERATION_WITHIN_S = 900.0
TOKEN_COOKIE = "lab_console"
STATIC = "static"


def event_json(event: LabEvent) -> dict | None:
    """One stream event as the page and scripts read it; None: not for the page."""
    base = {"lab": event.lab}
    if isinstance(event, ControlEvent):
        e = event.event
        return base | {"type": "control", "t_ns": e.t_ns, "source": e.source, "node": e.node, "kind": e.kind,
                       "detail": e.detail}
    if isinstance(event, ProbeTick):
        return base | {"type": "probe", "run": event.run, "direction": event.direction, "delivered": event.delivered,
                       "lost": event.lost, "flowing_for_s": event.flowing_for_s, "since_event_s": event.since_event_s}
    if isinstance(event, DeliveryTick):
        return base | {"type": "delivery", "cycle": event.cycle, "direction": event.direction, "at_ms": event.at_ms,
                       "width_ms": event.width_ms, "sent": event.sent, "delivered": event.delivered}
    if isinstance(event, StageChanged):
        return base | {"type": "stage", "stage": event.stage.name.lower(), "text": event.stage.value,
                       "detail": event.detail, "run": event.run, "runs": event.runs}
    if isinstance(event, Note):
        return base | {"type": "note", "text": event.text, "level": logging.getLevelName(event.level).lower()}
    if isinstance(event, PhaseObserved):
        return base | {"type": "phase", "run": event.run, "phase": event.phase, "at_s": event.at_s}
    if isinstance(event, RunDone):
        return base | {"type": "run-done", "run": event.run}
    if isinstance(event, FailoverDone):
        return base | {"type": "failover-done", "verdict": event.report.verdict}
    if isinstance(event, LabUp):
        return base | {"type": "lab-up", "took_s": event.took_s}
    if isinstance(event, LabDown):
        return base | {"type": "lab-down", "removed": event.removed}
    return None


@dataclass
class Operation:
    id: str
    name: str
    request: dict
    state: str = "running"           # running, done, failed
    started: float = field(default_factory=time.time)
    result: dict | None = None
    error: str | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "request": self.request, "state": self.state,
                "started": self.started, "result": self.result, "error": self.error,
                "files": {name: f"/api/operations/{self.id}/files/{name}" for name in self.files}}


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class Console:
    """The state behind the API: one lab's session, its live state, its clients and operations."""

    def __init__(self, session: LabSession, results: Path, token: str | None = None,
                 monitor: bool = True, status_every_s: float = STATUS_EVERY_S):
        self.session, self.plan, self.results, self.token = session, session.plan, results, token
        self.state = LiveState.of(self.plan)
        self.status_every_s = status_every_s
        self._lock = threading.Lock()                 # the state and the client list
        self._clients: list[queue.Queue] = []
        self._operations: dict[str, Operation] = {}
        self._busy = threading.Lock()                 # one operation at a time
        self._capturing = threading.Lock()            # one capture at a time (each holds up to 32 MB)
        self._stop = threading.Event()
        self._read_now = threading.Event()
        self._reader: threading.Thread | None = None
        self.monitor = ConsoleMonitor(self.plan, session.adapters, session.events) if monitor else None
        session.events.subscribe(self._on_event)

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._reader = threading.Thread(target=self._read_status_loop, name="console-status", daemon=True)
        self._reader.start()
        if self.monitor is not None:
            self.monitor.start()

    def stop(self) -> None:
        self._stop.set()
        self._read_now.set()
        if self.monitor is not None:
            self.monitor.stop()
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            _end(client)

    # -- the stream ----------------------------------------------------------------------------
    def subscribe(self) -> queue.Queue:
        client: queue.Queue = queue.Queue(CLIENT_QUEUE)
        with self._lock:
            self._clients.append(client)
            client.put({"type": "state", "state": self.state.as_dict()})
        return client

    def unsubscribe(self, client: queue.Queue) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def _send(self, message: dict) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.put_nowait(message)
            except queue.Full:
                # A page that stopped reading: dropped (its stream ends); it reconnects and starts from the state.
                self.unsubscribe(client)
                _end(client)

    def _on_event(self, event: LabEvent) -> None:
        message = event_json(event)
        if message is None:
            return
        self._send(message)
        if isinstance(event, ControlEvent):
            with self._lock:
                changed = self.state.take_event(self.plan, event.event)
            if changed:
                self._send_state()
            if event.event.kind == "route":
                self._read_now.set()

    def _send_state(self) -> None:
        with self._lock:
            state = self.state.as_dict()
        self._send({"type": "state", "state": state})

    def read_status(self) -> None:
        status = self.session.status()
        with self._lock:
            self.state.take_status(self.plan, status, time.monotonic())
        self._send_state()

    def _read_status_loop(self) -> None:
        while not self._stop.is_set():
            if not self._running_failover():
                try:
                    self.read_status()
                except LabError as exc:
                    self._send({"type": "note", "lab": self.plan.lab, "text": f"status: {exc}", "level": "warning"})
                except Exception:  # noqa: BLE001 - a read that broke must not end the console
                    log.exception("console: reading the status failed")
            woken = self._read_now.wait(self.status_every_s)
            self._read_now.clear()
            if woken:
                self._stop.wait(STATUS_SOON_S)   # let the change settle, then read it

    def _running_failover(self) -> bool:
        running = self.running_operation()
        return running is not None and running.name == "failover"

    # -- what the page shows once ----------------------------------------------------------------
    def lab_info(self) -> dict:
        plan = self.plan
        faults = [{"name": f.name, "summary": f.summary, "planned": f.planned,
                   "targets": target_choices(plan, f),
                   "default": f.default_target(plan) or self.session.first_instance()}
                  for f in FAULTS.values()]
        return {"lab": plan.lab, "scenario": plan.scenario.name, "description": plan.scenario.description,
                "profile": plan.profile.name, "profiles": builtin_profiles(),
                "nodes": [{"name": n.name, "kind": n.kind, "links": sorted(n.links)} for n in plan.nodes.values()],
                "faults": [f for f in faults if f["targets"]]}

    @cached_property
    def _layout(self):
        """The plan's layout: the plan doesn't change while the console runs, so it is laid out once."""
        from lab.ui.topology import layout

        return layout(self.plan)

    def topology(self) -> dict:
        return self._layout.as_dict()

    def topology_svg(self) -> str:
        from lab.ui.topology import render_svg

        return render_svg(self._layout)

    def state_dict(self) -> dict:
        with self._lock:
            return self.state.as_dict()

    # -- operations ----------------------------------------------------------------------------
    def start_operation(self, name: str, request: dict) -> Operation:
        """Checks the request at once (a bad fault or target is a 400 now, not a failed operation),
        then runs it in its own thread."""
        work = self._work_for(name, request)
        if not self._busy.acquire(blocking=False):
            running = self.running_operation()
            raise Busy(running.name if running else "an operation")
        operation = Operation(uuid.uuid4().hex[:12], name, request)
        self._operations[operation.id] = operation
        self._send({"type": "operation", "lab": self.plan.lab, "operation": operation.as_dict()})
        threading.Thread(target=self._run, args=(operation, work), name=f"console-{name}", daemon=True).start()
        return operation

    def operation(self, operation_id: str) -> Operation | None:
        return self._operations.get(operation_id)

    def running_operation(self) -> Operation | None:
        return next((o for o in self._operations.values() if o.state == "running"), None)

    def wait_idle(self, within_s: float | None = None) -> bool:
        """Waits for the running operation (a failover puts the lab back before it ends); False: still running.
        Without `within_s`, OPERATION_WITHIN_S for each of its runs."""
        if within_s is None:
            running = self.running_operation()
            runs = running.request.get("runs", 1) if running is not None else 1
            within_s = OPERATION_WITHIN_S * (runs if isinstance(runs, int) and runs > 0 else 1)
        if self._busy.acquire(timeout=within_s):
            self._busy.release()
            return True
        return False

    def _run(self, operation: Operation, work: Callable[[Operation], dict]) -> None:
        try:
            operation.result = work(operation)
            operation.state = "done"
        except LabError as exc:
            operation.state, operation.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the page, logged in full
            log.exception("console: %s failed", operation.name)
            operation.state, operation.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._busy.release()
            self._send({"type": "operation", "lab": self.plan.lab, "operation": operation.as_dict()})
            self._read_now.set()

    def _work_for(self, name: str, request: dict) -> Callable[[Operation], dict]:
        session = self.session
        if name == "break":
            fault, target = self._fault_and_target(request, session.break_target)

            def do_break(_: Operation) -> dict:
                done = session.break_(fault, target)
                self._restart_monitor()
                return {"fault": fault, "target": target, "done": done}
            return do_break
        if name == "repair":
            def do_repair(_: Operation) -> dict:
                done = session.repair()
                self._restart_monitor()
                return {"done": done or ["nothing to repair"]}
            return do_repair
        if name == "failover":
            fault, target = self._fault_and_target(request, session.default_target)
            interval_ms = request.get("interval_ms", 20)
            if not isinstance(interval_ms, (int, float)) or isinstance(interval_ms, bool) or not 1 <= interval_ms <= 1000:
                raise LabError(f"interval_ms {interval_ms!r}: a probe interval from 1 to 1000 ms")
            runs = request.get("runs", 1)
            if not isinstance(runs, int) or isinstance(runs, bool) or not 1 <= runs <= 10:
                raise LabError(f"runs {runs!r}: a whole number from 1 to 10")
            profile = request.get("profile") or self.plan.profile.name
            if profile not in builtin_profiles():
                raise LabError(f"profile {profile!r}: choose from {', '.join(builtin_profiles())}")
            if profile != self.plan.profile.name:
                raise LabError(f"profile {profile!r}: this lab runs {self.plan.profile.name}; re-create it with "
                               f"`lab up {self.plan.scenario.name} --profile {profile} --lab {self.plan.lab}` "
                               "and start the console again")

            def do_failover(operation: Operation) -> dict:
                return self._failover(operation, fault, target, runs, float(interval_ms))
            return do_failover
        raise LabError(f"unknown operation {name!r}")

    def _fault_and_target(self, request: dict, default: Callable[[str], str]) -> tuple[str, str]:
        fault = request.get("fault")
        if not isinstance(fault, str) or fault not in FAULTS:
            raise LabError(f"fault {fault!r}: choose from {', '.join(FAULTS)}")
        target = request.get("target") or default(fault)
        allowed = target_choices(self.plan, FAULTS[fault])
        if not isinstance(target, str) or target not in allowed:
            raise LabError(f"target {target!r} for {fault}: choose from {', '.join(allowed) or 'nothing in this lab'}")
        return fault, target

    def _restart_monitor(self) -> None:
        if self.monitor is not None:
            self.monitor.restart()

    def _failover(self, operation: Operation, fault: str, target: str, runs: int, interval_ms: float) -> dict:
        from lab.ui.failover_view import failover_dict, write_outputs

        if self.monitor is not None:
            self.monitor.pause()
        try:
            result = self.session.failover(fault, target, runs=runs, interval_ms=interval_ms)
        finally:
            if self.monitor is not None:
                self.monitor.resume()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.results / f"{self.session.default_out(fault, target).name}-{stamp}"
        files = write_outputs(result.report, folder, self.plan)
        operation.files = {f.name: f for f in files}
        report = failover_dict(result.report, self.plan)
        return {"fault": fault, "target": target, "verdict": result.verdict, "target_s": result.target_s,
                "target_source": result.report.target_source, "rate_derived_s": result.rate_derived_s,
                "loss_derived_s": result.loss_derived_s,
                "phases": [{"name": n, "at_s": s} for n, s in result.phases],
                "directions": [asdict(d) for d in result.directions],
                "breakdown": result.breakdown(), "folder": str(folder), "report": report}

    def capture(self, query: dict[str, str]) -> tuple[str, bytes]:
        node = query.get("node", "")
        link = query.get("link") or None
        bpf = query.get("filter") or None
        try:
            seconds = float(query.get("seconds", "10"))
        except ValueError:
            raise LabError(f"seconds {query.get('seconds')!r}: a number of seconds") from None
        if not self._capturing.acquire(blocking=False):
            raise Busy("a capture")
        try:
            data = self.session.capture(node, link, bpf, seconds)
        finally:
            self._capturing.release()
        where = f"{node}-{link}" if link else node
        return f"{self.plan.lab}-{where}-{time.strftime('%Y%m%d-%H%M%S')}.pcap", data


@lru_cache(maxsize=1)
def _static_files() -> dict:
    """The page's files, by name, as the package ships them (read from the package once)."""
    return {f.name: f for f in resources.files("lab.ui.console").joinpath(STATIC).iterdir() if f.is_file()}


def _end(client: queue.Queue) -> None:
    """Tells a client's stream to end, room made for the word if it is full."""
    while True:
        try:
            client.put_nowait(None)
            return
        except queue.Full:
            try:
                client.get_nowait()
            except queue.Empty:
                pass


class Busy(LabError):
    def __init__(self, what: str):
        super().__init__(f"{what} is running: wait for it to finish")


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, console: Console, host: str, port: int):
        self.console = console
        super().__init__((host, port), ConsoleHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class ConsoleHandler(BaseHTTPRequestHandler):
    server: ConsoleServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_S

    # -- plumbing --------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:    # noqa: A002 - the base class's name
        log.debug("console %s: %s", self.address_string(), format % args)

    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body, default=_plain).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, status: int, data: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        # The page's own assets only: no script, style, font or image from anywhere else.
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                                    "style-src 'self' 'unsafe-inline'; connect-src 'self'")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        # The connection ends with a refusal: a body left unread (a refused POST's) must never be
        # read as the next request on it, or another site's page could send one past every check.
        self.close_connection = True
        self._send_json(status, {"error": message})

    def _host_ok(self) -> bool:
        if self.server.console.token is not None:
            return True     # the token guards every call, whatever name the room uses for this machine
        host, port = self.server.server_address[:2]
        allowed = {f"{host}:{port}"} | ({f"localhost:{port}"} if host == "127.0.0.1" else set())
        return self.headers.get("Host", "") in allowed

    def _token_ok(self) -> bool:
        token = self.server.console.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not given:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            given = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else ""
        return bool(given) and hmac.compare_digest(given.encode(), token.encode())

    def _post_ok(self) -> bool:
        if self.headers.get("X-Lab-Console") != "1":
            return False
        origin = self.headers.get("Origin")
        return origin is None or origin == f"http://{self.headers.get('Host', '')}"

    def _body(self) -> dict:
        if "Transfer-Encoding" in self.headers:
            raise LabError("request body: send it with a Content-Length, not chunked")
        given = (self.headers.get("Content-Length") or "0").strip()
        if not given.isdigit():
            raise LabError(f"Content-Length {given[:20]!r}: a number of bytes")
        length = int(given)
        if length > MAX_BODY:
            raise LabError(f"request body of {length} bytes: at most {MAX_BODY}")
        if not length:
            return {}
        try:
            body = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            raise LabError("request body: not JSON") from None
        if not isinstance(body, dict):
            raise LabError("request body: a JSON object, e.g. {\"fault\": \"kill\"}")
        return body

    # -- routes ----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if not self._host_ok():
            return self._error(HTTPStatus.MISDIRECTED_REQUEST, "unknown Host: use the console's own address")
        url = urlsplit(self.path)
        path, query = url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}
        if not path.startswith("/api/"):
            return self._static(path)
        if not self._token_ok():
            return self._error(HTTPStatus.UNAUTHORIZED, "a token is needed: Authorization: Bearer TOKEN")
        self._answer(lambda: self._get(path, query))

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return self._error(HTTPStatus.MISDIRECTED_REQUEST, "unknown Host: use the console's own address")
        if not self._post_ok():
            return self._error(HTTPStatus.FORBIDDEN, "a POST needs the header X-Lab-Console: 1 from the console's own page")
        self._answer(lambda: self._post(urlsplit(self.path).path))

    def _answer(self, route: Callable[[], bool]) -> None:
        """Runs a route; what it raises becomes one line to the client (the traceback, if any, to the log)."""
        try:
            if route():
                return
        except Busy as exc:
            return self._error(HTTPStatus.CONFLICT, str(exc))
        except LabError as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
            return None
        except Exception as exc:  # noqa: BLE001 - see the docstring
            return self._internal_error(exc)
        self._error(HTTPStatus.NOT_FOUND, f"no such path {urlsplit(self.path).path}")

    def _get(self, path: str, query: dict[str, str]) -> bool:
        """Answers a GET of the API; False: no such path."""
        console = self.server.console
        if path == "/api/lab":
            self._send_json(200, console.lab_info())
        elif path == "/api/topology":
            self._send_json(200, console.topology())
        elif path == "/api/topology.svg":
            self._send_bytes(200, console.topology_svg().encode(), "image/svg+xml")
        elif path == "/api/state":
            self._send_json(200, console.state_dict())
        elif path == "/api/events":
            self._events()
        elif path == "/api/capture":
            # It runs tcpdump: a side effect another site's <img src> must not set off.
            if self.headers.get("X-Lab-Console") != "1":
                self._error(HTTPStatus.FORBIDDEN, "a capture needs the header X-Lab-Console: 1")
                return True
            name, data = console.capture(query)
            self._send_bytes(200, data, "application/vnd.tcpdump.pcap",
                             {"Content-Disposition": f'attachment; filename="{name}"'})
        elif len(path.split("/")) >= 4 and path.split("/")[2] == "operations":
            self._operation(path.split("/")[3:])
        else:
            return False
        return True

    def _post(self, path: str) -> bool:
        """Answers a POST of the API; False: no such path."""
        body = self._body()
        if path == "/api/login":
            self._login(body)
            return True
        if not self._token_ok():
            self._error(HTTPStatus.UNAUTHORIZED, "a token is needed: Authorization: Bearer TOKEN")
            return True
        name = path.removeprefix("/api/")
        if name not in ("break", "repair", "failover"):
            return False
        self._send_json(HTTPStatus.ACCEPTED, self.server.console.start_operation(name, body).as_dict())
        return True

    def _internal_error(self, exc: Exception) -> None:
        log.exception("console: %s %s failed", self.command, urlsplit(self.path).path)
        return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: see the console's log")

    def _login(self, body: dict) -> None:
        console = self.server.console
        given = body.get("token")
        if console.token is None:
            return self._send_json(200, {"token": "not needed"})
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), console.token.encode()):
            return self._error(HTTPStatus.UNAUTHORIZED, "wrong token")
        data = b'{"login": "ok"}'
        self.send_response(200)
        self.send_header("Set-Cookie", f"{TOKEN_COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _operation(self, parts: list[str]) -> None:
        operation = self.server.console.operation(parts[0])
        if operation is None:
            return self._error(HTTPStatus.NOT_FOUND, f"no operation {parts[0]!r}")
        if len(parts) == 1:
            return self._send_json(200, operation.as_dict())
        if len(parts) == 3 and parts[1] == "files" and parts[2] in operation.files:
            path = operation.files[parts[2]]
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return self._send_bytes(200, path.read_bytes(), kind)
        return self._error(HTTPStatus.NOT_FOUND, "no such file of this operation")

    def _static(self, path: str) -> None:
        name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
        # Only the files the package ships, by name: no path from the request reaches the disk.
        files = _static_files()
        if name not in files or (path not in ("/", "/index.html") and not path.startswith("/static/")):
            return self._error(HTTPStatus.NOT_FOUND, f"no such page {path}")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        self._send_bytes(200, files[name].read_bytes(), kind, {"Cache-Control": "no-cache"})

    def _events(self) -> None:
        console = self.server.console
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        client = console.subscribe()
        try:
            while True:
                try:
                    message = client.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    continue
                if message is None:
                    return
                self.wfile.write(b"data: " + json.dumps(message, default=_plain).encode() + b"\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return
        finally:
            console.unsubscribe(client)
