"""A deterministic stand-in LLM: an OpenAI-compatible HTTP server on 127.0.0.1 for tests.

It answers ``POST /v1/chat/completions`` by request count, so runs are reproducible:

* a request offering tools (Glia's Researcher) gets tool calls: write ``policy.py`` with a
  candidate router, run an experiment, repeat, and ``finish`` after ``max_experiments`` or
  when the budget is reported spent;
* the Supervisor (its system prompt) gets ``DECISION: proceed``;
* an OpenEvolve diff prompt (asks for SEARCH/REPLACE) gets a diff that replaces the current
  program's EVOLVE block with a candidate;
* anything else gets ``{an idea}`` and one ```python block with a candidate router.

Candidates are least-loaded and head-room-admission routers with parameters that change
with the request count; every 11th one has a bug (it names a replica that does not exist),
and every 9th plain reply has no code at all, so the error paths run too. The server is a
``ThreadingHTTPServer`` on an ephemeral port; use it as a context manager (it shuts down
in ``__exit__``).
"""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LLQ_TEMPLATE = '''import numpy as np


class CustomRouter:
    """Weighted least-loaded queue (variant {n})."""

    def reset(self, info, rng):
        self.info = info

    def route(self, view):
        queue = view.queue
        if len(queue) == 0:
            return []
        load = view.num_waiting * {a} + view.num_running * {b}
        load = load.astype(np.float64)
        out = []
        for rid in queue:
            r = int(np.argmin(load))
            out.append((int(rid), r{bug}))
            load[r] += 1.0
        return out
'''

HRA_TEMPLATE = '''import numpy as np


class CustomRouter:
    """Head-room admission (variant {n}): hold requests until a replica has room."""

    GROWTH = {g}
    SAFETY = {s}

    def reset(self, info, rng):
        self.info = info

    def route(self, view):
        q = np.asarray(view.queue)
        if len(q) == 0:
            return []
        bs = view.block_size
        prompts = view.prompt_tokens[q]
        order = np.lexsort((q, prompts)) if {sf} else np.arange(len(q))
        q, prompts = q[order], prompts[order]
        need = np.ceil(prompts * (1.0 + self.GROWTH) / bs)
        cap = view.num_blocks.astype(np.float64)
        projected = view.allocated_blocks + np.ceil(view.waiting_prompt_tokens * (1.0 + self.GROWTH) / bs)
        qlen = (view.num_waiting + view.num_running).astype(np.float64)
        out = []
        for k in range(len(q)):
            ok = (cap - projected - need[k] >= self.SAFETY * cap) | ((projected == 0) & (qlen == 0))
            if not ok.any():
                break
            r = int(np.where(ok, projected * 1e6 + qlen, np.inf).argmin())
            out.append((int(q[k]), r{bug}))
            projected[r] += need[k]
            qlen[r] += 1
        return out
'''


def candidate(n: int) -> str:
    """The ``n``-th candidate program (deterministic; every 11th is buggy)."""
    bug = " + 100" if n % 11 == 10 else ""
    if n % 3 == 0:
        return LLQ_TEMPLATE.format(n=n, a=1 + n % 4, b=1 + (n // 4) % 3, bug=bug)
    return HRA_TEMPLATE.format(n=n, g=round(0.2 + 0.07 * (n % 13), 2),
                               s=round(0.01 * (n % 5), 2), sf=bool(n % 2), bug=bug)


class StandInLLM:
    """The server. ``url`` is the API root (``http://127.0.0.1:PORT/v1``); ``spec`` a
    ``make_client`` spec for it; ``counts`` how many requests of each kind it answered."""

    def __init__(self, model: str = "standin", max_experiments: int = 6):
        self.model = model
        self.max_experiments = max_experiments
        self.counts: dict[str, int] = {}
        self._n = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def spec(self) -> str:
        return f"openai-compatible:{self.url}:{self.model}"

    def __enter__(self) -> "StandInLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ answers
    def _next(self, kind: str) -> int:
        with self._lock:
            self._n += 1
            self.counts[kind] = self.counts.get(kind, 0) + 1
            return self._n

    def answer(self, body: dict) -> dict:
        """The assistant message (``content`` and maybe ``tool_calls``) for a request."""
        msgs = body.get("messages") or []
        system = " ".join(str(m.get("content") or "") for m in msgs if m.get("role") == "system")
        user = "\n".join(str(m.get("content") or "") for m in msgs if m.get("role") == "user")
        if body.get("tools"):
            return self._researcher(msgs, self._next("researcher"))
        if "Supervisor" in system[:200]:
            self._next("supervisor")
            return {"content": "DECISION: proceed\nREASON: the work is on track."}
        if "SEARCH" in user and "REPLACE" in user:
            return self._diff(user, self._next("diff"))
        n = self._next("plain")
        if n % 9 == 0:
            return {"content": "I would rather not write code for this."}
        return {"content": f"{{Variant {n}: balance load while keeping KV head-room.}}\n\n"
                           f"```python\n{candidate(n)}```\n"}

    def _researcher(self, msgs: list, n: int) -> dict:
        turns = sum(1 for m in msgs if m.get("role") == "assistant")
        last_tool = next((str(m.get("content") or "") for m in reversed(msgs)
                          if m.get("role") == "tool"), "")
        spent = "budget" in last_tool.lower() and ("exhausted" in last_tool.lower()
                                                   or "spent" in last_tool.lower())
        k = turns // 2
        if spent or k >= self.max_experiments:
            call = ("finish", {"summary": f"Best design after {k} experiments: head-room admission."})
        elif turns % 2 == 0:
            call = ("write_file", {"path": "policy.py", "content": candidate(100 + k)})
        else:
            call = ("run_experiment", {"name": f"variant-{k}",
                                       "hypothesis": "keeping KV head-room avoids pre-emptions"})
        return {"content": "", "tool_calls": [{"id": f"call_{n}", "type": "function",
                                               "function": {"name": call[0],
                                                            "arguments": json.dumps(call[1])}}]}

    def _diff(self, user: str, n: int) -> dict:
        m = re.search(r"# Current Program\s*```[a-z]*\n(.*?)```", user, re.S)
        block = re.search(r"# EVOLVE-BLOCK-START\n(.*?)\n# EVOLVE-BLOCK-END", m.group(1), re.S) if m else None
        new = candidate(200 + n).split("\n\n\n", 1)[1].rstrip("\n")  # the class only
        if not block:
            return {"content": f"```python\n{candidate(200 + n)}```"}
        return {"content": f"Make the router admission-aware.\n\n<<<<<<< SEARCH\n{block.group(1)}\n"
                           f"=======\n{new}\n>>>>>>> REPLACE\n"}

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self.send_error(404)
                    return
                msg = outer.answer(body)
                text = msg.get("content") or ""
                prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages") or [])
                doc = {"id": "cmpl-standin", "object": "chat.completion", "created": 0,
                       "model": body.get("model") or outer.model,
                       "choices": [{"index": 0, "message": {"role": "assistant", **msg},
                                    "finish_reason": "tool_calls" if msg.get("tool_calls") else "stop"}],
                       "usage": {"prompt_tokens": prompt_chars // 4,
                                 "completion_tokens": len(text) // 4 + 1,
                                 "total_tokens": prompt_chars // 4 + len(text) // 4 + 1}}
                data = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
