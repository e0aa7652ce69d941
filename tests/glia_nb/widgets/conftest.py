"""Sessions for the widget tests: offline Researcher, tiny traces, no kernel (ipywidgets'
dummy comm), and helpers that read the session's journal, the source of truth."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from glia_nb.llm import ScriptedClient  # noqa: E402
from glia_nb.research.offline.researcher import OfflineSupervisor  # noqa: E402
from glia_nb.research.session.session import Session  # noqa: E402
from glia_nb.research.supervisor import SupervisorConfig  # noqa: E402
from glia_nb.tasks import get_task  # noqa: E402
from glia_nb.tasks.budget import Budget  # noqa: E402


@pytest.fixture(scope="session")
def tiny_task():
    return dataclasses.replace(get_task("routing-a10"), duration_s=60.0, num_eval_seeds=1)


def journal_records(session) -> list[dict]:
    out = []
    for line in (Path(session.path) / "journal.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out[1:]  # without the header


@pytest.fixture
def of_type():
    """``of_type(session, *types)``: the journal's records of those types, in order."""
    return lambda session, *types: [r for r in journal_records(session) if r["type"] in types]


@pytest.fixture
def records():
    return journal_records


def _wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def wait_until():
    return _wait_until


@pytest.fixture
def idle_session(tiny_task, tmp_path):
    s = Session.create(tiny_task, tmp_path, researcher_client="offline", supervisor_client=OfflineSupervisor(),
                       budget=Budget(max_simulations=2), run_baseline=False)
    yield s
    s.close()


@pytest.fixture
def questioning_session(tiny_task, tmp_path):
    """Manual approval, and a scripted Supervisor that asks a question after every turn:
    each turn queues an intervention, and the session waits for a person."""
    sup = ScriptedClient([f"DECISION: question\nMESSAGE: Question {i}: why?" for i in range(40)])
    s = Session.create(tiny_task, tmp_path, researcher_client="offline", supervisor_client=sup,
                       supervisor_config=SupervisorConfig(every_n_turns=1, stall_experiments=None),
                       budget=Budget(max_simulations=20), approval="manual", run_baseline=False)
    yield s
    s.close()


@pytest.fixture(scope="session")
def finished_study(tiny_task, tmp_path_factory):
    """A whole offline study (baseline and three experiments), run once."""
    s = Session.create(tiny_task, tmp_path_factory.mktemp("study"), researcher_client="offline",
                       supervisor_client=OfflineSupervisor(), budget=Budget(max_simulations=3))
    s.run()
    yield s
    s.close()
