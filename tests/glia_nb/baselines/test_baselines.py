"""The search baselines (LLM as-is, FunSearch, EoH, OpenEvolve), budget-matched Glia and
``glia compare``, run end to end against a deterministic stand-in LLM served over HTTP on
127.0.0.1 (``standin_llm.py``) on a fast task (60 simulated seconds, one seed)."""
from __future__ import annotations

import json
import random
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from standin_llm import StandInLLM, candidate

from glia_nb.baselines import as_is, eoh, funsearch, openevolve_runner  # noqa: E402
from glia_nb.baselines.common import (EvalRecord, MethodContext, RunLedger,  # noqa: E402
                                      SharedEvaluator, best_so_far, check_candidate,
                                      extract_candidate, extract_thought)
from glia_nb.baselines.compare import parse_budgets, parse_methods, run_compare  # noqa: E402
from glia_nb.plots.baselines import draw_comparison  # noqa: E402
from glia_nb.tasks import Objective, get_task  # noqa: E402

UP = Objective(name="throughput_qps", direction="max", unit="QPS")

LLM_METHODS = ("as-is", "funsearch", "eoh", "openevolve")


@pytest.fixture(scope="module")
def fast_task():
    return get_task("routing-a10").replace(duration_s=60, num_eval_seeds=1)


@pytest.fixture(scope="module")
def standin():
    server = StandInLLM()
    with server:
        yield server


@pytest.fixture(scope="module")
def pool():
    ex = ProcessPoolExecutor(2)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------- pieces
def test_extract_candidate_and_thought():
    code = candidate(1)
    assert extract_candidate(f"{{Idea: head-room.}}\n```python\n{code}```", "CustomRouter") == code
    assert extract_thought(f"{{Idea: head-room.}}\n```python\n{code}```") == "Idea: head-room."
    other = code.replace("class CustomRouter", "class MyRouter")
    got = extract_candidate(f"```py\n{other}```", "CustomRouter")
    assert got.rstrip().endswith("CustomRouter = MyRouter") and check_candidate(got, "CustomRouter") is None
    assert extract_candidate("no code here", "CustomRouter") is None
    assert "syntax error" in check_candidate("class CustomRouter(:\n", "CustomRouter")
    assert "no route" in check_candidate("class CustomRouter:\n    pass\n", "CustomRouter")
    # the last usable block wins; an unfenced program is taken whole
    assert extract_candidate(f"```python\nx = 1\n```\n```python\n{code}```", "CustomRouter") == code
    assert extract_candidate(code, "CustomRouter") == code


def test_ledger_claims_never_exceed_the_budget():
    ledger = RunLedger(7)
    got = []
    threads = [threading.Thread(target=lambda: got.append(ledger.claim())) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(g for g in got if g) == list(range(1, 8)) and got.count(None) == 13
    assert ledger.exhausted() == "simulations"
    from glia_nb.llm import Usage

    dollars = RunLedger(5, max_usd=0.01)
    dollars.usage.add(Usage(input_tokens=10), 0.02, "m")
    assert dollars.exhausted() == "dollars"
    calls = RunLedger(5)
    for _ in range(5):
        calls.note_llm_call(False)
    assert calls.exhausted() == "llm_errors" and RunLedger(2).max_llm_calls == 16


def test_best_so_far_carries_the_best_forward():
    recs = [EvalRecord("a", True, 12.0, sim=1, counted=True), EvalRecord("b", False, None, sim=2, counted=True),
            EvalRecord("c", True, 9.0, sim=3, counted=True), EvalRecord("d", True, 8.0, cached=True)]
    assert best_so_far(recs, 5, 10.0) == [10.0, 10.0, 10.0, 9.0, 9.0, 9.0]
    assert best_so_far(recs, 2, None)[:2][1] == 12.0
    # On a maximised objective the curve keeps the highest score, not the lowest.
    assert best_so_far(recs, 5, 10.0, UP) == [10.0, 12.0, 12.0, 12.0, 12.0, 12.0]
    assert best_so_far(recs, 1, None, UP)[0] != best_so_far(recs, 1, None, UP)[0]  # NaN start


def test_a_maximising_comparison_ranks_and_compares_the_right_way_round():
    from glia_nb.baselines.common import MethodRun
    from glia_nb.baselines.results import fixed_row, summary_row

    base = EvalRecord("start", True, 10.0)
    runs = [MethodRun("eoh", r, r, 2, baseline_score=10.0,
                      records=[EvalRecord("x", True, s, sim=1, counted=True).to_dict()])
            for r, s in enumerate([12.0, 15.0])]
    row = summary_row("eoh", runs, 2, base, UP)
    assert row["best_score_min"] == 15.0  # the best run's final score
    assert row["vs_baseline"] == pytest.approx(13.5 / 10.0)  # higher than the baseline: > 1
    fixed = fixed_row({"method": "LLQ", "ok": True, "score": 8.0}, base, UP)
    assert fixed["vs_baseline"] == pytest.approx(0.8)  # a worse fixed router is below 1
    ledger = RunLedger(3, objective=UP)
    for i, sc in enumerate([5.0, 9.0, 7.0], 1):
        ledger.add(EvalRecord(f"c{i}", True, sc, sim=i, counted=True))
    assert ledger.best().score == 9.0


def test_funsearch_islands_and_eoh_selection():
    rng = random.Random(0)
    isl = funsearch.Island(capacity=3)
    for i, s in enumerate([5.0, 3.0, 4.0, 9.0, 1.0]):
        isl.add(funsearch.Program(f"c{i}", s, f"p{i}", code_hash=f"h{i}"))
    assert sorted(p.score for p in isl.programs) == [1.0, 3.0, 4.0]  # the worst were dropped
    picked = isl.sample(3, rng, 0.3)
    assert [p.score for p in picked] == [4.0, 3.0, 1.0]  # worst first, best last
    islands = [funsearch.Island(5, programs=[funsearch.Program("x", s, f"i{s}")]) for s in (1.0, 2.0, 3.0, 4.0)]
    assert funsearch.reset_islands(islands, rng) == [2, 3]
    assert all(isl.best().score in (1.0, 2.0) for isl in islands)
    pop = [eoh.Individual(f"c{i}", float(i), "t", f"l{i}", f"h{i % 3}") for i in range(6)]
    low = Objective()
    assert [p.label for p in eoh.manage(pop, 5, low)] == ["l0", "l1", "l2"]
    assert [p.label for p in eoh.manage(pop, 5, UP)] == ["l5", "l4", "l3"]
    assert len({p.label for p in eoh.select_parents(pop, 2, rng, low)}) == 2
    up_island = funsearch.Island(capacity=2, objective=UP)
    for i, sc in enumerate([5.0, 3.0, 4.0]):
        up_island.add(funsearch.Program(f"c{i}", sc, f"p{i}", code_hash=f"h{i}"))
    assert sorted(p.score for p in up_island.programs) == [4.0, 5.0] and up_island.best().score == 5.0


def test_openevolve_helpers():
    from glia_nb.baselines.openevolve_worker import strip_markers

    code = get_task("routing-a10").render_policy_template()
    wrapped = openevolve_runner.initial_program(code)
    assert "# EVOLVE-BLOCK-START\nclass CustomRouter" in wrapped and wrapped.rstrip().endswith("# EVOLVE-BLOCK-END")
    from glia_nb.baselines.common import code_hash

    assert code_hash(strip_markers(wrapped)) == code_hash(code)  # so the start is free
    assert openevolve_runner.fitness(20.0, 40.0, Objective()) == 2.0
    assert openevolve_runner.fitness(None, 40.0, Objective()) == 0.0
    assert openevolve_runner.fitness(20.0, 40.0, UP) == 0.5


def test_a_model_that_never_writes_code_stops_without_simulating(fast_task, tmp_path):
    from glia_nb.llm import ScriptedClient

    ev = SharedEvaluator(fast_task, tmp_path)
    ledger = RunLedger(5)
    base = EvalRecord("start", True, 10.0)
    ctx = MethodContext(task=fast_task, evaluator=ev, ledger=ledger,
                        client=ScriptedClient(["I cannot."] * 3), rng=random.Random(0), seed=0,
                        baseline=base, baseline_code="", out_dir=tmp_path / "run")
    out = as_is.run(ctx)
    assert ledger.sims_used == 0 and ledger.llm_calls == 3 + 5 and ledger.exhausted() == "llm_errors"
    assert out["distribution"]["unusable"] == 3


def test_parse_methods_and_budgets():
    assert parse_methods("all")[-1] == "baselines" and parse_methods("eoh,as-is") == ["eoh", "as-is"]
    with pytest.raises(ValueError, match="unknown method"):
        parse_methods("alphaevolve")
    assert parse_budgets("15,100") == [15, 100] and parse_budgets(15) == [15]
    with pytest.raises(ValueError):
        parse_budgets("0")


# ---------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_every_llm_method_runs_against_the_standin(fast_task, standin, pool, tmp_path):
    params = {"funsearch": {"reset_interval": 4}, "eoh": {"pop_size": 3}}
    doc = draw_comparison(run_compare(fast_task, LLM_METHODS, [10], 2, standin.spec, tmp_path,
                                      executor=pool, method_params=params))
    res = json.loads(Path(doc["results"]["10"]["files"]["results"]).read_text())
    oe_ok, oe_info = openevolve_runner.openevolve_status()
    for method in LLM_METHODS:
        for run in res["runs"][method]:
            if method == "openevolve" and not oe_ok:
                assert run["status"] == "unavailable" and run["reason"] == oe_info
                continue
            assert run["status"] == "ok", (method, run["reason"], run["extra"].get("traceback"))
            assert run["sims_used"] == 10 and run["reason"] == "simulations"
            sims = [r["sim"] for r in run["records"] if r["counted"]]
            assert sims == list(range(1, 11)), method  # each simulation counted once, in order
            assert all(Path(r["code_path"]).exists() for r in run["records"] if r["counted"])
            assert run["llm_calls"] >= 10 and run["usd"] == 0.0  # a local model is free
            assert run["best_score"] is not None
            if method != "openevolve":  # buggy or code-less replies were handled cleanly
                assert any(not r["ok"] for r in run["records"]), method
    fs = res["runs"]["funsearch"][0]["extra"]
    assert fs["resets"] and len(fs["islands"]) == 6
    ops = res["runs"]["eoh"][0]["extra"]["operators"]
    assert all(ops[op]["tried"] >= 1 for op in eoh.OPERATORS) and ops["I1"]["valid"] >= 3
    thoughts = [r["meta"].get("thought") for r in res["runs"]["eoh"][0]["records"]]
    assert any(t and t.startswith("Variant") for t in thoughts)
    assert res["runs"]["as-is"][0]["extra"]["distribution"]["scores"]
    if oe_ok:
        extra = res["runs"]["openevolve"][0]["extra"]
        assert extra["returncode"] == 0 and extra["openevolve_version"] == oe_info
        assert res["runs"]["openevolve"][0]["records"][0]["cached"]  # the LLQ start is free
    rows = {r["method"]: r for r in res["rows"]}
    assert rows["as-is"]["ci_low"] <= rows["as-is"]["best_score_mean"] <= rows["as-is"]["ci_high"]
    band = res["bands"]["eoh"]
    assert len(band["mean"]) == 11 and all(lo <= m <= hi for lo, m, hi in
                                           zip(band["low"], band["mean"], band["high"]))
    for key in ("curves", "bars", "table_csv", "table_md", "as_is_distribution"):
        assert Path(doc["results"]["10"]["files"][key]).stat().st_size > 0
    assert standin.counts.get("plain", 0) > 0 and (not oe_ok or standin.counts.get("diff", 0) > 0)


def test_openevolve_reports_unavailable_instead_of_crashing(fast_task, standin, pool, tmp_path,
                                                              monkeypatch):
    monkeypatch.setattr(openevolve_runner, "openevolve_status",
                        lambda: (False, "the openevolve package is not installed"))
    doc = run_compare(fast_task, ["openevolve"], [3], 1, standin.spec, tmp_path, executor=pool)
    row = doc["results"]["3"]["rows"][0]
    assert row["status"] == "unavailable" and "not installed" in row["reason"]
    # The comparison writes data only; the figures are drawn from its document.
    assert not list(Path(tmp_path).glob("*.png"))
    assert Path(draw_comparison(doc)["results"]["3"]["files"]["bars"]).exists()


@pytest.mark.slow
def test_without_a_model_only_keyless_methods_run(fast_task, pool, tmp_path, monkeypatch):
    monkeypatch.delenv("GLIA_MODEL", raising=False)
    doc = run_compare(fast_task, "all", [4], 1, None, tmp_path, executor=pool)
    rows = {r["method"]: r for r in doc["results"]["4"]["rows"]}
    for m in LLM_METHODS:
        assert rows[m]["status"] == "unavailable" and "no model" in rows[m]["reason"]
    assert doc["glia_researcher"] == "offline"
    for m in ("glia-scg", "glia-par4", "glia-seq"):
        assert rows[m]["status"] == "ok" and 1 <= rows[m]["sims_used_max"] <= 4
    assert rows["glia-par4"]["sims_used_max"] == 4 and rows["glia-seq"]["sims_used_max"] == 4
    assert {"RR", "LLQ", "LOR", "HRA"} <= set(rows)


@pytest.mark.slow
def test_glia_compare_cli_with_the_standin(standin, tmp_path, capsys):
    from glia_nb.cli.main import main

    out = tmp_path / "cmp"
    rc = main(["compare", "routing-a10", "--budget-sims", "15", "--runs", "1", "--model",
               standin.spec, "--out", str(out), "--duration", "60", "--eval-seeds", "1", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    files = doc["results"]["15"]["files"]
    for key in ("curves", "bars", "table_csv", "table_md"):
        assert Path(files[key]).is_file() and Path(files[key]).stat().st_size > 0
    assert Path(files["curves"]).read_bytes()[:4] == b"\x89PNG"
    rows = {r["method"]: r for r in doc["results"]["15"]["rows"]}
    assert set(rows) == {"as-is", "funsearch", "eoh", "openevolve", "glia-scg", "glia-par4",
                         "glia-seq", "RR", "LLQ", "LOR", "HRA"}
    oe_ok, _ = openevolve_runner.openevolve_status()
    for m in ("as-is", "funsearch", "eoh", "glia-par4", "glia-seq") + (("openevolve",) if oe_ok else ()):
        assert rows[m]["status"] == "ok" and rows[m]["sims_used_max"] == 15, (m, rows[m])
    assert rows["glia-scg"]["status"] == "ok" and 1 <= rows["glia-scg"]["sims_used_max"] <= 15
    assert doc["glia_researcher"] == standin.spec  # Glia's researcher is the stand-in too
    res = json.loads(Path(files["results"]).read_text())
    for method, runs in res["runs"].items():
        for run in runs:
            assert run["sims_used"] <= 15
            assert len([r for r in run["records"] if r["counted"]]) == run["sims_used"]
    table = Path(files["table_md"]).read_text()
    assert "| glia-seq |" in table and "| HRA |" in table
    assert standin.counts.get("researcher", 0) > 0


def test_a_method_that_fails_is_reported_not_plotted(fast_task, pool, tmp_path):
    doc = run_compare(fast_task, ["glia-scg"], [2], 1, None, tmp_path, executor=pool,
                      glia_researcher="no-such-researcher")
    row = doc["results"]["2"]["rows"][0]
    assert row["status"] == "error" and "no-such-researcher" in row["reason"]
    assert row.get("best_score_mean") is None  # no bar, no curve for a run that never searched
    res = json.loads(Path(doc["results"]["2"]["files"]["results"]).read_text())
    assert res["bands"] == {} and "Traceback" in res["runs"]["glia-scg"][0]["extra"]["traceback"]
