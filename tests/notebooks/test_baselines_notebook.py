"""notebooks/03_search_baselines.ipynb runs top to bottom with no API key and shows only the
methods that need none (Glia with the offline researcher, the fixed routers), saying so."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from test_notebooks import MAX_S, ROOT, cell, execute, mimes, table_rows, text_of  # noqa: E402

pytestmark = pytest.mark.slow


def test_baselines_notebook_is_generated_from_its_source():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_baselines_notebook.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_search_baselines_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("GLIA_MODEL", raising=False)
    nb, elapsed = execute("03_search_baselines", tmp_path, monkeypatch)
    print(f"03_search_baselines ran in {elapsed:.1f} s")
    assert elapsed < MAX_S

    assert "only the methods that need no key" in text_of(cell(nb, "mode"))
    rows = table_rows(cell(nb, "results-table"))
    assert {"as-is", "funsearch", "eoh", "openevolve", "glia-scg", "glia-par4", "glia-seq",
            "RR", "LLQ", "LOR", "HRA"} <= set(rows)
    for m in ("as-is", "funsearch", "eoh", "openevolve"):
        assert rows[m][1] == "unavailable", rows[m]  # columns: kind, status, ...
    for m in ("glia-scg", "glia-par4", "glia-seq"):
        assert rows[m][1] == "ok", rows[m]
        assert float(rows[m][3]) <= 15  # sims_used_mean within the budget
    assert float(rows["glia-seq"][4]) < float(rows["LLQ"][4])  # Glia beats LLQ
    for tag in ("curves-plot", "bars-plot"):
        assert "image/png" in mimes(cell(nb, tag)), tag
    assert "did not run (no model)" in text_of(cell(nb, "as-is-plot"))
    assert "What we saw" in text_of(cell(nb, "summary"))
    assert "class CustomRouter" in text_of(cell(nb, "best-code"))
    assert list((tmp_path / "runs").glob("compare-*/best_so_far_b15.png"))
