"""The ``glia`` command as a user meets it: progress on stderr (also when it is not a
terminal), rounded numbers, the sweep's figure, and one-line errors naming the right flag."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glia_nb.cli.main import BATCH_POLICY_HELP, main
from glia_nb.progress import fmt
from glia_nb.runs import runs_dir, working_root

ROOT = Path(__file__).resolve().parents[3]
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[+-]?\d+)?")


def _glia(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m glia_nb.cli ARGS`` with stdout and stderr piped (neither is a terminal)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GLIA_PROGRESS", None)
    return subprocess.run([sys.executable, "-m", "glia_nb.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def _significant(number: str) -> int:
    digits = number.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(digits)


def test_fmt_keeps_four_significant_figures():
    assert fmt(23.568769643316095) == "23.57"
    assert fmt(0.000123456) == "0.0001235" and fmt(123456.7) == "1.235e+05"
    assert fmt(7) == "7" and fmt(None) == "-" and fmt(math.nan) == "-" and fmt(math.inf) == "-"


def test_study_shows_progress_on_a_piped_stderr_with_rounded_scores(tmp_path):
    out = tmp_path / "study"
    p = _glia("study", "routing-a10", "--budget-sims", "2", "--duration", "60", "--out", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "study routing-a10" in p.stderr and "2/2" in p.stderr  # the bar, though stderr is a pipe
    lines = [ln for ln in re.split(r"[\r\n]", p.stderr) if "score" in ln]
    assert any("[context 0] experiment" in ln for ln in lines) and any("baseline" in ln for ln in lines)
    for ln in lines + p.stdout.splitlines():
        for number in NUMBER.findall(ln.split("session ")[0]):
            assert _significant(number) <= 4, f"unrounded {number!r} in {ln!r}"
    assert "baseline score" in p.stdout and not any(NUMBER.findall(ln) for ln in p.stdout.splitlines()
                                                    if ln.startswith("baseline") and len(ln) > 200)
    # The report finds the session below the study's folder.
    r = _glia("report", str(out), cwd=tmp_path)
    assert r.returncode == 0 and "experiments 2" in r.stdout


def test_simulate_shows_a_bar_even_with_json(tmp_path):
    p = _glia("simulate", "--router", "llq", "--seeds", "2", "--duration", "30", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "llq on routing-a10" in p.stderr and "/2 [" in p.stderr
    assert p.stdout.lstrip().startswith("{")  # stdout stays one JSON object


def test_progress_can_be_turned_off(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GLIA_PROGRESS": "0"}
    p = subprocess.run([sys.executable, "-m", "glia_nb.cli", "simulate", "--router", "llq", "--seeds", "1",
                        "--duration", "30", "--json"], cwd=tmp_path, env=env, text=True, capture_output=True,
                       timeout=300)
    assert p.returncode == 0 and "llq on" not in p.stderr


def test_sweep_draws_its_figure(tmp_path, capsys):
    fig = tmp_path / "figs" / "sweep.png"
    assert main(["sweep", "--routers", "llq", "least_prefill", "--users", "5,10", "--seeds", "1",
                 "--duration", "30", "--out", str(fig)]) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.stat().st_size > 5000
    out = capsys.readouterr()
    assert f"figure: {fig}" in out.out and "llq on routing-h100-prefill" in out.err
    assert main(["sweep", "--users", "5", "--out", str(tmp_path / "f.txt")]) == 2
    assert ".png" in capsys.readouterr().err


def test_sweep_errors_name_its_own_flag(capsys):
    assert main(["sweep", "--users", "10,abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--users must be comma-separated integers" in err
    assert "--sweep-users" not in err
    assert main(["simulate", "--scenario", "routing-h100-prefill", "--sweep-users", "x"]) == 2
    assert "--sweep-users" in capsys.readouterr().err


def test_help_lists_every_batch_policy_name(capsys):
    from sim_core.batch_policies import BATCH_POLICIES

    assert all(name in BATCH_POLICY_HELP for name in BATCH_POLICIES)
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert "alias spf" in helptext and "shortest_prefill_first" in helptext


def test_runs_land_at_the_repository_root(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    nested = tmp_path / "notebooks"
    nested.mkdir()
    monkeypatch.delenv("GLIA_RUNS", raising=False)
    monkeypatch.chdir(nested)
    assert working_root() == tmp_path.resolve() and runs_dir() == tmp_path.resolve() / "glia_runs"
    monkeypatch.setenv("GLIA_RUNS", "elsewhere/runs")
    assert runs_dir() == tmp_path.resolve() / "elsewhere" / "runs"
    monkeypatch.setenv("GLIA_RUNS", str(tmp_path / "abs"))
    assert runs_dir() == tmp_path / "abs"


def test_notebooks_use_runs_dir_and_runs_are_ignored():
    for nb in sorted((ROOT / "notebooks").glob("0[2-6]_*.ipynb")):
        text = nb.read_text()
        assert "runs_dir()" in text and '"glia_runs"' not in text, nb.name
    p = subprocess.run(["git", "check-ignore", "-q", "notebooks/glia_runs/x/journal.jsonl"], cwd=ROOT)
    assert p.returncode == 0


def test_compare_reports_progress_on_a_piped_stderr(tmp_path):
    p = _glia("compare", "routing-a10", "--methods", "baselines,glia-scg", "--budget-sims", "2", "--runs", "1",
              "--duration", "30", "--eval-seeds", "1", "--workers", "1", "--out", str(tmp_path / "cmp"), "--json",
              cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert any(ln.strip().startswith("starting program (LLQ):") for ln in lines)
    assert any("fixed router HRA:" in ln for ln in lines) and any("[b2 glia-scg run 0]" in ln for ln in lines)
    for ln in lines:
        for number in NUMBER.findall(ln):
            assert _significant(number) <= 4, f"unrounded {number!r} in {ln!r}"


def test_stack_tuning_shows_progress_on_a_piped_stderr(tmp_path):
    p = _glia("stack", "--stacks", "standard", "--seeds", "1", "--duration", "120", "--tune", "--json",
              cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "stacks:" in p.stderr and "tuning " in p.stderr and "setting" in p.stderr
