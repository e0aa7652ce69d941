"""The research digest: what a conversation that outgrew its context window keeps.

When the Researcher's prompt nears the model's window, the session folds the older turns
into one user message built from the session's own records: the task, the experiment
ledger, the Researcher's latest findings and the Supervisor's open questions. The digest
is made from data, not by the model, so it costs no call, cannot hallucinate a result, and
a resumed session rebuilds exactly the same conversation from the journal's ``digest``
record.
"""

from __future__ import annotations

from typing import Sequence

from glia_nb.research.supervisor import strip_code

__all__ = ["build_digest"]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_digest(*, number: int, window: int | None, task_text: str, ledger: str, findings: Sequence[str],
                 questions: Sequence[str], turns: int, policy_file: str = "policy.py", max_chars: int = 6000) -> str:
    """The digest message text (at most about ``max_chars`` characters).

    ``number`` counts the session's digests (1 for the first); ``findings`` are the
    Researcher's message texts and ``questions`` the Supervisor's interventions, oldest
    first (the newest are kept); ``turns`` is how many Researcher turns it replaces.
    """
    size = f"the model's {window}-token context window" if window else "the model's context window"
    head = (f"[Research digest {number}: the conversation up to turn {turns} was folded into this summary to fit "
            f"{size}. Experiments and files are unchanged.]")
    ledger_part = ledger.strip() or "(no experiments yet)"
    if len(ledger_part) > max_chars // 3:  # keep the newest rows: the header and the tail
        rows = ledger_part.splitlines()
        kept: list[str] = rows[:2]
        room = max_chars // 3 - sum(len(r) + 1 for r in kept)
        tail: list[str] = []
        for row in reversed(rows[2:]):
            if room - len(row) - 1 < 0:
                break
            tail.insert(0, row)
            room -= len(row) + 1
        ledger_part = "\n".join(kept + ["| ... | earlier rows omitted |"] + tail)
    notes = [_clip(strip_code(t), 300) for t in findings if t.strip()][-4:]
    asks = [_clip(q, 240) for q in questions if q.strip()][-2:]
    parts = [head, task_text.strip(), "## Experiment ledger", ledger_part,
             "## Your findings so far (latest notes)", "\n".join(f"- {n}" for n in notes) or "- (none written yet)"]
    if asks:
        parts += ["## Open points from the Supervisor", "\n".join(f"- {a}" for a in asks)]
    parts.append(f"The current policy is in `{policy_file}`: read it before changing it. Continue the research.")
    text = "\n\n".join(parts)
    if len(text) > max_chars:  # the task text is the part TASK.md can stand in for
        over = len(text) - max_chars
        short_task = task_text.strip()[: max(200, len(task_text.strip()) - over)]
        text = text.replace(task_text.strip(), short_task + "\n(see TASK.md for the rest)", 1)
    return text
