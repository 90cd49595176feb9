"""One exclusive lock per lab: `up`, `down`, `failover`, `break` and `repair` never overlap.

An flock on `<state root>/.locks/<lab>.lock`, beside the lab's folder so
that `lab down` removing the folder leaves the lock alone. The holder
writes its PID and verb into it, so a command that waits in vain says who
holds the lab. The lock is taken again within one process (a failover that
re-creates its lab). The last holder of a lab that is gone removes the
file while still holding it, and only if it is still its own; a waiter
that then gets the lock on the removed file sees that and starts over.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from lab.model.errors import LabError
from lab.model.names import check_lab_name
from lab.run.state import check_state_root, lab_dir, state_root

LOCKS = ".locks"
WAIT_ENV = "LAB_LOCK_WAIT_S"
DEFAULT_WAIT_S = 30.0
MAX_WAIT_S = 3600.0
POLL_S = 0.2


class LabBusy(LabError):
    """Another command holds the lab."""


_held: dict[str, list[int]] = {}   # lab -> [fd, depth]
_guard = threading.Lock()


def lock_wait_s() -> float:
    value = os.environ.get(WAIT_ENV)
    if value is None:
        return DEFAULT_WAIT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_S:
        raise LabError(f"{WAIT_ENV}={value!r}: seconds to wait for a busy lab, from 0 to {MAX_WAIT_S:.0f}")
    return seconds


def lock_path(lab: str):
    return state_root() / LOCKS / f"{check_lab_name(lab, 'lab')}.lock"


def holder_of(lab: str) -> str:
    """Who holds the lab, as its lock file says ('' when unknown)."""
    try:
        with open(lock_path(lab)) as handle:
            record = json.loads(handle.read() or "{}")
        return f"`lab {record['verb']}` (pid {int(record['pid'])})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _try_lock(lab: str) -> int | None:
    """An fd holding the lab's lock, or None if another process holds it."""
    path = lock_path(lab)
    try:
        check_state_root(create=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise LabError(f"{path}: can't take the lab's lock ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:   # removed by the `down` that held it: lock the new one
        os.close(fd)
        return _try_lock(lab)
    return fd


def _record(fd: int, verb: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "verb": verb, "since": time.time()}).encode(), 0)


def _acquire(lab: str, wait_s: float) -> int:
    """The lock, tried every POLL_S until wait_s is up; then who holds the lab, in one line."""
    attempts = Retrying(stop=stop_after_delay(wait_s), wait=wait_fixed(POLL_S),
                        retry=retry_if_result(lambda fd: fd is None), retry_error_callback=lambda state: None)
    fd = attempts(_try_lock, lab)
    if fd is None:
        who = holder_of(lab) or "another command"
        raise LabBusy(f"lab {lab} is busy: {who} holds it; waited {wait_s:g} s "
                      f"(try again when it ends, or set {WAIT_ENV})")
    return fd


def _enter_again(lab: str) -> bool:
    """True if this process holds the lab already (a failover re-creating its lab): counted, not locked."""
    with _guard:
        if lab in _held:
            _held[lab][1] += 1
            return True
    return False


@contextmanager
def _holding(lab: str, fd: int | None, verb: str) -> Iterator[None]:
    """`fd`: the lock just taken; None: this process held it already (counted in _held)."""
    if fd is not None:
        _record(fd, verb)
        with _guard:
            _held[lab] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[lab]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[lab]
        if entry[1] == 0:
            _release(lab, entry[0])


@contextmanager
def hold_lab(lab: str, verb: str, wait_s: float | None = None) -> Iterator[None]:
    """Holds the lab for one command; waits a bounded time for another to finish, then says who holds it."""
    fd = None if _enter_again(lab) else _acquire(lab, lock_wait_s() if wait_s is None else wait_s)
    with _holding(lab, fd, verb):
        yield


@contextmanager
def try_hold_lab(lab: str, verb: str) -> Iterator[bool]:
    """Holds the lab if it is free now (True), else goes on without it (False): for read-mostly commands."""
    fd = None
    if not _enter_again(lab):
        try:
            fd = _acquire(lab, 0)
        except LabBusy:
            yield False
            return
    with _holding(lab, fd, verb):
        yield True


def _release(lab: str, fd: int) -> None:
    """Unlocks; the lock of a lab that is gone goes with it, if the file is still this one."""
    path = lock_path(lab)
    try:
        if not lab_dir(lab).exists() and os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
            path.unlink()
            path.parent.rmdir()   # only when no other lab has a lock file
    except (OSError, LabError):
        pass
    finally:
        os.close(fd)
