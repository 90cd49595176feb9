"""The lab's files on this machine: one folder per lab under the state root.

The lab removes only what it made: the files it names below, in a folder
that carries its marker and is a real directory directly under the state
root, never through a symlink. A name is checked before it becomes a path,
and every check runs before anything is removed, so a refused `lab down`
has touched nothing.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.model.errors import LabError
from lab.model.names import check_lab_name

STATE_ENV = "LAB_STATE_DIR"
# Written first into every folder the lab makes, holding the lab's name: the lab's proof of its own.
MARKER = ".azlab"
# Every file the lab writes in a lab's folder; `lab down` removes these, the marker and the folder.
# The last two are an exercise's (lab/training/exercises.py): its record and its scenario copy end with the lab.
LAB_FILES = ("psk.json", "plan-source.json", "injected-faults.json", "config.key",
             "exercise.json", "exercise-scenario.yaml")


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


def check_state_root(create: bool = False) -> Path:
    """The state root, made 0700 if asked; refuses one another user owns or others may write
    (anyone who could write there could point the lab's keys or removals elsewhere)."""
    root = state_root()
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = root.stat()
    except FileNotFoundError:
        return root
    except OSError as exc:
        raise LabError(f"state root {root}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise LabError(f"state root {root} is not a folder")
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise LabError(f"state root {root} must be yours and writable by you alone "
                       f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):o})")
    return root


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
    """The lab's folder, made 0700 with its marker if it isn't there."""
    path = lab_dir(lab)
    check_state_root(create=True)
    try:
        os.mkdir(path, 0o700)
        made = True
    except FileExistsError:
        made = False
    except OSError as exc:
        raise LabError(f"{path}: {exc.strerror}") from None
    path = lab_dir(lab)   # checked again: made by someone else in between?
    if made or not os.path.lexists(path / MARKER):
        write_private(path / MARKER, lab)
    return path


@dataclass(frozen=True)
class LabFiles:
    folder: Path
    files: tuple[Path, ...]       # what the lab made and removes
    foreign: tuple[str, ...]      # what it didn't make: left in place, with the folder

    @property
    def exists(self) -> bool:
        return self.folder.exists()


def lab_files(lab: str) -> LabFiles:
    """What `lab down` would remove, and what it would leave; checked, nothing removed."""
    path = lab_dir(lab)
    if not path.exists():
        return LabFiles(path, (), ())
    try:
        entries = {p.name: p.lstat() for p in path.iterdir()}
    except OSError as exc:
        raise LabError(f"{path}: {exc.strerror}") from None
    marker = entries.get(MARKER)
    ours = marker is not None and stat.S_ISREG(marker.st_mode) and read_private(path / MARKER) == lab
    known = set(LAB_FILES) | {MARKER}
    # A folder of an earlier version (no marker) counts as the lab's if it holds only the lab's files.
    legacy = marker is None and set(entries) <= set(LAB_FILES)
    files, foreign = [], []
    for name, info in sorted(entries.items()):
        mine = (ours or legacy) and name in known and (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode))
        (files if mine else foreign).append(path / name if mine else name)
    return LabFiles(path, tuple(files), tuple(foreign))


def remove_lab_files(found: LabFiles, keep: frozenset[str] = frozenset()) -> tuple[list[str], str | None]:
    """Removes the lab's own files (but `keep`) and its folder once empty; returns (removed, the
    one line saying what was left and why, or None)."""
    removed = []
    for file in found.files:
        if file.name in keep:
            continue
        try:
            file.unlink(missing_ok=True)   # a symlink is removed itself, never followed
        except OSError as exc:
            raise LabError(f"{file}: {exc.strerror}") from None
        removed.append(str(file))
    if found.foreign:
        return removed, (f"{found.folder} kept: it holds {', '.join(found.foreign[:3])}"
                         f"{' …' if len(found.foreign) > 3 else ''}, which the lab didn't make")
    if keep:
        return removed, None
    try:
        found.folder.rmdir()
        removed.append(str(found.folder))
    except FileNotFoundError:
        pass
    except OSError as exc:
        return removed, f"{found.folder} kept: {exc.strerror}"
    return removed, None


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read, 0600 from the moment it exists; never through a symlink.

    Written to a fresh file beside it and renamed over it, so a reader sees
    the old file or the new one, never half of one.
    """
    if path.is_symlink():
        raise LabError(f"{path} is a symlink: refusing to write through it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")   # 0600, O_EXCL
    except OSError as exc:
        raise LabError(f"{path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def read_private(path: Path) -> str | None:
    """A file the lab wrote, or None when there is none; refuses symlinks and what isn't a regular file."""
    try:
        # O_NONBLOCK: a FIFO put there must not hang the command.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
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
