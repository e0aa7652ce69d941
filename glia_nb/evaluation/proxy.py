"""The harness side of a sandboxed policy: start the policy process, proxy its calls.

The trusted harness keeps the trace, the simulator state and the results; the candidate
runs in its own confined process (:mod:`glia_nb.evaluation.policy_process`), one per
evaluation.  The harness puts the simulator's *visible* arrays (``rv``, ``rf``, ``pi``,
``slots``, ``qbuf``, ``si``, ``sf``; never ``rh``, ``ph``, ``pf`` or ``ru``, which hold decode
lengths or what a decode stretch derives from them) into a
sealed memfd: the engine keeps writing them in place, and the policy process maps them
read-only (``F_SEAL_FUTURE_WRITE`` stops it from ever mapping them writable).  A routing
call is then a 6-byte frame down one pipe and a reply of int64 pairs up another
(:mod:`glia_nb.evaluation.wire`), so nothing is copied per call.

:class:`PolicyProcess` objects stand in for the candidate inside ``simulate``: a router
(``route``), a batch policy (``key``) or an autoscaler (``decide``).  Whatever goes wrong
on the other side surfaces as :class:`PolicyError` with an error kind.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from glia_nb.evaluation import wire
from glia_nb.evaluation.confine import (NOBODY, HardLimits, drops_to_nobody, package_roots,
                                        policy_landlock, popen_confined)
from glia_nb.evaluation.numba_cache import seeded_cache
from glia_nb.evaluation.trace_guard import HIDDEN_ENV
from glia_nb.jsonable import finite_or_none
from glia_nb.runs import runs_dir

ERROR_KINDS = ("import", "missing_class", "exception", "invalid_decision", "timeout", "memory",
               "network", "crash")
_ROUTE_FRAMES = {ev: wire.HEADER.pack(1, ord("R")) + bytes((code,))
                 for ev, code in wire.EVENT_CODES.items()}
_PAIR = struct.Struct("<qq")
SHARED_ARRAYS = ("rv", "rf", "pi", "slots", "qbuf", "si", "sf")
MAX_REPLY = 64 * 2**20
_SEALS = (getattr(fcntl, "F_SEAL_SEAL", 1) | getattr(fcntl, "F_SEAL_SHRINK", 2)
          | getattr(fcntl, "F_SEAL_GROW", 4) | 0x10)  # 0x10: F_SEAL_FUTURE_WRITE (Linux 5.1)


class PolicyError(Exception):
    """The policy process failed: ``kind`` is one of the harness's error kinds."""

    def __init__(self, kind: str, message: str, traceback: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.traceback = kind, message, traceback


def policy_rng_seed(seed: int) -> int:
    """The candidate's rng seed: a one-way hash of the evaluation seed, so a policy's random
    stream never reveals (or reproduces) the generator that drew the trace."""
    return int.from_bytes(hashlib.sha256(f"glia-policy-rng:{int(seed)}".encode()).digest()[:8],
                          "little")


def _json_object(data: bytes) -> dict:
    """``data`` as a JSON object; ValueError for anything else (the policy sent it)."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def current_cpu() -> int | None:
    """The CPU this thread runs on (Linux), else None."""
    try:
        with open("/proc/thread-self/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def _shared_memory(size: int) -> tuple[int, bool]:
    """A file descriptor of ``size`` bytes and whether it can be sealed (memfd on Linux)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("glia-view", os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 2))
        os.ftruncate(fd, size)
        return fd, True
    fh = tempfile.TemporaryFile(prefix="glia-view-")  # unlinked at once
    fd = os.dup(fh.fileno())
    fh.close()
    os.ftruncate(fd, size)
    return fd, False


class PolicyProcess:
    """One confined policy process for one evaluation (all its seeds)."""

    def __init__(self, *, level: str, limits: HardLimits, deadline: float, log_path: str,
                 hidden=()):
        """``hidden``: directories of earlier runs' telemetry to keep from the candidate, on
        top of the runs folder (:func:`glia_nb.runs.runs_dir`) and the trace generator."""
        self.level, self.limits, self.deadline = level, limits, deadline
        self.log_path = log_path
        self.layer = "router"
        self.name = "policy"
        self._info: dict | None = None
        self._seed = 0
        self.cpu_s: float | None = None
        self.expired = False
        self._affinity: set | None = None
        self.scratch = tempfile.mkdtemp(prefix="glia-policy-")
        # Frames travel over two pipes (the hot path); the socket pair only carries each
        # seed's memfd (SCM_RIGHTS).  The child's ends are closed here once it has them,
        # so its death is an EOF on the reply pipe.
        to_child, self._to_policy = os.pipe()
        self._from_policy, from_child = os.pipe()
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.shutdown(socket.SHUT_RD)  # one way: the policy cannot send on it at all
        self.chan = wire.Channel(self._from_policy, self._to_policy)
        ends = (to_child, from_child, child.fileno())
        hidden = sorted({str(runs_dir().resolve()), *(str(Path(h).resolve()) for h in hidden)})
        env = {"PYTHONPATH": os.pathsep.join(package_roots("glia_nb", "sim_core")),
               HIDDEN_ENV: json.dumps(hidden), "MPLCONFIGDIR": self.scratch}
        argv = [sys.executable, "-I", "-c",
                "import sys; sys.path[:0] = sys.argv[3].split(':'); "
                "from glia_nb.evaluation.policy_process import main; sys.exit(main(sys.argv[1:3]))",
                ",".join(map(str, ends)), json.dumps(limits.to_dict()), env["PYTHONPATH"]]
        with open(log_path, "ab") as log:
            try:
                cache = seeded_cache(self.scratch, NOBODY if drops_to_nobody(level) else None)
                self.proc = popen_confined(argv, level=level, scratch=self.scratch, env=env,
                                           pass_fds=ends, hidden=hidden, numba_cache=cache,
                                           landlock=policy_landlock(level),
                                           stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT)
            except BaseException:
                self.chan.close()
                self.sock.close()
                shutil.rmtree(self.scratch, ignore_errors=True)
                raise
            finally:
                child.close()
                os.close(to_child)
                os.close(from_child)
        self._watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    @property
    def isolation(self) -> str:
        """The isolation the candidate runs under, as results record it (``"bwrap+seccomp"``)."""
        return self.proc.isolation

    def _expire(self) -> None:
        self.expired = True
        self.kill()

    # ------------------------------------------------------------------ channel
    def call(self, kind: bytes | None, payload: bytes = b"", fds=()) -> tuple[bytes, bytes]:
        """One request (``kind=None``: already sent) and its reply; a candidate error
        becomes :class:`PolicyError`."""
        # Blocking I/O (no poll per call); the watchdog kills the process at the deadline.
        try:
            if kind is not None:
                self.chan.send(kind, payload)
                for fd in fds:  # the memfd follows its frame on the socket
                    wire.send_fd(self.sock, fd)
            rkind, reply = self.chan.recv(MAX_REPLY)
        except (wire.ChannelClosed, ConnectionError, OSError) as exc:
            raise self._failed(exc) from None
        except wire.FrameTooLarge as exc:
            self.kill()
            raise PolicyError("invalid_decision", f"the policy's reply was too large: {exc}") from None
        if rkind == b"E":
            try:
                err = json.loads(reply)
                kind_, msg = str(err["kind"]), f"{err['type']}: {err['message']}"
                if kind_ not in ERROR_KINDS:  # the policy's word is data, not a verdict
                    kind_ = "exception"
                if err["kind"] in ("invalid_decision", "import", "missing_class"):
                    msg = str(err["message"])
                exc = PolicyError(kind_, msg, str(err.get("traceback") or "")[-4000:])
            except (ValueError, KeyError, TypeError):
                raise PolicyError("crash", "the policy process sent a malformed error") from None
            exc.layer = self.layer
            raise exc
        return rkind, reply

    def _failed(self, exc: BaseException) -> PolicyError:
        """The channel broke: past the deadline that is a timeout, else the process died."""
        if self.expired or time.monotonic() >= self.deadline:
            self.kill()
            return PolicyError("timeout", "the policy did not answer before the evaluation's "
                                          "wall-time limit and was killed")
        return self._death(exc)

    def _death(self, exc: BaseException) -> PolicyError:
        """The process is gone (or going): how it ended, as a PolicyError."""
        try:
            rc = self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        self.kill()
        if rc is not None and rc < 0 and -rc == signal.SIGXCPU:
            return PolicyError("timeout", "the policy process exceeded its CPU-time limit")
        if rc == 128 + signal.SIGXCPU:
            return PolicyError("timeout", "the policy process exceeded its CPU-time limit")
        how = f"signal {signal.Signals(-rc).name}" if rc is not None and rc < 0 and \
            -rc in signal.Signals._value2member_map_ else f"exit status {rc}"
        return PolicyError("crash", f"the policy process ended ({how}) in the middle of a call "
                                    f"(os._exit, a fatal signal or a hard limit)")

    def load(self, source: str, filename: str, class_name: str, layer: str) -> None:
        """Send the candidate's source; raises :class:`PolicyError` if it does not load."""
        self.layer, self.name = layer, class_name  # as router_name() names it in-process
        _kind, reply = self.call(b"L", json.dumps({"source": source, "filename": filename,
                                                   "class_name": class_name,
                                                   "layer": layer}).encode())
        try:
            doc = _json_object(reply)
        except ValueError:
            self.kill()
            raise PolicyError("crash", "the policy process answered the load with garbage") from None
        self.has_key = doc.get("has_key") is True
        self.start_cpu_s = finite_or_none(doc.get("cpu_s"))  # start-up and import (benchmarks)
        if layer == "router" and doc.get("idle_when_queue_empty") is True:
            # The candidate's class promises to do nothing while the global queue is empty;
            # the facade reads that promise from the router's own class, so take it over.
            self.__class__ = _IdleWhenQueueEmpty
        self.key = self._key if self.has_key else None

    def for_seed(self, seed: int, info) -> "PolicyProcess":
        """Ready this proxy for one simulation (``info``: the run's ClusterInfo)."""
        self._seed, self._info = int(seed), asdict(info)
        return self

    # ------------------------------------------------------------------ simulate hooks
    def share_state(self, st) -> None:
        """``simulate``'s hook: move the visible arrays into sealed shared memory and start
        the seed on the policy side (the candidate is built and reset there)."""
        share_with([self])(st)

    def start_seed(self, fd: int, size: int, layout: list) -> None:
        """Hand the policy process its read-only view of the seed's shared state."""
        cpu = self._pin()
        self.call(b"S", json.dumps({"size": size, "layout": layout, "info": self._info,
                                    "rng_seed": policy_rng_seed(self._seed),
                                    "cpu": cpu}).encode(), fds=(fd,))

    def _pin(self) -> int | None:
        """Pin this thread, for this seed, to the CPU it runs on; the policy process pins
        itself there too.  The two strictly take turns, so nothing runs less in parallel, and
        a wake-up on the same CPU costs a fraction of one that crosses CPUs (measured by
        ``benchmarks/bench_sandbox.py``).  Re-chosen each seed, so the scheduler can spread
        parallel evaluations; undone by :meth:`close`."""
        if not hasattr(os, "sched_setaffinity"):
            return None
        if self._affinity is not None:
            os.sched_setaffinity(0, self._affinity)
        cpu = current_cpu()
        mine = os.sched_getaffinity(0)
        if cpu is None or os.getloadavg()[0] >= len(mine):
            return None  # busy CPUs: the scheduler, not a pin, should place the two
        if len(mine) > 1:  # (a sibling proxy of the same simulation may have pinned it already)
            self._affinity = self._affinity or mine
            os.sched_setaffinity(0, {cpu})
        return cpu

    def reset(self, info, rng) -> None:
        """Done on the policy side when the seed starts (:meth:`share_state`)."""

    def route(self, view):
        """Ask the candidate router; the harness's facade validates the pairs it returns.

        The hot path (some 7,000-14,000 calls a run): one ``write`` of a prepared frame and
        one ``read`` that usually holds the whole reply; anything else (an error, a reply
        split over reads) goes through :meth:`call`'s general path."""
        if not self.chan.pending:
            try:
                os.write(self._to_policy, _ROUTE_FRAMES[view.event])  # 6 bytes: atomic
                data = os.read(self._from_policy, wire.READ_SIZE)
            except OSError as exc:
                raise self._failed(exc) from None
            if data[4:5] == b"D":
                n = len(data) - 5  # wire.HEADER.size
                if n == 16 and data[:4] == b"\x10\0\0\0":  # one request routed: most calls
                    return (_PAIR.unpack_from(data, 5),)
                if int.from_bytes(data[:4], "little") == n:  # the whole frame
                    return _decisions(data, 5, n)
            self.chan.push(data)
            _kind, reply = self.call(None)
        else:
            _kind, reply = self.call(b"R", bytes((wire.EVENT_CODES[view.event],)))
        return _decisions(reply, 0, len(reply))

    def _key(self, prompt_tokens: int, arrived_at: float) -> float:
        from glia_nb.evaluation.policy_process import FLOAT, KEY_ARGS

        _kind, reply = self.call(b"K", KEY_ARGS.pack(int(prompt_tokens), float(arrived_at)))
        return FLOAT.unpack(reply)[0] if len(reply) == FLOAT.size else float("nan")

    def decide(self, stats) -> int:
        """Ask the candidate autoscaler for the number of replicas it wants."""
        from glia_nb.evaluation.policy_process import INT

        d = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
             for k, v in stats.__dict__.items()}
        _kind, reply = self.call(b"A", json.dumps(d).encode())
        if len(reply) != INT.size:
            raise PolicyError("invalid_decision", "decide() returned a malformed reply")
        return INT.unpack(reply)[0]

    # ------------------------------------------------------------------ end
    def kill(self) -> None:
        """Kill the whole sandbox (its process group; bwrap takes its namespace with it)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kernel is slow
            pass

    def close(self) -> None:
        """Say goodbye, then kill whatever is left, give this thread its CPUs back and
        remove the scratch directory (whatever the policy answered, or did not)."""
        try:
            if self.proc.poll() is None:
                try:
                    self.chan.send(b"Q")
                    _kind, reply = self.chan.recv(4096, timeout=2.0)
                    # The policy's own count of its CPU time (for benchmarks, not for scores).
                    self.cpu_s = finite_or_none(_json_object(reply).get("cpu_s"))
                    self.proc.wait(timeout=2.0)
                except (OSError, ValueError, EOFError, subprocess.TimeoutExpired):
                    pass
        finally:
            self._watchdog.cancel()
            if self._affinity is not None:
                os.sched_setaffinity(0, self._affinity)
                self._affinity = None
            self.kill()
            self.chan.close()
            self.sock.close()
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "PolicyProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _decisions(data: bytes, offset: int, n: int):
    """The ``(request, replica)`` pairs in ``n`` bytes of int64 pairs at ``offset``."""
    if n == 0:
        return ()
    if n % 16:
        raise PolicyError("invalid_decision", f"the policy's reply of {n} bytes is not a "
                                              "whole number of (request, replica) pairs")
    flat = iter(struct.unpack_from("<%dq" % (n // 8), data, offset))
    return list(zip(flat, flat))


class _IdleWhenQueueEmpty(PolicyProcess):
    """A proxy whose candidate router declared ``idle_when_queue_empty = True``."""

    idle_when_queue_empty = True


def share_with(procs: list) -> "callable":
    """A ``simulate(share_state=...)`` hook for one or more policy processes (say, a file
    router and a file autoscaler): the visible arrays move once into a sealed memfd that
    every one of them maps read-only."""
    def hook(st) -> None:
        layout, off = [], 0
        for name in SHARED_ARRAYS:
            a = getattr(st, name)
            off = (off + 63) // 64 * 64
            layout.append((name, off, list(a.shape), a.dtype.str))
            off += a.nbytes
        size = max(off, 64)
        fd, sealable = _shared_memory(size)
        try:
            mm = mmap.mmap(fd, size)
            for (name, o, shape, dt) in layout:
                new = np.ndarray(tuple(shape), np.dtype(dt), buffer=mm, offset=o)
                new[...] = getattr(st, name)
                setattr(st, name, new)  # the engine now writes into the shared pages
            if sealable:
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
            for p in procs:
                p.start_seed(fd, size, layout)
        finally:
            os.close(fd)
    return hook


__all__ = ["share_with", "PolicyProcess", "PolicyError", "policy_rng_seed", "SHARED_ARRAYS"]
