"""The research transcript, folded from session events (journal records).

Pure Python, no widgets: :class:`Transcript` takes records one at a time (``add``) and
keeps a list of entries that only grows: an entry, once made, never changes, so a view can
append new ones and leave what a reader has opened alone. Entries come in causal order:
the Researcher's message, each tool call, that call's result (✓, or ✗ when it failed,
a shell command's non-zero exit included), then the experiment it produced (the
session journals an experiment the moment it ends, which can be before the message that
asked for it). A person's words are labelled Person, the Supervisor's Supervisor, and a
nudge gets a receipt when it reaches the Researcher.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any, Mapping

from glia_nb.research import records as R
from glia_nb.research.session.step import StepHold

__all__ = ["Transcript", "WHO_COLORS", "failed_result", "SHOWN_TYPES"]

#: The record types the transcript shows (named from glia_nb.research.records, so a renamed
#: type cannot silently fall out of it); everything else it passes over.
SHOWN_TYPES = frozenset({
    *(cls.TYPE for cls in (R.UserMessage, R.Assistant, R.ToolResultRecord, R.Baseline, R.Experiment,
                           R.SupervisorReview, R.InterventionQueued, R.InterventionApproved, R.InterventionEdited,
                           R.InterventionRejected, R.Nudge, R.ApprovalPolicy, R.BudgetExhausted, R.Error,
                           R.Finished)),
    *R.CONTROL_TYPES, StepHold.TYPE,
})

WHO_COLORS = {"Researcher": "#1f5fa8", "Supervisor": "#7b3fa0", "Person": "#1d7a33", "Study": "#666666",
              "Error": "#b00020", "Tool": "#888888"}
MAX_TEXT = 1500  # characters of a tool argument or result shown in the transcript

CSS = (
    "<style>"
    ".glia-tx{font-size:12.5px;line-height:1.35}"
    ".glia-tx .e{padding:3px 6px;margin:2px 0;border-left:3px solid #ccc}"
    ".glia-tx .who{font-weight:600;margin-right:6px}"
    ".glia-tx .quiet{color:#777;font-size:11.5px}"
    ".glia-tx details{margin:1px 0 1px 14px}"
    ".glia-tx summary{cursor:pointer;color:#444}"
    ".glia-tx pre{white-space:pre-wrap;margin:2px 0;font-size:11px;background:#f6f6f6;padding:4px;"
    "max-height:260px;overflow:auto}"
    "</style>"
)


def _esc(text: Any) -> str:
    return html.escape(str(text if text is not None else ""))


def _clip(text: str, n: int = MAX_TEXT) -> str:
    return text if len(text) <= n else text[:n] + f"\n… ({len(text) - n:,} more characters in the journal)"


def _fmt(x: Any, nd: int = 4) -> str:
    try:
        return f"{float(x):.{nd}g}"
    except (TypeError, ValueError):
        return "—"


def _args_text(args: Any) -> str:
    if isinstance(args, Mapping):
        parts = []
        for k, v in args.items():
            v = v if isinstance(v, str) else json.dumps(v, default=str)
            parts.append(f"{k}: {v}" if "\n" not in v else f"{k}:\n{v}")
        return "\n".join(parts)
    return str(args)


_EXIT = re.compile(r"\[exit code (-?\d+)\]")


def failed_result(rec: Mapping[str, Any]) -> str | None:
    """Why a tool result failed ("error", "exit code 2"), or None when it succeeded."""
    codes = _EXIT.findall(str(rec.get("text") or ""))
    if codes and int(codes[-1]) != 0:
        return f"exit code {codes[-1]}"
    return "error" if rec.get("is_error") else None


def _call_summary(call: Mapping[str, Any]) -> str:
    args = call.get("arguments") or {}
    hint = ""
    for key in ("name", "path", "command", "script"):
        if isinstance(args, Mapping) and args.get(key):
            hint = str(args[key]).splitlines()[0][:70]
            break
    return f"{call.get('name', '?')}({hint})" if hint else f"{call.get('name', '?')}()"


# Records after which an experiment journaled early still waits for its call's result.
_KEEP_HOLDING = frozenset({
    *(cls.TYPE for cls in (R.Experiment, R.Assistant, R.LlmCall, R.UserMessage, R.Nudge, R.ApprovalPolicy,
                           R.InterventionApproved, R.InterventionEdited, R.InterventionRejected)),
    *R.CONTROL_TYPES, "status",
})


class Transcript:
    """Entries of the transcript, oldest first; each ``{"id", "who", "html", "text"}``.
    ``add`` appends, never rewrites, so ``entries[:n]`` is stable."""

    def __init__(self, max_entries: int = 80) -> None:
        self.max_entries = max_entries  # what html() shows; entries keeps everything
        self.entries: list[dict[str, Any]] = []
        self._calls: dict[str, dict[str, Any]] = {}  # tool call id -> the call
        self._held: list[Mapping[str, Any]] = []     # experiments waiting for their call's result
        self._turn = 0                               # the Researcher's turns so far

    # ------------------------------------------------------------------ folding
    def add(self, rec: Mapping[str, Any]) -> bool:
        """Fold one record in; True if entries were appended."""
        n = len(self.entries)
        t = rec.get("type")
        if t in SHOWN_TYPES:
            getattr(self, f"_on_{t}")(rec)
        if t not in _KEEP_HOLDING:
            self._release()
        return len(self.entries) > n

    def _release(self) -> None:
        held, self._held = self._held, []
        for rec in held:
            self._show_experiment(rec)

    def _on_experiment(self, rec):
        self._held.append(rec)  # shown once its call's result is (see the module's docstring)

    def _entry(self, who: str, body: str, *, quiet: bool = False, details=(), cls: str = "") -> None:
        color = WHO_COLORS.get(who, "#666")
        parts = [f"<div class='e{' quiet' if quiet else ''}{' ' + cls if cls else ''}' "
                 f"style='border-left-color:{color}'><span class='who' style='color:{color}'>{who}</span>{body}"]
        for title, text in details:
            parts.append(f"<details><summary>{_esc(title)}</summary><pre>{_esc(text)}</pre></details>")
        parts.append("</div>")
        plain = html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<pre>.*?</pre>", "", body, flags=re.S))).strip()
        self.entries.append({"id": len(self.entries), "who": who, "html": "".join(parts), "text": f"{who}: {plain}"})

    def _on_user_message(self, rec):
        src = rec.get("source")
        if src == "task":
            self._entry("Study", "Task handed to the Researcher", quiet=True,
                        details=[("task text", _clip(rec.get("text", ""), 6000))])
        elif src == "person":
            self._entry("Study", f"your nudge ({_esc(rec.get('source_id'))}) was delivered to the Researcher "
                        f"before turn {self._turn + 1}", quiet=True, cls="receipt")
        elif src == "supervisor":
            self._entry("Study", f"the Supervisor's intervention {_esc(rec.get('source_id'))} was delivered "
                        f"to the Researcher before turn {self._turn + 1}", quiet=True)

    def _on_assistant(self, rec):
        self._turn += 1
        calls = [dict(c) for c in rec.get("tool_calls") or ()]
        text = _esc(rec.get("text", "")).strip()
        if text or not calls:
            self._entry("Researcher", text or "<i>(no text)</i>")
        for c in calls:
            self._calls[str(c.get("id"))] = c
            body = (f"<details class='call'><summary>tool call: {_esc(_call_summary(c))}</summary>"
                    f"<pre>{_esc(_clip(_args_text(c.get('arguments') or {})))}</pre></details>")
            self._entry("Researcher", body, cls="tool")

    def _on_tool_result(self, rec):
        call = self._calls.get(str(rec.get("call_id"))) or {"name": rec.get("name", "?")}
        why = failed_result(rec)
        mark = (f"<span style='color:#b00020'>&#10007; failed ({_esc(why)})</span>" if why
                else "<span style='color:#1d7a33'>&#10003;</span>")
        body = (f"<details class='result'><summary>result of {_esc(_call_summary(call))} {mark}</summary>"
                f"<pre>{_esc(_clip(str(rec.get('text', ''))))}</pre></details>")
        self._entry("Tool", body, quiet=True, cls="tool-result failed" if why else "tool-result")

    def _on_baseline(self, rec):
        self._entry("Study", f"Baseline evaluated: score <b>{_fmt(rec.get('score'))}</b>"
                    f" over {rec.get('seeds', rec.get('simulations', '?'))} seed(s)", quiet=True)

    def _show_experiment(self, rec):
        if rec.get("ok") is False or rec.get("score") is None:
            body = (f"Experiment #{_esc(rec.get('id', '?'))} <b>{_esc(rec.get('name'))}</b> failed: "
                    f"{_esc(str(rec.get('error') or '')[:300])}")
        else:
            star = " &#9733; new best" if rec.get("improved") else ""
            body = (f"Experiment #{_esc(rec.get('id', '?'))} <b>{_esc(rec.get('name'))}</b>: score "
                    f"<b>{_fmt(rec.get('score'))}</b>{star}")
        self._entry("Study", body, quiet=True, cls="experiment")

    def _on_supervisor_review(self, rec):
        kind, trig = rec.get("kind", "?"), rec.get("trigger", "?")
        if kind == "proceed":
            return self._entry("Supervisor", f"reviewed ({_esc(trig)}): proceed", quiet=True)
        reason = f"<div class='quiet'>reason: {_esc(rec.get('reason'))}</div>" if rec.get("reason") else ""
        self._entry("Supervisor", f"<i>{_esc(kind)}</i> ({_esc(trig)}): {_esc(rec.get('text'))}{reason}")

    def _on_intervention_queued(self, rec):
        self._entry("Supervisor", f"intervention {_esc(rec.get('id'))} waits for your approval "
                    "(approve, edit or reject it in the banner above)", quiet=True)

    def _on_intervention_approved(self, rec):
        if rec.get("auto"):
            return self._entry("Study", f"intervention {_esc(rec.get('id'))} auto-approved", quiet=True)
        self._entry("Person", f"approved intervention {_esc(rec.get('id'))} as written", quiet=True)

    def _on_intervention_edited(self, rec):
        self._entry("Person", f"edited intervention {_esc(rec.get('id'))} and approved it: {_esc(rec.get('text'))}")

    def _on_intervention_rejected(self, rec):
        self._entry("Person", f"rejected intervention {_esc(rec.get('id'))}", quiet=True)

    def _on_nudge(self, rec):
        self._entry("Person", f"nudge: {_esc(rec.get('text'))}", cls="nudge")

    def _on_pause(self, rec):
        self._entry("Person", "paused the session", quiet=True)

    def _on_resume(self, rec):
        self._entry("Person", "resumed the session", quiet=True)

    def _on_stop(self, rec):
        self._entry("Person", "asked the session to stop", quiet=True)

    def _on_approval_policy(self, rec):
        self._entry("Person", f"set the approval policy to <b>{_esc(rec.get('approval'))}</b>", quiet=True)

    def _on_step_hold(self, rec):
        self._entry("Study", f"step mode: holding experiment <b>{_esc(rec.get('name'))}</b> for your approval",
                    quiet=True)

    def _on_budget_exhausted(self, rec):
        self._entry("Study", f"budget exhausted: {_esc(rec.get('reason'))}", quiet=True)

    def _on_error(self, rec):
        self._entry("Error", _esc(rec.get("error")))

    def _on_finished(self, rec):
        best = rec.get("best") or {}
        tail = (f" Best: <b>{_esc(best.get('name'))}</b>, score <b>{_fmt(rec.get('best_score'))}</b>."
                if best else "")
        summary = rec.get("summary")
        details = [("summary", _clip(str(summary), 4000))] if summary else []
        self._entry("Study", f"Session {_esc(rec.get('status'))} ({_esc(rec.get('reason'))}).{tail}",
                    details=details)

    # ------------------------------------------------------------------ rendering
    def html(self, height_px: int = 380) -> str:
        """The last ``max_entries`` entries as one static HTML block (saved notebooks, reports)."""
        shown = self.entries[-self.max_entries:]
        hidden = len(self.entries) - len(shown)
        head = f"<div class='quiet'>{hidden} earlier entries are in the journal.</div>" if hidden else ""
        body = "".join(e["html"] for e in shown) or "<div class='quiet'>Nothing yet: start the session.</div>"
        return f"{CSS}<div class='glia-tx' style='max-height:{height_px}px;overflow-y:auto'>{head}{body}</div>"

    def text(self) -> str:
        """Plain-text transcript (for tests and terminals)."""
        return "\n".join(e["text"] for e in self.entries)
