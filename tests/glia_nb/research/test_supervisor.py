"""The Supervisor: when it reviews, what it sees, and how its answer is read."""

from __future__ import annotations

import pytest
from session_fakes import decision

from glia_nb.llm import Message, ScriptedClient
from glia_nb.research.supervisor import (
    Decision,
    ReviewContext,
    ReviewState,
    Supervisor,
    SupervisorConfig,
    parse_decision,
    strip_code,
)


@pytest.mark.parametrize(
    "reply, kind, message, reason",
    [
        ("DECISION: question\nREASON: stalled\nMESSAGE:\nWhy do restarts persist?", "question",
         "Why do restarts persist?", "stalled"),
        ("**Decision:** Recall\nYou found that SPF helped in experiment 4.", "recall",
         "You found that SPF helped in experiment 4.", ""),
        ("decision = REDIRECT\nreason: off track\nRemember the objective is mean latency.", "redirect",
         "Remember the objective is mean latency.", "off track"),
        ("DECISION: proceed", "proceed", "", ""),
        ("Decision: continue\n", "proceed", "", ""),  # synonym
        ("DECISION - ask\nWhat bounds the queueing delay?", "question", "What bounds the queueing delay?", ""),
        ("Question: what does the memory timeline show?", "question", "what does the memory timeline show?", ""),
        ("[STOP] this line is a dead end", "stop", "this line is a dead end", ""),
        ("> DECISION: `stop`\n> MESSAGE: Stop tuning r; it has not moved in 4 runs.", "stop",
         "Stop tuning r; it has not moved in 4 runs.", ""),
    ],
)
def test_decisions_are_parsed_leniently(reply, kind, message, reason):
    got_kind, got_message, got_reason, parsed = parse_decision(reply)
    assert (got_kind, got_message, got_reason, parsed) == (kind, message, reason, True)


@pytest.mark.parametrize("reply", ["", "I think the Researcher is doing fine.", "Stop and think about memory."])
def test_unparseable_replies_mean_proceed_and_keep_the_raw_text(reply):
    kind, message, _, parsed = parse_decision(reply)
    assert kind == "proceed" and not parsed and message == reply.strip()


def test_should_review_triggers():
    sup = Supervisor(ScriptedClient([]), SupervisorConfig(stall_experiments=3, every_n_turns=5), system_prompt="S")
    assert sup.should_review(ReviewState(turn=2, finished=True)) == "finish"
    assert sup.should_review(ReviewState(turn=2, idle=True)) == "idle"
    assert sup.should_review(ReviewState(turn=4)) is None
    assert sup.should_review(ReviewState(turn=5)) == "every_n_turns"
    assert sup.should_review(ReviewState(turn=7, turn_at_last_review=5)) is None
    # Stall: k experiments in a row without a new best ...
    assert sup.should_review(ReviewState(turn=3, experiments=4, experiments_since_improvement=2)) is None
    assert sup.should_review(ReviewState(turn=3, experiments=4, experiments_since_improvement=3)) == "stall"
    # ... and not again until k more experiments have gone by since the last review.
    stalled = dict(turn=4, experiments_since_improvement=5, experiments_at_last_review=4, turn_at_last_review=4)
    assert sup.should_review(ReviewState(experiments=6, **stalled)) is None
    assert sup.should_review(ReviewState(experiments=7, **{**stalled, "experiments_since_improvement": 6})) == "stall"


def test_triggers_can_be_switched_off():
    cfg = SupervisorConfig(trigger_on_finish=False, stall_experiments=None, every_n_turns=None, trigger_on_idle=False)
    sup = Supervisor(ScriptedClient([]), cfg, system_prompt="S")
    for state in (ReviewState(turn=50, finished=True), ReviewState(turn=50, idle=True),
                  ReviewState(turn=50, experiments=20, experiments_since_improvement=20)):
        assert sup.should_review(state) is None
    with pytest.raises(ValueError):
        SupervisorConfig(stall_experiments=0)


def test_review_sends_task_ledger_and_researcher_text_without_tools():
    client = ScriptedClient([decision("question", "Have you measured memory head-room?")])
    sup = Supervisor(client, SupervisorConfig(max_context_chars=10_000))
    context = ReviewContext(
        task_text="Design a router for 4 A10 replicas.",
        researcher_text=["Baseline LLQ gives 40 s.", "Restarts hit 26% of requests."],
        ledger_summary="id  name  score\n001 llq 40.0",
        trigger="stall",
        previous=["(recall) Remember SPF."],
        budget_summary="simulations 12 of 90",
    )
    d = sup.review(context)
    assert (d.kind, d.text, d.trigger, d.parsed) == ("question", "Have you measured memory head-room?", "stall", True)
    assert d.intervenes and d.step is not None and d.step.completion is not None
    (sent, tools), = client.calls
    assert tools == []
    assert sent[0].role == "system" and "DECISION:" in sent[0].content  # the shipped prompt
    prompt = sent[1].content
    for part in ("Design a router", "Baseline LLQ gives 40 s.", "Restarts hit 26%", "001 llq 40.0",
                 "Remember SPF", "simulations 12 of 90", "(stall)"):
        assert part in prompt, part
    assert prompt.index("Baseline LLQ") < prompt.index("Restarts hit")  # oldest first


def test_review_keeps_the_newest_researcher_text_within_the_character_budget():
    client = ScriptedClient([decision("proceed")])
    sup = Supervisor(client, SupervisorConfig(max_context_chars=300), system_prompt="S")
    texts = [f"message {i} " + "x" * 100 for i in range(10)]
    sup.review(ReviewContext("task", texts, "", "every_n_turns"))
    prompt = client.calls[0][0][1].content
    assert "message 9" in prompt and "message 0 " not in prompt and "earlier ones omitted" in prompt


def test_intervention_without_text_gets_a_usable_message():
    assert Decision("question", "", "").message
    assert Decision("recall", "", "see exp 4").message == "see exp 4"
    assert Decision("redirect", "Back to the objective.").message == "Back to the objective."
    assert not Decision("proceed").intervenes


def test_supervisor_message_history_is_its_own_not_a_shared_context():
    client = ScriptedClient([decision("proceed"), decision("proceed")])
    sup = Supervisor(client, system_prompt="S")
    sup.review(ReviewContext("t", ["a"], "", "idle"))
    sup.review(ReviewContext("t", ["a", "b"], "", "idle"))
    # Each review is one self-contained call: system prompt + one user message.
    assert [len(c[0]) for c in client.calls] == [2, 2]
    assert all(isinstance(m, Message) for m in client.calls[1][0])


def test_code_in_the_researchers_messages_is_hidden_from_the_supervisor():
    text = "Hypothesis: hold long prompts.\n```python\nclass CustomRouter:\n    SECRET = 1\n```\nResult: 12% better."
    assert strip_code(text) == "Hypothesis: hold long prompts.\n[code omitted]\nResult: 12% better."
    assert strip_code("inline `x = 1` stays") == "inline `x = 1` stays"
    client = ScriptedClient([decision("proceed")])
    Supervisor(client, system_prompt="S").review(ReviewContext("task", [text], "", "idle"))
    prompt = client.calls[0][0][1].content
    assert "SECRET" not in prompt and "class CustomRouter" not in prompt and "Result: 12% better." in prompt
