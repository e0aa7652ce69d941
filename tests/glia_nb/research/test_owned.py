"""Harness-owned records stay as the harness wrote them where the sandbox cannot make them
read-only (the plain-process level): after a shell command or an evaluation, the journal and
the workspace's records are put back and the tool call fails, naming what was altered."""
from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from glia_nb.evaluation.confine import policy_landlock
from glia_nb.evaluation.harness import Limits
from policy_sources import LLQ_SOURCE
from glia_nb.research.journal import Journal, JournalLockedError, read_journal
from glia_nb.research.owned import RecordSnapshot
from glia_nb.research.tools import ToolBox
from glia_nb.research.workspace import Workspace
from glia_nb.tasks import get_task


def _journal(tmp_path) -> Journal:
    j = Journal.create(tmp_path / "journal.jsonl", {"task": "t"})
    j.append("note", text="one")
    j.append("note", text="two")
    return j


@pytest.mark.parametrize("attack", ["append", "rewrite", "remove", "rename", "symlink"])
def test_journal_puts_back_what_it_wrote(tmp_path, attack):
    j = _journal(tmp_path)
    before = j.path.read_bytes()
    assert j.restore_if_altered() is False  # nothing changed: nothing done
    p = j.path
    if attack == "append":
        with open(p, "a") as fh:
            fh.write('{"seq": 3, "type": "experiment", "score": 0.001}\n')
    elif attack == "rewrite":
        p.write_bytes(before.replace(b'"one"', b'"0.1"'))
    elif attack == "remove":
        p.unlink()
    elif attack == "rename":
        p.rename(tmp_path / "elsewhere.jsonl")
        p.write_text('{"type": "header", "seq": 0}\n')
    else:
        forged = tmp_path / "forged.jsonl"
        forged.write_text('{"type": "header", "seq": 0}\n')
        p.unlink()
        p.symlink_to(forged)
    assert j.restore_if_altered() is True
    assert not p.is_symlink() and p.read_bytes() == before
    j.append("note", text="three")  # the journal goes on, on the restored file
    header, records = read_journal(p)
    assert [r["text"] for r in records] == ["one", "two", "three"]
    with pytest.raises(JournalLockedError):  # the lock holds on the restored file too
        Journal.open(p)
    j.close()


def test_snapshot_removes_added_and_restores_changed_records(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "exp" / "m.json"
    b.parent.mkdir()
    a.write_text("id,score\n1,2.5\n")
    b.write_text('{"score": 2.5}')
    listing = lambda: [f for f in (a, b, tmp_path / "exp2" / "m.json") if f.exists()]  # noqa: E731
    snap = RecordSnapshot(tmp_path, listing)
    assert snap.restore() == []
    a.write_text("id,score\n1,0.1\n")
    b.unlink()
    (tmp_path / "exp2").mkdir()
    (tmp_path / "exp2" / "m.json").write_text('{"score": 0.1}')
    assert snap.restore() == ["a.csv", "exp/m.json", "exp2/m.json"]
    assert a.read_text() == "id,score\n1,2.5\n" and b.read_text() == '{"score": 2.5}'
    assert not (tmp_path / "exp2" / "m.json").exists()


@pytest.fixture
def workspace(tmp_path):
    task = get_task("routing-a10").replace(duration_s=30, eval_seeds=(0,))
    ws = Workspace.create(tmp_path, task, "s1")
    return ws


def _open_up(root: Path) -> None:
    """What a non-root user's workspace is: writable by the code it runs (in this suite the
    fallback runs untrusted code as nobody when started as root)."""
    for d, dirs, files in os.walk(root):
        os.chmod(d, 0o777)
        for f in files:
            os.chmod(os.path.join(d, f), 0o666)


def test_shell_at_the_process_level_cannot_keep_a_forged_record(workspace):
    tb = ToolBox(workspace)
    tb.shell_isolation = "process"  # the level that cannot bind records read-only
    tb.journal = Journal.create(workspace.path / "journal.jsonl", {"task": "t"})
    tb.journal.append("note", text="honest")
    tb.run_baseline()
    _open_up(workspace.path)
    before = {p: p.read_bytes() for p in [*workspace.record_files(), tb.journal.path]}
    res = tb.call("shell", {"command": textwrap.dedent("""\
        echo '99,forged,,ok,,0.001' >> ledger.csv
        echo '{"seq": 9, "type": "experiment", "score": 0.001}' >> journal.jsonl
        for m in experiments/*/metrics.json; do echo '{"score": 0.001}' > "$m"; done
        mkdir -p experiments/099_forged && echo '{"score": 0.001}' > experiments/099_forged/metrics.json
        rm -f TASK.md
        true""")})
    assert res.is_error and "restored" in res.text, res.text
    assert {"ledger.csv", "journal.jsonl", "TASK.md"} <= set(res.data["records_restored"])
    assert {p: p.read_bytes() for p in before} == before
    assert not (workspace.path / "experiments" / "099_forged" / "metrics.json").exists()
    tb.journal.close()


def test_candidate_at_the_process_level_that_forges_records_fails(workspace):
    tb = ToolBox(workspace, limits=Limits(isolation="process"))
    tb.journal = Journal.create(workspace.path / "journal.jsonl", {"task": "t"})
    base = tb.run_baseline()
    _open_up(workspace.path)
    ledger = workspace.ledger_path
    forger = LLQ_SOURCE + textwrap.dedent(f"""
        class Policy(LLQ):
            def reset(self, info, rng):
                for name, text in (({str(ledger)!r}, "99,forged,,ok,,0.001\\n"),
                                   ({str(workspace.path / 'journal.jsonl')!r}, '{{"seq": 9}}\\n')):
                    try:
                        with open(name, "a") as fh:
                            fh.write(text)
                    except OSError:
                        pass
        """)
    workspace.policy_path.write_text(forger.replace("class Policy", f"class {workspace.task.class_name}"))
    before = {p: p.read_bytes() for p in [*workspace.record_files(), tb.journal.path]}
    res = tb.call("run_experiment", {"name": "forger", "hypothesis": "write my own score"})
    row = res.data["experiment"]
    if policy_landlock("process"):
        # The kernel's allow-list holds it to its scratch dir: the writes never happen
        assert row["status"] == "ok" and row["score"] == base.score, row
    else:
        # _open_up made the files writable to it, so it reached them: failed, files put back
        assert row["status"] == "error" and row["error_kind"] == "tamper", row
        assert "ledger.csv, journal.jsonl" in row["error"] and row["score"] is None
    assert base.ok
    rows = workspace.ledger_rows()
    assert [r["name"] for r in rows] == [rows[0]["name"], "forger"]  # no forged row survives
    assert tb.journal.path.read_bytes() == before[tb.journal.path]
    tb.journal.close()


def test_restoring_never_writes_through_a_planted_link(tmp_path):
    """A link planted where a restore might put its temporary file is not followed."""
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("id,score\n1,5.0\n")
    j = _journal(tmp_path)
    for name in ("ledger.csv", "journal.jsonl"):  # the names an older restore used
        (tmp_path / f".{name}.restore").symlink_to(victim)
    snap = RecordSnapshot(tmp_path, lambda: [ledger])
    ledger.write_text("id,score\n1,0.1\n")
    with open(j.path, "a") as fh:
        fh.write('{"seq": 9}\n')
    assert snap.restore() == ["ledger.csv"] and j.restore_if_altered()
    assert victim.read_text() == "untouched"
    assert not ledger.is_symlink() and ledger.read_text() == "id,score\n1,5.0\n"
    assert not j.path.is_symlink()
    j.close()


def test_a_background_job_of_the_shell_does_not_outlive_its_command(workspace):
    """A job the command leaves running is killed with it, so it cannot rewrite the records
    after the harness has checked them (at level "process": no PID namespace)."""
    tb = ToolBox(workspace)
    tb.shell_isolation = "process"
    tb.journal = Journal.create(workspace.path / "journal.jsonl", {"task": "t"})
    _open_up(workspace.path)
    before = workspace.ledger_path.read_bytes()
    res = tb.call("shell", {"command": "(sleep 2; echo '99,forged,,ok,,0.001' >> ledger.csv) "
                                       ">/dev/null 2>&1 &\n"
                                       "setsid sh -c 'sleep 2; echo 98,forged >> ledger.csv' "
                                       ">/dev/null 2>&1 &\ntrue"})
    assert not res.is_error, res.text
    time.sleep(3)
    assert workspace.ledger_path.read_bytes() == before
    tb.journal.close()
