"""The Researcher's shell: run one command confined, keep the head and tail of its output.

The command runs as ``bash -c`` under the candidates' confinement
(:func:`glia_nb.evaluation.confine.popen_shell`): the workspace is the only writable place,
no keys, no network, no view of other processes.  Its process group (bubblewrap takes its
namespace with it) is killed at the timeout.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading

from glia_nb.text import truncate_middle


class _HeadTail:
    """Drains a pipe, keeping only the first and last ``limit`` bytes (bounded memory)."""

    def __init__(self, stream, limit: int):
        self.head, self.tail, self.total, self.limit = bytearray(), bytearray(), 0, limit
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:
        try:
            while chunk := stream.read1(65536):
                self.total += len(chunk)
                room = self.limit - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    del self.tail[: max(0, len(self.tail) - self.limit)]
        except (OSError, ValueError):
            pass

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def text(self, join_timeout: float) -> tuple[str, int]:
        self._thread.join(join_timeout)
        data = bytes(self.head)
        kept = len(self.head) + len(self.tail)
        if self.total > kept:
            data += f"\n[... {self.total - kept} bytes omitted ...]\n".encode()
        data += bytes(self.tail)
        return data.decode("utf-8", "replace"), self.total


def run_confined(command: str, workspace, timeout: float, max_chars: int,
                 level: str) -> tuple[str, int, bool, int]:
    """``(text, returncode, timed_out, output_bytes)`` of ``command``; ``text`` ends with an
    ``[exit code N]`` or ``[killed after T s (timeout) ...]`` footer."""
    from glia_nb.evaluation.confine import popen_shell

    proc = popen_shell(command, workspace, level, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reader = _HeadTail(proc.stdout, max_chars)
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        rc = None
    # Whatever the command left running goes with it (a background job could otherwise
    # rewrite records after the harness has checked them); the seccomp filter keeps every
    # descendant in this process group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    if rc is None:
        rc = proc.wait()
    # A daemonised grandchild may hold the pipe open; do not wait for it forever.
    text, total = reader.text(join_timeout=2.0)
    if not reader.alive:  # closing under a blocked reader thread would block us too
        proc.stdout.close()
    text = truncate_middle(text, max_chars)
    footer = (f"[killed after {timeout:g} s (timeout); output so far shown]" if timed_out
              else f"[exit code {rc}]")
    body = text.rstrip("\n")
    return (f"{body}\n{footer}" if body else footer), rc, timed_out, total


__all__ = ["run_confined"]
