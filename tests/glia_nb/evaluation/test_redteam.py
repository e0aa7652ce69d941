"""Red team: hostile candidates attack the evaluator; every attack must fail, and an honest
candidate evaluated right after it scores exactly the built-in LLQ's in-process score.

Each attack is a router file that routes like LLQ (so that, were the attack to go unnoticed,
its score would still be honest) and raises ``LEAK`` the moment it gets what it went for.
Traces are 30 s of routing-a10, so an evaluation costs its process start-ups (about 1-2 s).
Attacks that only namespaces stop are skipped at isolation level ``"process"``.
"""
from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from glia_nb.evaluation.confine import (choose_isolation, isolation_label, policy_landlock,
                                        seccomp_profile)
from glia_nb.evaluation.harness import Limits, evaluate
from glia_nb.tasks import get_task
from policy_sources import LLQ_FUNCTION

LEVEL = choose_isolation(warn=False)
SECCOMP = seccomp_profile("policy")  # None where libseccomp is missing
NEEDS_NAMESPACES = pytest.mark.skipif(LEVEL != "bwrap", reason="bubblewrap is not usable here: "
                                      "the plain-process fallback has no mount/net/pid namespaces")


def recorded(level: str) -> str:
    """The isolation a result records for a candidate confined at ``level``."""
    return isolation_label(level, SECCOMP, policy_landlock(level))


LLQ = LLQ_FUNCTION + """

class Honest:
    def reset(self, info, rng):
        pass

    def route(self, view):
        return llq(view)
"""


def _router(attack: str, *, at: str = "route") -> str:
    """A router file: ``attack`` (source lines) runs once, in ``reset`` or the first
    ``route`` call, then the router routes like LLQ."""
    body = textwrap.indent(textwrap.dedent(attack), " " * 12)
    return LLQ + textwrap.dedent(f"""
class Attack:
    done = False

    def reset(self, info, rng):
        if {at == 'reset'!r}:
            self.attack()

    def route(self, view):
        if not self.done:
            self.done = True
            if {at == 'route'!r}:
                self.attack(view)
        return llq(view)

    def attack(self, view=None):
        if True:
{body}
""")


@pytest.fixture(scope="module")
def task():
    return get_task("routing-a10").replace(duration_s=30, eval_seeds=(0,))


@pytest.fixture(scope="module")
def honest_score(task):
    res = evaluate("llq", task)  # built-in, in-process (trusted)
    assert res.ok and res.isolation == "in-process", res.error
    return res.score


def _eval(tmp_path, source, task, cls, **kw):
    path = tmp_path / f"{cls.lower()}_{time.monotonic_ns()}.py"
    path.write_text(source)
    return evaluate(f"{path}:{cls}", task, **kw)


def _then_honest(tmp_path, task, honest_score, **kw):
    res = _eval(tmp_path, LLQ, task, "Honest", **kw)
    assert res.ok and res.score == honest_score, res.one_line()
    expected = (kw.get("limits") or Limits()).isolation or LEVEL
    assert res.isolation == recorded(expected)


def _no_leak(res):
    assert "LEAK" not in (res.error or ""), res.error


def test_decode_lengths_via_frames_and_gc(tmp_path, task, honest_score):
    attack = """
import gc, inspect, sys
found = []
f = sys._getframe()
while f is not None:
    found += [k for k, v in f.f_locals.items() if hasattr(v, "rh") or k in ("trace", "decode")]
    f = f.f_back
found += [1 for fr in inspect.stack() if "rh" in fr.frame.f_locals or "trace" in fr.frame.f_locals]
def holds_state(o):
    try:
        return type(o).__name__ in ("SimState", "Trace") or "rh" in vars(o)
    except TypeError:
        return False
found += [1 for o in gc.get_objects() if holds_state(o)]
if found:
    raise RuntimeError("LEAK: simulator state reachable")
"""
    res = _eval(tmp_path, _router(attack), task, "Attack")
    _no_leak(res)
    assert res.ok and res.score == honest_score and res.isolation == recorded(LEVEL)
    _then_honest(tmp_path, task, honest_score)


@NEEDS_NAMESPACES
def test_trace_cannot_be_regenerated_from_the_seed(tmp_path, task, honest_score):
    import workloads

    table = os.path.join(os.path.dirname(workloads.__file__), "data", "sharegpt_llama3_lengths.csv")
    attack = f"""
try:
    from workloads import get_scenario
    get_scenario("routing-a10").trace(0)
    raise RuntimeError("LEAK: the trace generator is importable")
except ImportError:
    pass
import os
if os.path.exists({table!r}):
    raise RuntimeError("LEAK: the length table is readable")
"""
    res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack")
    _no_leak(res)
    assert res.ok and res.score == honest_score
    _then_honest(tmp_path, task, honest_score)


def test_the_policy_rng_is_not_the_trace_seed(tmp_path, task):
    from glia_nb.evaluation.proxy import policy_rng_seed

    assert policy_rng_seed(0) not in (0, 1) and policy_rng_seed(0) != policy_rng_seed(1)


def test_forged_result_file_and_exit(tmp_path, task, honest_score):
    attack = """
import glob, json, os
fake = {"per_seed": [{"seed": 0, "mean_e2e_s": 0.001}], "error": None, "simulations": 1}
for d in [os.getcwd(), "/tmp", *glob.glob("/tmp/glia-*")]:
    try:
        open(os.path.join(d, "result.json"), "w").write(json.dumps(fake))
    except OSError:
        pass
os._exit(0)
"""
    res = _eval(tmp_path, _router(attack), task, "Attack")
    assert not res.ok and res.score is None and res.error_kind == "crash", res.one_line()
    _then_honest(tmp_path, task, honest_score)


def test_forged_frames_and_a_one_way_fd_socket(tmp_path, task, honest_score):
    """The candidate writes straight into the pipe its process answers on: a frame that
    announces more than the harness accepts, and a well-formed frame of decisions that the
    candidate's route() never returned.  Both are refused as invalid decisions.  The socket
    that carries the memfds takes nothing back."""
    find_pipe = """
import fcntl, os, stat, struct
def reply_pipe():
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            st = os.fstat(fd)
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        if stat.S_ISFIFO(st.st_mode) and flags & os.O_ACCMODE == os.O_WRONLY:
            return fd
    raise RuntimeError("no reply pipe found")
"""
    oversized = find_pipe + "os.write(reply_pipe(), struct.pack('<IB', 2**31, ord('D')))\n"
    replica_99 = find_pipe + ("q = int(view.queue[0])\n"
                              "os.write(reply_pipe(), struct.pack('<IBqq', 16, ord('D'), q, 99))\n")
    for attack, needle in ((oversized, "too large"), (replica_99, "replica 99")):
        res = _eval(tmp_path, _router(attack), task, "Attack")
        assert not res.ok and res.error_kind == "invalid_decision", res.one_line()
        assert needle in res.error, res.error
    # The socket that brings each seed's memfd is one-way: nothing goes back on it.
    back_channel = """
import os, stat
socks = []
for name in os.listdir("/proc/self/fd"):
    try:
        if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
            socks.append(int(name))
    except OSError:  # the directory listing's own descriptor, closed by now
        pass
for fd in socks:
    try:
        os.write(fd, b"x")
        raise RuntimeError("LEAK: wrote to the harness's socket")
    except BrokenPipeError:
        pass
if not socks:
    raise RuntimeError("no socket found")
"""
    res = _eval(tmp_path, _router(back_channel), task, "Attack")
    _no_leak(res)
    assert res.ok and res.score == honest_score, res.one_line()
    _then_honest(tmp_path, task, honest_score)


def test_patched_result_class_does_not_poison_the_pool(tmp_path, task, honest_score):
    attack = """
import sim_core.results as r
r.SimResult.summary = property(lambda self: {"mean_e2e_s": 0.001, "seed": 0})
"""
    with ProcessPoolExecutor(max_workers=1) as pool:
        res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack", executor=pool)
        assert res.ok and res.score == honest_score  # its patch lives in its own process
        _then_honest(tmp_path, task, honest_score, executor=pool)


def test_keys_unreachable_from_environment_and_proc(tmp_path, task, honest_score, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-redteam-0123456789")
    attack = """
import glob, os
if any("sk-redteam" in v for v in os.environ.values()):
    raise RuntimeError("LEAK: key in the environment")
for p in glob.glob("/proc/*/environ"):
    try:
        if b"sk-redteam" in open(p, "rb").read():
            raise RuntimeError("LEAK: key in " + p)
    except OSError:
        pass
"""
    res = _eval(tmp_path, _router(attack), task, "Attack")
    _no_leak(res)
    assert res.ok and res.score == honest_score
    _then_honest(tmp_path, task, honest_score)


@NEEDS_NAMESPACES
def test_writes_outside_the_scratch_dir_fail(tmp_path, task, honest_score):
    target = tmp_path / "forged_ledger.csv"
    attack = f"""
for p in ({str(target)!r}, {str(tmp_path / 'ledger.csv')!r}):
    try:
        open(p, "w").write("99,forged,ok,0.001\\n")
    except OSError:
        pass
"""
    res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack")
    assert res.ok and res.score == honest_score
    assert not target.exists() and not (tmp_path / "ledger.csv").exists()
    _then_honest(tmp_path, task, honest_score)


@NEEDS_NAMESPACES
def test_sockets_blocked_also_through_ctypes(tmp_path, task, honest_score):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    attack = f"""
import ctypes, socket, struct
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1)
    raise RuntimeError("LEAK: python socket connected")
except PermissionError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(2, 1, 0)
addr = struct.pack("<HH4s8x", 2, socket.htons({port}), bytes([127, 0, 0, 1]))
if fd >= 0 and libc.connect(fd, addr, len(addr)) == 0:
    raise RuntimeError("LEAK: ctypes socket connected")
"""
    res = _eval(tmp_path, _router(attack), task, "Attack")
    got = []
    for _ in range(5):  # bounded: did anything reach the server?
        try:
            got.append(srv.accept())
        except (TimeoutError, socket.timeout):
            pass
    srv.close()
    assert not got
    _no_leak(res)
    assert res.ok and res.score == honest_score
    _then_honest(tmp_path, task, honest_score)


def _sleepers(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def test_fork_and_children_left_behind(tmp_path, task, honest_score):
    attack = """
import ctypes, os, subprocess
try:
    subprocess.Popen(["sleep", "987"])
except PermissionError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
pid = libc.fork()
if pid == 0:
    argv = (ctypes.c_char_p * 3)(b"/bin/sleep", b"987", None)
    libc.execv(b"/bin/sleep", argv)
    libc._exit(0)
"""
    res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack")
    assert res.ok and res.score == honest_score
    time.sleep(0.5)
    assert not _sleepers("sleep 987")
    _then_honest(tmp_path, task, honest_score)


def test_parent_killed_exit_and_keyboard_interrupt(tmp_path, task, honest_score):
    kill = """
import ctypes, os, signal
try:
    os.kill(os.getppid(), signal.SIGKILL)
except PermissionError:
    pass
ctypes.CDLL(None).kill(os.getppid(), 9)
ctypes.CDLL(None).kill(os.getpid(), 9)
"""
    for attack, kind in ((kill, "crash"), ("import os\nos._exit(3)", "crash"),
                         ("raise KeyboardInterrupt", "exception"),
                         ("raise SystemExit(0)", "exception")):
        res = _eval(tmp_path, _router(attack), task, "Attack")
        assert not res.ok and res.error_kind == kind, (attack, res.one_line())
    _then_honest(tmp_path, task, honest_score)


def test_timeout_swallowing_loop(tmp_path, task, honest_score):
    attack = """
import time
while True:
    try:
        time.sleep(0.05)
    except BaseException:
        pass
"""
    t0 = time.monotonic()
    res = _eval(tmp_path, _router(attack), task, "Attack", limits=Limits(wall_s=6))
    assert res.error_kind == "timeout" and time.monotonic() - t0 < 20, res.one_line()
    _then_honest(tmp_path, task, honest_score)


def test_memory_and_rlimit_lifting(tmp_path, task, honest_score):
    lift = """
import resource
for r in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_CPU):
    try:
        resource.setrlimit(r, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        raise RuntimeError("LEAK: a hard limit was raised")
    except (ValueError, OSError):
        pass
"""
    res = _eval(tmp_path, _router(lift, at="reset"), task, "Attack")
    _no_leak(res)
    assert res.ok and res.score == honest_score
    hog = _eval(tmp_path, _router("x = bytearray(8 * 2**30)"), task, "Attack",
                limits=Limits(memory_mb=1024))
    assert hog.error_kind == "memory", hog.one_line()
    _then_honest(tmp_path, task, honest_score)


def test_fallback_level_still_contains_a_candidate(tmp_path, task, honest_score):
    """The plain-process fallback: no namespaces, but a fresh process, hard limits, no
    keys and the same harness-side scoring."""
    lim = Limits(isolation="process")
    res = _eval(tmp_path, _router("import os\nos._exit(0)"), task, "Attack", limits=lim)
    assert res.error_kind == "crash" and res.isolation == recorded("process")
    res = _eval(tmp_path, _router("x = bytearray(8 * 2**30)"), task, "Attack",
                limits=Limits(isolation="process", memory_mb=1024))
    assert res.error_kind == "memory"
    _then_honest(tmp_path, task, honest_score, limits=lim)


def test_concurrent_resume_is_refused(tmp_path):
    """Two processes writing one session: the second gets a one-line error, the first goes on."""
    import sys

    from glia_nb.research.journal import Journal, JournalLockedError

    j = Journal.create(tmp_path / "s" / "journal.jsonl", {"task": "t"})
    j.append("note", text="first writer")
    code = ("import sys; from glia_nb.research.journal import Journal, JournalLockedError\n"
            "try:\n    Journal.open(sys.argv[1])\nexcept JournalLockedError as e:\n"
            "    print(e); sys.exit(3)\n")
    other = subprocess.run([sys.executable, "-c", code, str(j.path)], capture_output=True,
                           text=True, timeout=60)
    assert other.returncode == 3 and "in use by another process" in other.stdout
    with pytest.raises(JournalLockedError):  # also a second handle in this process
        Journal.open(j.path)
    j.append("note", text="still writing")
    j.close()
    again = Journal.open(j.path)  # released with the first writer
    assert again.next_seq == 3
    again.close()


def test_shell_cannot_forge_the_journal_or_ledger(tmp_path):
    """Inside the Researcher's shell the harness-owned records are read-only (bubblewrap);
    at the plain-process level the harness puts them back after the command, which fails."""
    from glia_nb.research.journal import Journal
    from glia_nb.research.tools import ToolBox
    from glia_nb.research.workspace import Workspace

    ws = Workspace.create(tmp_path, get_task("routing-a10"), "s1")
    tb = ToolBox(ws)
    tb.journal = Journal.create(ws.path / "journal.jsonl", {"task": "t"})
    if LEVEL != "bwrap":  # as a non-root user's workspace is (a root harness runs it as nobody)
        for p in (ws.path, *ws.path.iterdir()):
            p.chmod(0o777 if p.is_dir() else 0o666)
    before = {n: (ws.path / n).read_text() for n in ("journal.jsonl", "ledger.csv")}
    res = tb.call("shell", {"command": "echo '99,forged,ok,0.001' >> ledger.csv; "
                                       "echo '{}' >> journal.jsonl; rm -f ledger.csv; "
                                       "mv journal.jsonl j2; true"})
    assert {n: (ws.path / n).read_text() for n in before} == before, res.text
    if LEVEL != "bwrap":
        assert res.is_error and set(res.data["records_restored"]) == set(before)
    tb.journal.close()


def test_journal_header_records_the_isolation_level(tmp_path):
    from session_fakes import FakeToolBox

    from glia_nb.research.journal import read_journal
    from glia_nb.research.session.session import Session

    s = Session.create("Design a better router. Lower mean latency is better.", tmp_path, "offline",
                       toolbox=FakeToolBox([40]), run_baseline=False)
    s.journal.close()
    header, _records = read_journal(s.journal.path)
    assert header["isolation"] == recorded(LEVEL)


def test_idle_promise_is_kept_through_the_proxy(tmp_path, task, honest_score):
    """A router class that declares ``idle_when_queue_empty`` is called only when requests
    wait, sandboxed as in-process, and scores the same."""
    src = LLQ.replace("class Honest:\n", "class Honest:\n    idle_when_queue_empty = True\n")
    res = _eval(tmp_path, src, task, "Honest")
    assert res.ok and res.score == honest_score
    from glia_nb.evaluation.confine import HardLimits
    from glia_nb.evaluation.proxy import PolicyProcess

    p = PolicyProcess(level=LEVEL, limits=HardLimits(), deadline=time.monotonic() + 60,
                      log_path=os.devnull)
    try:
        p.load(src, "honest.py", "Honest", "router")
        assert type(p).__dict__.get("idle_when_queue_empty") is True
    finally:
        p.close()


def _die():
    os._exit(9)


def test_a_broken_pool_is_rebuilt(tmp_path, task, honest_score):
    """A pool worker that dies (as a parent-killing candidate would make it at level
    "process") breaks the pool; the next evaluation on it gets a fresh one."""
    from concurrent.futures.process import BrokenProcessPool

    from glia_nb.evaluation.pool import RebuildingProcessPool

    pool = RebuildingProcessPool(max_workers=1)
    try:
        with pytest.raises(BrokenProcessPool):
            pool.submit(_die).result(timeout=60)
        _then_honest(tmp_path, task, honest_score, executor=pool)
        assert pool.rebuilds == 1
    finally:
        pool.shutdown()
