"""The untrusted side: run one candidate policy, answer the harness's calls, nothing else.

Run (confined, see :mod:`glia_nb.evaluation.confine`) as
``python -m glia_nb.evaluation.policy_process FDS LIMITS_JSON``: ``FDS`` are the read end of
the request pipe, the write end of the reply pipe and this end of the socket pair that
carries the shared memory's file descriptor (:mod:`glia_nb.evaluation.wire`).  The process
hardens its limits first, then receives the candidate's source (never a path to the
workspace), and for each seed a read-only mapping of the simulator's *visible* columns
(request columns a router may see, replica columns, the queues and scalars; never the
hidden decode lengths), the static cluster facts and an rng seed derived from the
evaluation seed through a one-way hash.  It answers ``route``, ``key`` and ``decide`` calls
with data; it writes no result and holds no score.
"""
from __future__ import annotations

import json
import os
import struct
import sys

MAX_FRAME = 64 * 2**20
KEY_ARGS, FLOAT, INT = struct.Struct("<qd"), struct.Struct("<d"), struct.Struct("<q")


def _load(msg: dict):
    """The candidate object's class (or function) and the path its source runs from.

    The source is written into the scratch directory (the working directory) under its
    own name and runs from there: the workspace is out of sight in the sandbox, and numba's
    ``cache=True`` reads the source file of what it compiles."""
    import os
    import types

    from sim_core.policies import MissingPolicyClassError, PolicyImportError

    filename, name = msg["filename"], msg["class_name"]
    local = os.path.join(os.getcwd(), os.path.basename(filename) or "policy.py")
    with open(local, "w", encoding="utf-8") as fh:
        fh.write(msg["source"])
    module = types.ModuleType("glia_policy")
    module.__file__ = local
    sys.modules["glia_policy"] = module  # dataclasses and pickling look modules up here
    try:
        exec(compile(msg["source"], local, "exec"), module.__dict__)  # noqa: S102
    except Exception as exc:  # any import-time failure of the candidate
        raise PolicyImportError(f"policy file {filename} does not import: "
                              f"{type(exc).__name__}: {exc}") from exc
    obj = getattr(module, name, None)
    if obj is None:
        found = sorted(n for n, v in vars(module).items() if isinstance(v, type)
                       and v.__module__ == "glia_policy")
        raise MissingPolicyClassError(f"policy file {filename} has no class {name!r}"
                              f" (classes found: {', '.join(found) or 'none'})")
    return obj, local


NETWORK_MESSAGE = "network access is disabled in the sandbox"
PROCESS_MESSAGE = "starting or signalling processes is disabled in the sandbox"
_BLOCKED_EVENTS = {"socket.__new__": NETWORK_MESSAGE, "socket.connect": NETWORK_MESSAGE,
                   "socket.bind": NETWORK_MESSAGE, "socket.getaddrinfo": NETWORK_MESSAGE,
                   "socket.gethostbyname": NETWORK_MESSAGE, "subprocess.Popen": PROCESS_MESSAGE,
                   "os.system": PROCESS_MESSAGE, "os.exec": PROCESS_MESSAGE,
                   "os.posix_spawn": PROCESS_MESSAGE, "os.spawn": PROCESS_MESSAGE,
                   "os.fork": PROCESS_MESSAGE, "os.forkpty": PROCESS_MESSAGE,
                   "os.kill": PROCESS_MESSAGE, "os.killpg": PROCESS_MESSAGE,
                   "signal.pthread_kill": PROCESS_MESSAGE}


class SandboxDenied(PermissionError):
    """Raised by the policy process's audit hook (sockets, processes, signals)."""


def install_audit_guard() -> None:
    """Block socket use, process creation and signals from Python (PEP 578 hook; it cannot
    be removed).  Code going through ``ctypes`` gets past it: the namespaces, the hard limits
    and the seccomp filter are the boundary, this hook only turns the common cases into clear
    errors."""
    def hook(event, _args):
        msg = _BLOCKED_EVENTS.get(event)
        if msg is not None:
            raise SandboxDenied(msg)
    sys.addaudithook(hook)


class InvalidDecision(ValueError):
    """A decision that is not a pair of integers."""


def _pack(decisions, array) -> bytes:
    """Decisions as int64 pairs; anything but integer pairs is refused (never truncated)."""
    import numpy as np

    if decisions is None:
        return b""
    if isinstance(decisions, np.ndarray):
        if decisions.size == 0:
            return b""
        if decisions.dtype.kind not in "iu" or decisions.ndim != 2 or decisions.shape[1] != 2:
            raise InvalidDecision(f"decisions must be (request_id, replica) integer pairs; got "
                                  f"an array of {decisions.dtype} with shape {decisions.shape}")
        return decisions.astype("<i8").tobytes()
    out = array("q")
    for d in decisions:
        try:
            q, r = d
        except (TypeError, ValueError) as exc:
            raise InvalidDecision(f"a decision must be a pair (request_id, replica); got {d!r}") from exc
        for v in (q, r):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InvalidDecision(f"a decision must be a pair of ints (request_id, replica); "
                                      f"got {d!r} ({type(v).__name__})")
        out.append(int(q))
        out.append(int(r))
    return out.tobytes()


_ONE, _NONE = struct.Struct("<IBqq"), struct.pack("<IB", 0, 68)


def _reply(decisions) -> bytes:
    """The whole ``D`` frame of a route() result.  The usual shapes (no decision, or a list
    of ``(int, int)`` tuples) are packed in one call; anything else (arrays, numpy ints,
    lists as pairs, errors) goes through :func:`_pack`, which says what is wrong."""
    if type(decisions) is list or type(decisions) is tuple:
        n = len(decisions)
        if n == 1:  # one request routed: most calls
            d = decisions[0]
            if type(d) is tuple and len(d) == 2 and type(d[0]) is int and type(d[1]) is int:
                try:
                    return _ONE.pack(16, 68, d[0], d[1])
                except struct.error:  # out of int64 range: _pack raises the usual error
                    pass
        elif n == 0:
            return _NONE
        else:
            flat = []
            for d in decisions:
                if type(d) is not tuple or len(d) != 2:
                    break
                q, r = d
                if type(q) is not int or type(r) is not int:  # bool, numpy ints: _pack
                    break
                flat.append(q)
                flat.append(r)
            else:
                try:
                    return struct.pack("<IB%dq" % len(flat), 8 * len(flat), 68, *flat)
                except struct.error:
                    pass
    from array import array

    out = _pack(decisions, array)
    return struct.pack("<IB", len(out), 68) + out


def _route_loop(rfd: int, wfd: int, route, view, filename: str) -> bytes:
    """The hot path: answer whole 6-byte route frames (one read, one write each) until
    something else arrives, and return those bytes.  The candidate's errors become ``E``
    frames; a broken channel raises (the process then ends)."""
    import os

    from glia_nb.evaluation import wire

    read, write, events = os.read, os.write, wire.EVENTS
    while True:
        data = read(rfd, wire.READ_SIZE)
        if len(data) != 6 or data[4] != 82:  # not exactly one b"R" frame
            return data
        try:
            view.event = events[data[5]]
            out = _reply(route(view))
        except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything
            out = wire.frame(b"E", _error(exc, filename))
        n = write(wfd, out)
        if n != len(out):  # a large reply the pipe took in pieces
            wire.write_all(wfd, out[n:])


def _error(exc: BaseException, filename: str, kind: str | None = None) -> bytes:
    import os
    import traceback

    if kind is None:
        from sim_core.policies import MissingPolicyClassError, PolicyLoadError

        if isinstance(exc, MemoryError):
            kind = "memory"
        elif isinstance(exc, InvalidDecision):
            kind = "invalid_decision"
        elif isinstance(exc, MissingPolicyClassError):
            kind = "missing_class"
        elif isinstance(exc, PolicyLoadError):
            kind = "import"
        elif isinstance(exc, SandboxDenied):  # the network or process guard
            kind = "network"
        elif isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and exc.errno in (
                101, 111, 113, 97, 99)):  # ENETUNREACH ECONNREFUSED EHOSTUNREACH EAFNOSUPPORT
            kind = "network"
        else:
            kind = "exception"
    tb = "".join(traceback.format_exception(exc)).rstrip().splitlines()[-30:]
    where, frame = "", exc.__traceback__
    while frame is not None:  # the innermost line of the candidate's own file
        code = frame.tb_frame.f_code
        if code.co_filename == filename:
            where = f" (at {os.path.basename(filename)}:{frame.tb_lineno} in {code.co_name})"
        frame = frame.tb_next
    return json.dumps({"kind": kind, "type": type(exc).__name__,
                       "message": str(exc)[:2000] + where,
                       "traceback": "\n".join(tb)}).encode()


def _view(fd: int, msg: dict):
    """A :class:`sim_core.view.ClusterView` over a read-only mapping of the shared state."""
    import mmap
    import os
    from types import SimpleNamespace

    import numpy as np

    from sim_core import state as S
    from sim_core.view import ClusterInfo, ClusterView

    mm = mmap.mmap(fd, msg["size"], prot=mmap.PROT_READ)
    os.close(fd)
    arr = {name: np.ndarray(tuple(shape), np.dtype(dt), buffer=mm, offset=off)
           for name, off, shape, dt in msg["layout"]}
    st = SimpleNamespace(**arr, gq=arr["qbuf"][S.Q_GQ], done_buf=arr["qbuf"][S.Q_DONE],
                         run_ids=arr["slots"][S.SL_RUN])
    info = ClusterInfo(**msg["info"])
    return ClusterView(st, info), info


def serve(rfd: int, wfd: int, sock) -> int:
    """Answer the harness (requests on ``rfd``, replies on ``wfd``, memfds on ``sock``)
    until it says ``Q`` or closes the channel."""
    import numpy as np

    from glia_nb.evaluation import wire
    from glia_nb.evaluation.wire import write_all

    cls = layer = policy = key = view = filename = None
    chan = wire.Channel(rfd, wfd)
    while True:
        try:
            if layer == "router" and view is not None and not chan.pending:
                data = _route_loop(rfd, wfd, policy.route, view, filename)
                if not data:
                    return 0
                chan.push(data)
            kind, payload = chan.recv(MAX_FRAME)
        except wire.ChannelClosed:
            return 0
        try:
            if kind == b"R":
                view.event = wire.EVENTS[payload[0]]
                write_all(wfd, _reply(policy.route(view)))
            elif kind == b"K":
                p, t = KEY_ARGS.unpack(payload)
                chan.send(b"F", FLOAT.pack(float(key(p, t))))
            elif kind == b"A":
                from sim_core.autoscale import ClusterStats

                d = json.loads(payload)
                stats = ClusterStats(**{k: np.asarray(v) if isinstance(v, list) else v
                                        for k, v in d.items()})
                n = policy.decide(stats)
                if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                    raise InvalidDecision(f"decide() must return an int; got {n!r}")
                chan.send(b"I", INT.pack(int(n)))
            elif kind == b"S":
                msg = json.loads(payload)
                if isinstance(msg.get("cpu"), int):
                    try:
                        os.sched_setaffinity(0, {msg["cpu"]})
                    except OSError:
                        pass
                view, info = _view(wire.recv_fd(sock), msg)  # the memfd follows the frame
                policy, key = _instantiate(cls, layer)
                rng = np.random.default_rng(msg["rng_seed"])
                if hasattr(policy, "reset") and layer != "batch_policy":
                    policy.reset(info, rng)
                chan.send(b"O", b"{}")
            elif kind == b"L":
                msg = json.loads(payload)
                layer, filename = msg["layer"], msg["filename"]
                cls, filename = _load(msg)  # errors name the candidate's lines in that copy
                probe, probe_key = _instantiate(cls, layer)
                import resource

                ru = resource.getrusage(resource.RUSAGE_SELF)
                idle = bool(isinstance(cls, type) and cls.__dict__.get("idle_when_queue_empty"))
                chan.send(b"O", json.dumps({"has_key": probe_key is not None,
                                            "idle_when_queue_empty": idle,
                                            "cpu_s": ru.ru_utime + ru.ru_stime}).encode())
            elif kind == b"Q":
                import resource

                ru = resource.getrusage(resource.RUSAGE_SELF)
                chan.send(b"O", json.dumps({"cpu_s": ru.ru_utime + ru.ru_stime}).encode())
                return 0
            else:
                raise ValueError(f"unknown request {kind!r}")
        except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything
            # KeyboardInterrupt and SystemExit from the candidate are failures of the
            # candidate, reported like any error; the harness decides what happens next.
            chan.send(b"E", _error(exc, filename))


def _instantiate(cls, layer: str):
    """A fresh policy object and, for batch policies, its key function (None: arrival)."""
    if layer == "batch_policy":
        from sim_core.batch_policies import make_batch_policy

        p = make_batch_policy(cls)
        return p, p.key
    method = {"router": "route", "autoscaler": "decide"}[layer]
    if not callable(getattr(cls, method, None)):
        from sim_core.policies import MissingPolicyClassError

        raise MissingPolicyClassError(f"class {getattr(cls, '__name__', cls)} has no {method}() "
                                      "method")
    return cls(), None


def main(argv=None) -> int:
    """Entry point: harden, then serve the harness on the inherited pipes and socket."""
    argv = sys.argv[1:] if argv is None else argv
    from glia_nb.evaluation.confine import harden

    harden(json.loads(argv[1]))
    import socket

    rfd, wfd, sfd = (int(fd) for fd in argv[0].split(","))
    sock = socket.socket(fileno=sfd)
    import numpy  # noqa: F401  (before the candidate: its imports then cost nothing)
    from glia_nb.evaluation.seccomp_filter import load_from_env
    load_from_env()  # the parent's seccomp filter, before any candidate code

    import sim_core.view  # noqa: F401  (numba loads only if the candidate imports it)
    from glia_nb.evaluation.trace_guard import hidden_from_env, install_trace_guard, trace_sources

    # No workloads (the trace generator), no harness module and no earlier run's telemetry,
    # at every isolation level.
    hidden = [*trace_sources(), *hidden_from_env()]
    # At level "process": the kernel's file allow-list too, for native code (landlock.py);
    # before the guard, which would refuse the directory descriptors its rules are made of.
    from glia_nb.evaluation.landlock import restrict_policy_process
    restrict_policy_process(hidden)
    install_trace_guard(hidden)
    # Python-level guard on top of the namespaces (and the only one at level "process").
    install_audit_guard()
    return serve(rfd, wfd, sock)


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    sys.exit(main())
