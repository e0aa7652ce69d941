"""The Researcher's shell under its seccomp filter: no network even at the plain-process
fallback (which has no network namespace), while pipes, subprocesses and the session's
python keep working; the tool's result records the isolation with its filter."""
from __future__ import annotations


import pytest
from net_probe import accepted, listener

from glia_nb.evaluation.confine import choose_isolation, isolation_label, seccomp_profile
from glia_nb.research.shell import run_confined
from glia_nb.research.tools import ToolBox
from glia_nb.research.workspace import Workspace
from glia_nb.tasks import get_task

SHELL_SECCOMP = seccomp_profile("shell")
pytestmark = pytest.mark.skipif(SHELL_SECCOMP is None, reason="libseccomp is not usable here")
LEVELS = ["process"] + (["bwrap"] if choose_isolation(warn=False) == "bwrap" else [])


@pytest.fixture
def ws(tmp_path):
    return Workspace.create(tmp_path, get_task("routing-a10"), "s1")


@pytest.mark.parametrize("level", LEVELS)
def test_no_connection_from_the_shell_at_either_level(ws, level):
    srv, port = listener()
    cmd = (f"python -c \"import socket; socket.create_connection(('127.0.0.1', {port}))\"; "
           f"echo python=$?; "
           f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo CONNECTED; "
           f"python -c \"import ctypes; print('raw fd', ctypes.CDLL(None).socket(2, 1, 0))\"")
    text, rc, timed_out, _total = run_confined(cmd, ws.path, 60, 8000, level)
    assert not accepted(srv), text
    assert not timed_out and "PermissionError: [Errno 1] Operation not permitted" in text, text
    assert "python=1" in text and "CONNECTED" not in text and "raw fd -1" in text, text


@pytest.mark.parametrize("level", LEVELS)
def test_the_shell_keeps_pipes_processes_and_python(ws, level):
    cmd = ("grep '^Seccomp:' /proc/self/status; seq 1 5 | sort -r | head -n 2 | tr '\\n' ,; "
           "python -c \"import subprocess; print(subprocess.run(['echo', 'child'], "
           "capture_output=True, text=True).stdout.strip())\"")
    text, rc, _timed_out, _total = run_confined(cmd, ws.path, 60, 8000, level)
    assert rc == 0, text
    assert "Seccomp:\t2" in text and "5,4," in text and "child" in text, text


def test_the_shell_tool_records_its_filter(ws):
    tb = ToolBox(ws, max_output_chars=2000)
    tb.shell_isolation = "process"
    res = tb.call("shell", {"command": "true"})
    assert not res.is_error, res.text
    assert res.data["isolation"] == isolation_label("process", SHELL_SECCOMP) == "process+seccomp"
