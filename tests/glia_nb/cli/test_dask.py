"""Fan-out commands on a Dask cluster by address give the same tables as the local pool."""
from __future__ import annotations

import json

import pytest

from glia_nb.cli.main import main

pytest.importorskip("distributed")


def _run(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_sweep_on_a_cluster_equals_the_local_pool(dask_scheduler, capsys, monkeypatch):
    monkeypatch.delenv("GLIA_DASK", raising=False)
    argv = ["sweep", "--routers", "llq", "hra", "--users", "20,60", "--seeds", "2",
            "--duration", "60", "--json"]
    local = _run(capsys, argv + ["--workers", "2"])
    remote = _run(capsys, argv + ["--dask", dask_scheduler])
    assert remote == local
    monkeypatch.setenv("GLIA_DASK", dask_scheduler)  # the environment variable serves as well
    assert _run(capsys, argv) == local


def test_stack_on_a_cluster_equals_the_local_pool(dask_scheduler, capsys, monkeypatch):
    monkeypatch.delenv("GLIA_DASK", raising=False)
    argv = ["stack", "--stacks", "standard,glia-stack", "--seeds", "2", "--duration", "300",
            "--json"]
    local = _run(capsys, argv + ["--workers", "2"])
    remote = _run(capsys, argv + ["--dask", dask_scheduler])
    for doc in (local, remote):
        doc.pop("wall_s", None)
    assert remote == local


def test_a_bad_address_is_one_line(capsys):
    assert main(["sweep", "--routers", "llq", "--users", "20", "--seeds", "1", "--duration",
                 "30", "--dask", "not-an-address"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "not a Dask scheduler address" in err[-1]


def _rows(doc: dict) -> list[dict]:
    """The comparison table without what differs between runs (wall time, output folders)."""
    return [{k: v for k, v in row.items() if k not in ("wall_s_mean",)}
            for res in doc["results"].values() for row in res["rows"]]


def test_compare_on_a_cluster_equals_the_local_pool(dask_scheduler, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("GLIA_DASK", raising=False)
    argv = ["compare", "routing-a10", "--methods", "glia-scg,baselines", "--budget-sims", "1",
            "--runs", "1", "--duration", "30", "--eval-seeds", "2", "--json"]
    local = _run(capsys, argv + ["--workers", "2", "--out", str(tmp_path / "local")])
    remote = _run(capsys, argv + ["--dask", dask_scheduler, "--out", str(tmp_path / "dask")])
    assert {"glia-scg", "LLQ"} <= {r["method"] for r in _rows(local)}  # Glia and the fixed routers
    assert _rows(remote) == _rows(local)
    assert remote["baseline"]["score"] == local["baseline"]["score"]
