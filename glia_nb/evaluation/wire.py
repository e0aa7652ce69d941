"""Framing of the harness <-> policy-process channel (a Unix socket pair).

A frame is a 4-byte little-endian payload length, a 1-byte kind and the payload; a file
descriptor may ride along with a frame (the shared-memory view).  Standard library only:
the policy process imports this before its limits are in force.

Harness -> policy kinds: ``L`` load (JSON), ``S`` start a seed (JSON + memfd), ``R`` route
(1 byte: event code), ``K`` batch key (``<qd``), ``A`` autoscaler decide (JSON), ``Q`` quit.
Policy -> harness kinds: ``O`` ok (JSON), ``D`` decisions (int64 pairs), ``F`` a float
(``<d``), ``I`` an int (``<q``), ``E`` an error (JSON).  The harness never unpickles
anything the policy sends, and bounds every frame's size.
"""
from __future__ import annotations

import socket
import struct

HEADER = struct.Struct("<IB")
EVENT_CODES = {"arrival": 0, "completion": 1, "ready": 2}
EVENTS = {v: k for k, v in EVENT_CODES.items()}


class ChannelClosed(EOFError):
    """The other side closed the channel (or died)."""


class FrameTooLarge(ValueError):
    """A frame announced more bytes than the receiver accepts."""


def send(sock: socket.socket, kind: bytes, payload: bytes = b"", fds=()) -> None:
    """Send one frame (with ``fds`` as SCM_RIGHTS ancillary data)."""
    data = HEADER.pack(len(payload), kind[0]) + payload
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def _exact(sock: socket.socket, n: int, first: bytes = b"") -> bytes:
    buf = bytearray(first)
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ChannelClosed("the other side closed the channel")
        buf += chunk
    return bytes(buf)


def recv(sock: socket.socket, max_bytes: int, *, with_fds: bool = False):
    """Receive one frame: ``(kind, payload)``, or ``(kind, payload, fds)`` with ``with_fds``.
    Raises :class:`ChannelClosed` on EOF and :class:`FrameTooLarge` past ``max_bytes``."""
    fds: list[int] = []
    if with_fds:
        first, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, 4)
        if not first:
            raise ChannelClosed("the other side closed the channel")
        head = _exact(sock, HEADER.size, first)
    else:
        head = _exact(sock, HEADER.size)
    n, kind = HEADER.unpack(head)
    if n > max_bytes:
        raise FrameTooLarge(f"a frame of {n} bytes exceeds the limit of {max_bytes}")
    payload = _exact(sock, n) if n else b""
    return (bytes([kind]), payload, fds) if with_fds else (bytes([kind]), payload)


class Channel:
    """Buffered frame reader over a socket: one ``recv`` system call per frame in the
    common case (a routing call is latency-bound, so system calls are the cost)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buf = bytearray()

    def recv(self, max_bytes: int) -> tuple[bytes, bytes]:
        """The next frame: ``(kind, payload)``."""
        buf = self._buf
        while True:
            if len(buf) >= HEADER.size:
                n, kind = HEADER.unpack_from(buf)
                if n > max_bytes:
                    raise FrameTooLarge(f"a frame of {n} bytes exceeds the limit of {max_bytes}")
                end = HEADER.size + n
                if len(buf) >= end:
                    payload = bytes(buf[HEADER.size:end])
                    del buf[:end]
                    return bytes((kind,)), payload
            chunk = self.sock.recv(max(1 << 16, HEADER.size + 1))
            if not chunk:
                raise ChannelClosed("the other side closed the channel")
            buf += chunk

    @property
    def pending(self) -> bool:
        """Whether bytes of a later frame are already buffered."""
        return bool(self._buf)

    def push(self, data: bytes) -> None:
        """Put bytes read elsewhere (a caller's fast path) in front of the buffer."""
        self._buf += data

    def recv_fd(self) -> int:
        """One file descriptor sent with :func:`send_fd` (the buffer must be empty)."""
        if self._buf:
            raise ValueError("unexpected data before a file descriptor")
        _data, fds, _flags, _addr = socket.recv_fds(self.sock, 1, 1)
        if not fds:
            raise ChannelClosed("no file descriptor arrived")
        return fds[0]


def send_fd(sock: socket.socket, fd: int) -> None:
    """Send one file descriptor (a 1-byte message with SCM_RIGHTS)."""
    socket.send_fds(sock, [b"F"], [fd])


__all__ = ["Channel", "send_fd", "send", "recv", "ChannelClosed", "FrameTooLarge", "EVENT_CODES", "EVENTS", "HEADER"]
