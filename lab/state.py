"""The lab's files on this machine: one folder per lab under the state root.

The lab removes only what it made: the files it names below, in a folder
that is a real directory directly under the state root, never through a
symlink. A name is checked before it becomes a path, and every check runs
before anything is removed, so a refused `lab down` has touched nothing.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import LabError
from .names import check_lab_name

STATE_ENV = "LAB_STATE_DIR"
# Every file the lab writes in a lab's folder; `lab down` removes these and the folder, nothing else.
LAB_FILES = ("psk.json", "plan-source.json", "injected-faults.json", "config.key", ".lock")


def state_root() -> Path:
    """Where labs keep their keys and records: LAB_STATE_DIR (checked), else a per-user default."""
    value = os.environ.get(STATE_ENV)
    if value is not None:
        if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise LabError(f"{STATE_ENV}={value!r}: not a usable path")
        path = Path(value)
        if not path.is_absolute():
            raise LabError(f"{STATE_ENV}={value!r}: must be an absolute path")
        if path.resolve() == Path("/"):
            raise LabError(f"{STATE_ENV}={value!r}: the state root can't be /")
        return path
    if os.geteuid() == 0:
        return Path("/var/lib/azlab")
    return Path.home() / ".local" / "state" / "azlab"


def lab_dir(lab: str) -> Path:
    """The lab's folder (made or not); refuses a bad name, or a folder that is not the lab's own."""
    check_lab_name(lab, "lab")
    root = state_root()
    path = root / lab
    if path.is_symlink():
        raise LabError(f"{path} is a symlink; the lab never makes one, so it won't use or remove it: "
                       "remove it by hand")
    if path.exists() and not path.is_dir():
        raise LabError(f"{path} is not a folder the lab made: remove it by hand")
    if path.exists() and path.resolve().parent != root.resolve():
        raise LabError(f"{path} resolves outside the state root {root}")
    return path


def make_lab_dir(lab: str) -> Path:
    path = lab_dir(lab)
    root = state_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    return lab_dir(lab)   # checked again: made by someone else in between?


def removable_files(lab: str) -> tuple[Path, list[Path]]:
    """(the lab's folder, the files in it the lab made); checked, nothing removed."""
    path = lab_dir(lab)
    if not path.exists():
        return path, []
    return path, [path / name for name in LAB_FILES if os.path.lexists(path / name)]


def remove_lab_files(lab: str) -> list[str]:
    """Removes the lab's own files and its folder; anything else in it stays (and the folder with it)."""
    path, files = removable_files(lab)
    for file in files:
        file.unlink(missing_ok=True)   # a symlink is removed itself, never followed
    try:
        path.rmdir()
    except FileNotFoundError:
        return [str(f) for f in files]
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise LabError(f"{path}: {exc.strerror}") from None
        raise LabError(f"{path} holds files the lab didn't make: left in place (remove it by hand)") from None
    return [str(path)]


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read, 0600 from the moment it exists; never through a symlink.

    Written beside the target and renamed over it, so a reader sees the old
    file or the new one, never half of one.
    """
    if path.is_symlink():
        raise LabError(f"{path} is a symlink: refusing to write a key through it")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise


def read_private(path: Path) -> str | None:
    """A file the lab wrote, or None when there is none; refuses symlinks and what isn't a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LabError(f"{path} is a symlink: the lab never makes one, so it won't read it") from None
        raise LabError(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise LabError(f"{path} is not a regular file")
        raw = handle.read(1 << 20)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise LabError(f"{path} is not text the lab wrote (not UTF-8): remove it or `lab down`") from None
