"""strongSwan's charon, through VICI.

The socket lives inside the node's container; as root on the same host we
reach it through /proc/<pid>/root, however the container was started. The
vici package's calls are lazy generators and its values are bytes: this is
the one place that consumes them and turns them into typed values.
"""
from __future__ import annotations

import socket
from typing import Iterator

import vici
from vici.exception import CommandException, SessionException

from ..errors import LabError
from ..ports import ChildSaState, IkeSaState

# /var/run is a symlink to /run: through /proc/<pid>/root it would resolve on the host.
SOCKET_IN_CONTAINER = "run/charon.vici"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _int(value: object) -> int:
    try:
        return int(_text(value))
    except ValueError:
        return 0


def _texts(value: object) -> list[str]:
    if isinstance(value, list):
        return [_text(v) for v in value]
    return [] if value is None else [_text(value)]


class ViciIke:
    def __init__(self, node: str, pid: int, timeout_s: float = 10.0):
        self.node = node
        self.path = f"/proc/{pid}/root/{SOCKET_IN_CONTAINER}"
        self.timeout_s = timeout_s

    def _session(self, timeout_s: float | None = None) -> tuple[vici.Session, socket.socket]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s if timeout_s is not None else self.timeout_s)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise LabError(f"{self.node}: charon's VICI socket does not answer ({exc.strerror or exc})") from None
        return vici.Session(sock), sock

    def list_sas(self) -> list[IkeSaState]:
        session, sock = self._session()
        try:
            answers = list(session.list_sas())
        except (SessionException, CommandException, OSError) as exc:
            raise LabError(f"{self.node}: VICI list-sas failed ({exc})") from exc
        finally:
            sock.close()
        sas = []
        for answer in answers:
            for name, ike in answer.items():
                children = [
                    ChildSaState(
                        name=_text(child.get("name", key)),
                        state=_text(child.get("state", b"")),
                        packets_in=_int(child.get("packets-in", 0)),
                        packets_out=_int(child.get("packets-out", 0)),
                        bytes_in=_int(child.get("bytes-in", 0)),
                        bytes_out=_int(child.get("bytes-out", 0)),
                        local_ts=_texts(child.get("local-ts")),
                        remote_ts=_texts(child.get("remote-ts")),
                    )
                    for key, child in (ike.get("child-sas") or {}).items()
                ]
                sas.append(
                    IkeSaState(
                        name=_text(name),
                        state=_text(ike.get("state", b"")),
                        local_host=_text(ike.get("local-host", b"")),
                        remote_host=_text(ike.get("remote-host", b"")),
                        established_s=_int(ike["established"]) if "established" in ike else None,
                        children=children,
                    )
                )
        return sas

    def terminate(self, ike: str, timeout_s: float) -> None:
        session, sock = self._session(timeout_s + 5)
        try:
            for _log in session.terminate({"ike": ike, "timeout": int(timeout_s * 1000)}):
                pass
        except (SessionException, CommandException, OSError) as exc:
            raise LabError(f"{self.node}: terminating {ike} failed ({exc})") from exc
        finally:
            sock.close()

    def watch(self, names: list[str]) -> "ViciEventWatch":
        """Subscribes to charon's events; iterate it for (name, message), close it to stop."""
        session, sock = self._session(timeout_s=None)
        return ViciEventWatch(self.node, session, sock, names)


class ViciEventWatch:
    """One VICI event subscription. Iteration ends when charon goes away or on close()."""

    def __init__(self, node: str, session: vici.Session, sock: socket.socket, names: list[str]):
        self.node = node
        self._session = session
        self._sock = sock
        self._names = names
        sock.settimeout(None)

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        try:
            for label, message in self._session.listen(self._names):
                if label is not None:
                    yield _text(label), message
        except (SessionException, CommandException, OSError):
            return
        finally:
            self.close()

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
