"""A key given to a model client in code (``api_key=...``, not the environment) is redacted
from everything a session writes and from everything it sends back to the model.

The session runs on the stand-in LLM (an OpenAI-compatible server on 127.0.0.1) through a
client built with an explicit key.  Its first candidate rebuilds that key at run time (so the
key is in no source file), prints it and raises an exception that carries it: the error
travels through the harness, ``metrics.json``, the policy log, ``ledger.csv``, the journal
and the tool result the model reads.
"""
from __future__ import annotations

import json

from standin_llm import StandInLLM

from glia_nb.evaluation.secrets import MASK, known_secrets, secrets_of
from glia_nb.llm import OpenAICompatibleClient, ScriptedClient
from glia_nb.research.session.session import Session
from glia_nb.tasks import get_task
from glia_nb.tasks.budget import Budget

KEY = "sk-given-in-code-" + "5f3a9c0e7d21b486"

LEAKY = f'''import numpy as np


class CustomRouter:
    """Least-loaded, but it reports a key it put together at run time."""

    def reset(self, info, rng):
        self.key = "".join(reversed({KEY[::-1]!r}))
        print("using key", self.key)

    def route(self, view):
        raise RuntimeError("the upstream refused key " + self.key)
'''


class KeyedStandIn(StandInLLM):
    """The stand-in whose first policy is :data:`LEAKY`; it keeps every request body."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.bodies: list[str] = []
        self.leaky_written = False

    def answer(self, body: dict) -> dict:
        self.bodies.append(json.dumps(body))
        return super().answer(body)

    def _researcher(self, msgs: list, n: int) -> dict:
        msg = super()._researcher(msgs, n)
        fn = msg["tool_calls"][0]["function"]
        if fn["name"] == "write_file" and not self.leaky_written:
            self.leaky_written = True
            fn["arguments"] = json.dumps({"path": "policy.py", "content": LEAKY})
        return msg


def test_a_key_given_in_code_reaches_no_file_and_no_model_message(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert KEY not in known_secrets()  # only the client knows it
    task = get_task("routing-a10").replace(duration_s=30, eval_seeds=(0,))
    with KeyedStandIn(max_experiments=2) as llm:
        client = OpenAICompatibleClient(llm.url, llm.model, api_key=KEY, context_window=32_000)
        s = Session.create(task, tmp_path / "ws", client, budget=Budget(max_simulations=3, max_turns=12))
        s.run()
        bodies = list(llm.bodies)
    assert s.secrets == (KEY,)
    failed = [e for e in s.experiments if e.get("status") != "ok"]
    assert failed, s.experiments  # the leaky candidate ran and failed
    files = [p for p in s.path.rglob("*") if p.is_file()]
    leaking = [str(p.relative_to(s.path)) for p in files if KEY.encode() in p.read_bytes()]
    assert not leaking
    masked = {p.name for p in files if MASK.encode() in p.read_bytes()}
    # the key was there to hide: in the error, the log, the ledger and the journal
    assert {"journal.jsonl", "ledger.csv", "metrics.json", "policy_log.txt"} <= masked, masked
    assert bodies and not any(KEY in b for b in bodies)
    assert any(MASK in b for b in bodies)  # the model read the error, with the key masked


def test_secrets_of_finds_the_keys_of_clients_and_of_what_runs_on_them():
    keyed = OpenAICompatibleClient("http://127.0.0.1:9/v1", "m", api_key=KEY)
    keyless = OpenAICompatibleClient("http://127.0.0.1:9/v1", "m")  # "not-needed" is no secret
    agent = type("Agent", (), {"client": keyed})()
    supervisor = type("Sup", (), {"agent": agent})()
    assert keyless.secrets == () and ScriptedClient([]).secrets == ()
    assert secrets_of(keyless, agent, supervisor, ScriptedClient([])) == (KEY,)
    assert KEY in known_secrets(extra=secrets_of(agent))
