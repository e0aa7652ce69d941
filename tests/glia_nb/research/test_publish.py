"""``glia publish``: a recorded offline study becomes a case-study folder whose notebook runs
anywhere, replays the research and re-checks the best design's score exactly."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from glia_nb.cli.main import main
from glia_nb.research.journal import read_journal
from glia_nb.research.publish import Redactor, find_journals, publish_study
from glia_nb.research.fold import best_of
from glia_nb.tasks import get_task

ROOT = Path(__file__).resolve().parents[3]
SECRET = "sk-test-SECRET123"
TOKEN = "hunter2-not-key-shaped-77"  # only the environment says this is a secret
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def tiny_task():
    return get_task("routing-a10").replace(duration_s=120.0, num_eval_seeds=2)


@pytest.fixture(scope="module")
def study(tiny_task, tmp_path_factory):
    """A short offline study, recorded with secrets in the environment and a nudge that
    quotes them and an absolute path of the author's machine."""
    from glia_nb.research.offline.researcher import OfflineSupervisor
    from glia_nb.research.session.session import Session
    from glia_nb.tasks.budget import Budget

    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", SECRET)
    mp.setenv("MY_SERVICE_TOKEN", TOKEN)
    root = tmp_path_factory.mktemp("author-machine")
    try:
        s = Session.create(tiny_task, root / "study", "offline", budget=Budget(max_simulations=4),
                           supervisor_client=OfflineSupervisor())
        s.nudge(f"my key is {SECRET} and token {TOKEN}; notes in {root}/notes.txt")
        s.run()
        yield s.path, root
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def published(study, tmp_path_factory):
    session_dir, _ = study
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", SECRET)
    mp.setenv("MY_SERVICE_TOKEN", TOKEN)
    try:
        out = publish_study(session_dir, tmp_path_factory.mktemp("pub") / "case", title="Tiny study")
    finally:
        mp.undo()
    return out


def _journal_best(session_dir: Path) -> dict:
    _, records = read_journal(session_dir / "journal.jsonl")
    exps = [r for r in records if r.get("type") == "experiment"]
    return best_of(exps, lower_is_better=True)


def test_redactor_removes_secrets_keys_and_paths(monkeypatch):
    monkeypatch.setenv("ACME_PASSWORD", "correct-horse-battery")
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to redact without shredding text
    red = Redactor.for_study(Path("/home/alice/runs/study"))
    text = ("pw correct-horse-battery key sk-ant-api03-AbCdEf123456 aws AKIAABCDEFGHIJKLMNOP "
            "at /home/alice/runs/study/ws/policy.py and /tmp/x/y.csv; workloads/data abc")
    out = red.text(text)
    for bad in ("correct-horse", "sk-ant", "AKIA", "/home/alice", "/tmp/x"):
        assert bad not in out
    assert "<study>/ws/policy.py" in out and "workloads/data abc" in out
    assert red.text("/home/alice/runs/study2/x") == "<path>"  # a sibling is not the study
    assert red.value({"k sk-abcdefghij": ["sk-abcdefghij", 3, None]}) == \
        {"k [REDACTED]": ["[REDACTED]", 3, None]}


def test_find_journals_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no journal.jsonl"):
        find_journals(tmp_path)
    assert main(["publish", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no study folder" in err


def test_folder_is_self_contained_and_redacted(study, published):
    session_dir, author_root = study
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["title"] == "Tiny study" and manifest["kind"] == "single-context"
    assert manifest["seeds"] == [0, 1] and len(manifest["held_out_seeds"]) == 2
    assert not set(manifest["held_out_seeds"]) & set(manifest["seeds"])
    assert manifest["versions"]["glia_nb"] and manifest["versions"]["researcher_model"] == "offline-rule-based"
    assert "isolation" in manifest and manifest["budget_used"]["simulations"] == 4
    best = _journal_best(session_dir)
    assert manifest["best"]["score"] == best["score"] and manifest["best"]["name"] == best["name"]
    assert (published / manifest["best"]["policy"]).read_text() == \
        (session_dir / best["folder"] / "policy.py").read_text()
    assert "glia-nb==" in (published / "binder" / "requirements.txt").read_text()
    # Every experiment's code is there; the journal keeps every record (redacted, not dropped).
    ctx = manifest["contexts"][0]
    assert len(ctx["policies"]) == ctx["num_experiments"] == 4
    _, original = read_journal(session_dir / "journal.jsonl")
    _, records = read_journal(published / ctx["journal"])
    assert [r["type"] for r in records] == [r["type"] for r in original]
    nudge = next(r["text"] for r in records if r["type"] == "nudge")
    assert nudge == "my key is [REDACTED] and token [REDACTED]; notes in <path>"
    for f in published.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for bad in (SECRET, "SECRET123", TOKEN, str(author_root), str(session_dir)):
                assert bad.encode() not in data, f"{bad!r} in {f.relative_to(published)}"


def test_lineage_only_and_multi_context(tiny_task, tmp_path, capsys):
    from glia_nb.research.study import run_study

    # Two experiments per context: the study's four simulations split between its two.
    doc = run_study(task=tiny_task, budget_sims=4, parallel=2, out=tmp_path / "par", workers=1)
    assert main(["publish", str(tmp_path / "par"), "--out", str(tmp_path / "cs"),
                 "--lineage-only", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    manifest = json.loads((tmp_path / "cs" / "manifest.json").read_text())
    assert manifest["kind"] == "multi-context"
    assert [c["label"] for c in manifest["contexts"]] == ["context0", "context1"]
    assert manifest["best"]["score"] == doc["best_score"] == out["best"]["score"]
    for c in manifest["contexts"]:  # only the chain of new bests keeps its code
        assert sorted(c["policies"]) == sorted(str(i) for i in c["lineage"])
        assert c["lineage"] and c["lineage"][-1] == c["best"]["id"]
    import nbformat

    nb = nbformat.read(tmp_path / "cs" / "case_study.ipynb", as_version=4)
    heads = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("### Context")]
    assert len(heads) == 2 and sum("best" in h for h in heads) == 1
    assert f"`{manifest['best']['context']}` — best" in "\n".join(heads)


def test_compare_run_publishes_one_section_per_method(tiny_task, tmp_path):
    from glia_nb.baselines.compare import run_compare

    run_compare(tiny_task, methods="glia-scg,baselines", budgets=(2,), runs=2,
                out=tmp_path / "cmp", workers=1)
    out = publish_study(tmp_path / "cmp", tmp_path / "cs")
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["label"] for c in manifest["contexts"]] == ["b2-glia-scg-run0-context0",
                                                          "b2-glia-scg-run1-context0"]
    assert manifest["compare_tables"] == ["compare/table_b2.md"]
    table = (out / "compare" / "table_b2.md").read_text()
    assert "glia-scg" in table and str(tmp_path) not in table
    best = min((c["best"] for c in manifest["contexts"]), key=lambda b: b["score"])
    assert manifest["best"]["score"] == best["score"]


def _render(notebook: Path, shot: Path) -> None:
    import subprocess
    import sys

    sync_api = pytest.importorskip("playwright.sync_api")
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", str(notebook),
                    "--output-dir", str(notebook.parent)], check=True, capture_output=True, timeout=120)
    html = notebook.with_suffix(".html")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(html.as_uri(), timeout=30_000)
            assert page.locator("h2", has_text="Re-check").count() == 1
            assert page.locator("text=re-checked score").count() >= 1
            assert page.locator("img").count() >= 3  # best-so-far and the breakdown figures
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()


@pytest.mark.slow
def test_notebook_replays_and_rechecks_from_elsewhere(study, published, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    session_dir, _ = study
    # The folder as a reader gets it: copied somewhere else, run from another directory.
    reader = tmp_path / "clone" / "case_studies" / "tiny"
    shutil.copytree(published, reader)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GLIA_MODEL", "GLIA_CASE_STUDY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(reader / "case_study.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(reader)}}).execute()
    executed = reader / "executed.ipynb"
    nbformat.write(nb, executed)

    def cell(tag):
        return next(c for c in nb.cells if tag in c.metadata.get("tags", []))

    def text(c):
        return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                       for o in c.get("outputs", []))

    best = _journal_best(session_dir)
    line = text(cell("assert-reproduced"))
    assert f"re-checked score {best['score']!r} equals" in line
    recheck = cell("recheck").outputs[-1]["data"]["text/html"]
    assert "held-out seeds" in recheck and "round_robin" in recheck
    assert "my key is [REDACTED]" in cell("highlights").outputs[0]["data"]["text/html"]
    replay = cell("replay").outputs[0]["data"]
    assert "text/html" in replay or "application/vnd.jupyter.widget-view+json" in replay
    assert sum("image/png" in o.get("data", {}) for o in cell("breakdown").outputs) == 2
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium to render the case study")
    _render(executed, ROOT / "test-artifacts" / "publish_case_study.png")
    assert (ROOT / "test-artifacts" / "publish_case_study.png").stat().st_size > 50_000


@pytest.mark.parametrize("folder", sorted((ROOT / "case_studies").glob("*/manifest.json")),
                         ids=lambda p: p.parent.name)
def test_committed_case_studies_match_the_generator(folder):
    """A committed case study's notebook is what the current generator builds from its
    manifest (re-publish it after changing the notebook template)."""
    import nbformat

    from glia_nb.research.casestudy_notebook import build_notebook

    manifest = json.loads(folder.read_text())
    committed = nbformat.read(folder.parent / "case_study.ipynb", as_version=4)
    built = build_notebook(manifest)
    assert [c.source for c in committed.cells] == [c.source for c in built.cells]
    for ctx in manifest["contexts"]:  # every policy the manifest names is there
        assert all((folder.parent / p).is_file() for p in ctx["policies"].values())
