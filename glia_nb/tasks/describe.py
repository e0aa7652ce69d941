"""The parts of a task text that describe code, generated from the code so they cannot drift:
the router's view, the cluster facts, the request states, the telemetry columns.

The ``sim_core`` imports inside functions are lazy on purpose: rendering a task must not pay
for importing the numba engine.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

# Columns of SimResult.requests / the CSVs written by SimResult.write_artifacts.  Spelled out
# here (rather than computed by running a simulation) so rendering stays instant; a test
# checks them against a real run.
REQUESTS_COLUMNS = (
    "request_id", "arrived_at", "routed_at", "first_scheduled_at", "first_token_at",
    "completed_at", "replica", "prompt_tokens", "decode_tokens", "final_prompt_tokens",
    "restarts", "tokens_recomputed", "e2e_s", "ttft_s", "tpot_s", "global_queue_s",
    "replica_queue_s", "prefill_s", "decode_s", "lost_to_restarts_s")
GS_LOG_COLUMNS = ("time", "replica_id", "num_pending_requests", "num_active_requests",
                  "num_allocated_blocks", "num_blocks", "state", "memory_usage_percent")
REQS_LOG_COLUMNS = ("time", "replica_id", "request_id", "num_prefill_tokens",
                    "num_decode_tokens")


# ---------------------------------------------------------------------- generated parts
def info_values(cluster) -> dict[str, Any]:
    """ClusterInfo's fields with this cluster's values (mirrors facade.cluster_info without
    importing the numba engine)."""
    from sim_core.view import ClusterInfo

    out = {}
    for f in dataclasses.fields(ClusterInfo):
        src = cluster if f.name == "num_replicas" else cluster.replica
        out[f.name] = getattr(src, f.name, "?")
    return out


def _clean_rst(text: str) -> str:
    text = re.sub(r":\w+:`([^`]*)`", r"`\1`", text)
    return text.replace("``", "`")


def view_docstring() -> str:
    from sim_core.view import ClusterView

    doc = inspect.cleandoc(ClusterView.__doc__ or "")
    return "\n".join("> " + line if line else ">" for line in _clean_rst(doc).splitlines())


def view_members() -> dict[str, str]:
    """Public members of :class:`~sim_core.view.ClusterView` → a short description.

    Descriptions come from the member's own docstring, else from the ``name`` (…) remark
    in the class docstring, else from the docstring paragraph that mentions it."""
    from sim_core.view import ClusterInfo, ClusterView

    doc = inspect.cleandoc(ClusterView.__doc__ or "")
    paragraphs = [p.replace("\n", " ") for p in doc.split("\n\n")]
    names = [n for n in ClusterView.__slots__ if not n.startswith("_")]
    names += [n for n, v in vars(ClusterView).items()
              if not n.startswith("_") and n not in names and (isinstance(v, property) or callable(v))]
    info_fields = {f.name for f in dataclasses.fields(ClusterInfo)}
    out = {}
    for n in names:
        member = vars(ClusterView).get(n)
        own = inspect.getdoc(member) if isinstance(member, property) or callable(member) else None
        m = re.search(rf"``{re.escape(n)}``\s*\(([^()]*)\)", doc.replace("\n", " "))
        group = next((p.split(":", 1)[0] for p in paragraphs if f"``{n}``" in p), "")
        if own:
            desc = own.splitlines()[0]
        elif m:
            desc = m.group(1)
        else:
            desc = _clause_about(n, paragraphs)
        if not desc and not group and n in info_fields:
            desc = f"same as `info.{n}`"
        if n == "info":
            desc = desc or "the ClusterInfo given to reset"
        if group and group.lower().startswith("per "):
            desc = f"[{group.split('(')[0].strip().lower()}] {desc}".strip()
        if callable(member) and not isinstance(member, property):
            params = ", ".join(list(inspect.signature(member).parameters)[1:])
            n = f"{n}({params})"
        out[n] = _clean_rst(desc)
    return out


def _clause_about(name: str, paragraphs: list[str]) -> str:
    """The first clause of a prose paragraph (not a ``Per ...:`` list) that mentions ``name``."""
    for p in paragraphs:
        if p.lower().startswith("per "):
            continue
        for clause in re.split(r"(?<=[.;])\s+|\s+and\s+(?=``)", p):
            if f"``{name}``" in clause and not clause.rstrip().endswith(":"):
                if ":" in clause:  # drop a lead-in such as "The global queue:"
                    clause = clause.split(":", 1)[1]
                return clause.strip().rstrip(".;")
    return ""


def describe_view() -> str:
    """The Markdown list of the view's members used in the task text."""
    return "\n".join(f"* `view.{n}`" + (f" — {d}" if d else "") for n, d in view_members().items())


def state_codes() -> str:
    from sim_core import state as S

    codes = sorted((v, k) for k, v in vars(S).items()
                   if k.startswith("ST_") and k != "ST_MARK" and isinstance(v, int))
    return ", ".join(f"{v} = {k[3:].lower()}" for v, k in codes)


def time_parts() -> str:
    from sim_core.results import TIME_PARTS

    return " + ".join(f"`{p}`" for p in TIME_PARTS)


__all__ = ["REQUESTS_COLUMNS", "GS_LOG_COLUMNS", "REQS_LOG_COLUMNS",
           "describe_view", "view_members", "info_values", "view_docstring", "state_codes",
           "time_parts"]
