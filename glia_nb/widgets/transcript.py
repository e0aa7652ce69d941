"""The research transcript as HTML, folded from session events (journal records).

Pure Python, no widgets: :class:`Transcript` takes records one at a time (``add``) and
renders the latest entries (``html``). The Researcher's tool calls and their results are
collapsible ``<details>`` blocks; the Supervisor's decisions, the person's nudges and
approvals, experiments and the end of the study are entries of their own.
"""
from __future__ import annotations

import html
import json
from typing import Any, Mapping

__all__ = ["Transcript", "WHO_COLORS"]

WHO_COLORS = {"Researcher": "#1f5fa8", "Supervisor": "#7b3fa0", "Person": "#1d7a33", "Study": "#666666",
              "Error": "#b00020"}
MAX_TEXT = 1500  # characters of a tool argument or result shown in the transcript

_CSS = (
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


def _call_summary(call: Mapping[str, Any]) -> str:
    args = call.get("arguments") or {}
    hint = ""
    for key in ("name", "path", "command", "script"):
        if isinstance(args, Mapping) and args.get(key):
            hint = str(args[key]).splitlines()[0][:70]
            break
    return f"{call.get('name', '?')}({hint})" if hint else f"{call.get('name', '?')}()"


class Transcript:
    """Entries of the live transcript, newest last; ``html()`` shows the last
    ``max_entries`` of them."""

    def __init__(self, max_entries: int = 80) -> None:
        self.max_entries = max_entries
        self.entries: list[dict[str, Any]] = []
        self._calls: dict[str, dict[str, Any]] = {}   # tool call id -> its entry
        self._results: dict[str, dict[str, Any]] = {}  # results that came before their call

    # ------------------------------------------------------------------ folding
    def add(self, rec: Mapping[str, Any]) -> bool:
        """Fold one record in; True if the visible transcript changed."""
        t = rec.get("type")
        handler = getattr(self, f"_on_{t}", None)
        if handler is None:
            return False
        return handler(rec) is not False

    def _entry(self, who: str, body: str, *, quiet: bool = False, **extra: Any) -> dict[str, Any]:
        e = {"who": who, "body": body, "quiet": quiet, **extra}
        self.entries.append(e)
        return e

    def _on_user_message(self, rec):
        src = rec.get("source")
        if src == "task":
            return self._entry("Study", "Task handed to the Researcher", quiet=True,
                               details=[("task text", _clip(rec.get("text", ""), 6000))])
        if src in ("loop", "resume"):
            return False
        return False  # nudges and interventions are shown when they are made

    def _on_assistant(self, rec):
        calls = [dict(c) for c in rec.get("tool_calls") or ()]
        e = self._entry("Researcher", _esc(rec.get("text", "")).strip() or "<i>(tool call)</i>", calls=calls)
        for c in calls:
            cid = str(c.get("id"))
            self._calls[cid] = e
            if cid in self._results:
                c["result"] = self._results.pop(cid)
        return e

    def _on_tool_result(self, rec):
        cid = str(rec.get("call_id"))
        res = {"text": rec.get("text", ""), "is_error": bool(rec.get("is_error"))}
        entry = self._calls.get(cid)
        if entry is None:
            self._results[cid] = res
            return False
        for c in entry["calls"]:
            if str(c.get("id")) == cid:
                c["result"] = res
        return True

    def _on_baseline(self, rec):
        return self._entry("Study", f"Baseline evaluated: score <b>{_fmt(rec.get('score'))}</b>"
                           f" over {rec.get('seeds', '?')} seed(s)", quiet=True)

    def _on_experiment(self, rec):
        if rec.get("ok") is False or rec.get("score") is None:
            body = (f"Experiment #{_esc(rec.get('id', '?'))} <b>{_esc(rec.get('name'))}</b> failed: "
                    f"{_esc(str(rec.get('error') or '')[:300])}")
        else:
            star = " &#9733; new best" if rec.get("improved") else ""
            body = (f"Experiment #{_esc(rec.get('id', '?'))} <b>{_esc(rec.get('name'))}</b>: score "
                    f"<b>{_fmt(rec.get('score'))}</b>{star}")
        return self._entry("Study", body, quiet=True)

    def _on_supervisor_review(self, rec):
        kind, trig = rec.get("kind", "?"), rec.get("trigger", "?")
        if kind == "proceed":
            return self._entry("Supervisor", f"reviewed ({_esc(trig)}): proceed", quiet=True)
        reason = f"<div class='quiet'>reason: {_esc(rec.get('reason'))}</div>" if rec.get("reason") else ""
        return self._entry("Supervisor", f"<i>{_esc(kind)}</i> ({_esc(trig)}): {_esc(rec.get('text'))}{reason}")

    def _on_intervention_queued(self, rec):
        return self._entry("Supervisor", f"intervention {_esc(rec.get('id'))} waits for your approval "
                           "in the inbox", quiet=True)

    def _on_intervention_approved(self, rec):
        how = "auto-approved and delivered" if rec.get("auto") else "approved by the person and delivered"
        return self._entry("Person" if not rec.get("auto") else "Study",
                           f"intervention {_esc(rec.get('id'))} {how}", quiet=True)

    def _on_intervention_edited(self, rec):
        return self._entry("Person", f"edited intervention {_esc(rec.get('id'))} and delivered it: "
                           f"{_esc(rec.get('text'))}")

    def _on_intervention_rejected(self, rec):
        return self._entry("Person", f"rejected intervention {_esc(rec.get('id'))}", quiet=True)

    def _on_nudge(self, rec):
        return self._entry("Person", f"nudge: {_esc(rec.get('text'))}")

    def _on_pause(self, rec):
        return self._entry("Person", "paused the session", quiet=True)

    def _on_resume(self, rec):
        return self._entry("Person", "resumed the session", quiet=True)

    def _on_stop(self, rec):
        return self._entry("Person", "asked the session to stop", quiet=True)

    def _on_approval_policy(self, rec):
        return self._entry("Person", f"set the approval policy to <b>{_esc(rec.get('approval'))}</b>", quiet=True)

    def _on_budget_exhausted(self, rec):
        return self._entry("Study", f"budget exhausted: {_esc(rec.get('reason'))}", quiet=True)

    def _on_error(self, rec):
        return self._entry("Error", _esc(rec.get("error")))

    def _on_finished(self, rec):
        best = rec.get("best") or {}
        tail = (f" Best: <b>{_esc(best.get('name'))}</b>, score <b>{_fmt(rec.get('best_score'))}</b>."
                if best else "")
        summary = rec.get("summary")
        details = [("summary", _clip(str(summary), 4000))] if summary else []
        return self._entry("Study", f"Session {_esc(rec.get('status'))} ({_esc(rec.get('reason'))}).{tail}",
                           details=details)

    # ------------------------------------------------------------------ rendering
    @staticmethod
    def _render(e: Mapping[str, Any]) -> str:
        color = WHO_COLORS.get(e["who"], "#666")
        cls = "e quiet" if e.get("quiet") else "e"
        parts = [f"<div class='{cls}' style='border-left-color:{color}'>"
                 f"<span class='who' style='color:{color}'>{e['who']}</span>{e['body']}"]
        for c in e.get("calls") or ():
            res = c.get("result")
            mark = "" if res is None else (" &#10007;" if res["is_error"] else " &#10003;")
            parts.append(f"<details><summary>tool: {_esc(_call_summary(c))}{mark}</summary>"
                         f"<pre>{_esc(_clip(_args_text(c.get('arguments') or {})))}</pre>")
            if res is not None:
                parts.append(f"<div class='quiet'>result:</div><pre>{_esc(_clip(str(res['text'])))}</pre>")
            parts.append("</details>")
        for title, text in e.get("details") or ():
            parts.append(f"<details><summary>{_esc(title)}</summary><pre>{_esc(text)}</pre></details>")
        parts.append("</div>")
        return "".join(parts)

    def html(self, height_px: int = 380) -> str:
        """The last entries, oldest first, in a box that stays scrolled to the newest."""
        shown = self.entries[-self.max_entries:]
        hidden = len(self.entries) - len(shown)
        head = (f"<div class='quiet'>{hidden} earlier entries are in the journal.</div>" if hidden else "")
        body = "".join(self._render(e) for e in shown) or "<div class='quiet'>Nothing yet: start the session.</div>"
        # column-reverse keeps the scroll position at the bottom as entries arrive
        return (f"{_CSS}<div class='glia-tx' style='max-height:{height_px}px;overflow-y:auto;display:flex;"
                f"flex-direction:column-reverse'><div>{head}{body}</div></div>")

    def text(self) -> str:
        """Plain-text transcript (for tests and terminals)."""
        import re

        out = []
        for e in self.entries:
            body = re.sub(r"<[^>]+>", "", e["body"])
            out.append(f"{e['who']}: {html.unescape(body)}")
            for c in e.get("calls") or ():
                out.append(f"    tool {_call_summary(c)}")
        return "\n".join(out)
