"""Framing of the harness <-> policy-process channel: a pair of pipes, and a Unix socket
that carries only file descriptors.

A frame is a 4-byte little-endian payload length, a 1-byte kind and the payload.  Frames
travel over two ``os.pipe()`` pairs (harness -> policy, policy -> harness): a pipe round
trip costs about half the CPU time of a Unix-socket one, and a routing call is one round
trip.  The shared-memory view (a memfd) cannot travel through a pipe, so it goes as
SCM_RIGHTS over a socket pair that carries nothing else (:func:`send_fd`, :func:`recv_fd`).
Standard library only: the policy process imports this before its limits are in force.

Harness -> policy kinds: ``L`` load (JSON), ``S`` start a seed (JSON; its memfd follows on
the socket), ``R`` route (1 byte: event code), ``K`` batch key (``<qd``), ``A`` autoscaler
decide (JSON), ``Q`` quit.  Policy -> harness kinds: ``O`` ok (JSON), ``D`` decisions (int64
pairs), ``F`` a float (``<d``), ``I`` an int (``<q``), ``E`` an error (JSON).  The harness
never unpickles anything the policy sends, and bounds every frame's size.
"""
from __future__ import annotations

import os
import select
import socket
import struct
import time

HEADER = struct.Struct("<IB")
EVENT_CODES = {"arrival": 0, "completion": 1, "ready": 2}
EVENTS = {v: k for k, v in EVENT_CODES.items()}
READ_SIZE = 1 << 16  # one pipe buffer: a routing reply almost always fits one read


class ChannelClosed(EOFError):
    """The other side closed the channel (or died)."""


class FrameTooLarge(ValueError):
    """A frame announced more bytes than the receiver accepts."""


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (a pipe may take a large write in pieces)."""
    n = os.write(fd, data)
    if n < len(data):
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view):]


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    """One frame's bytes."""
    return HEADER.pack(len(payload), kind[0]) + payload


class Channel:
    """Frames over a read and a write file descriptor, with a read buffer: one ``read``
    system call per frame in the common case (a routing call is latency-bound, so system
    calls are the cost)."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self._buf = bytearray()

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        """Send one frame."""
        write_all(self.wfd, frame(kind, payload))

    def recv(self, max_bytes: int, timeout: float | None = None) -> tuple[bytes, bytes]:
        """The next frame: ``(kind, payload)``.  Raises :class:`ChannelClosed` on EOF (or
        when ``timeout`` seconds pass first) and :class:`FrameTooLarge` past ``max_bytes``."""
        buf = self._buf
        until = None if timeout is None else time.monotonic() + timeout
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
            if until is not None:
                left = until - time.monotonic()
                if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                    raise ChannelClosed("the other side did not answer in time")
            chunk = os.read(self.rfd, READ_SIZE)
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

    def close(self) -> None:
        """Close both file descriptors (once: a number closed twice may be someone else's)."""
        fds, self.rfd, self.wfd = (self.rfd, self.wfd), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)


def send_fd(sock: socket.socket, fd: int) -> None:
    """Send one file descriptor (a 1-byte message with SCM_RIGHTS)."""
    socket.send_fds(sock, [b"F"], [fd])


def recv_fd(sock: socket.socket) -> int:
    """One file descriptor sent with :func:`send_fd`; extra ones are closed."""
    _data, fds, _flags, _addr = socket.recv_fds(sock, 1, 4)
    if not fds:
        raise ChannelClosed("no file descriptor arrived")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]


__all__ = ["Channel", "frame", "write_all", "send_fd", "recv_fd", "ChannelClosed",
           "FrameTooLarge", "EVENT_CODES", "EVENTS", "HEADER", "READ_SIZE"]
