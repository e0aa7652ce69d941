"""Secrets: which environment variables are credentials, and the one redaction function.

A secret is the value of any environment variable whose name contains KEY, TOKEN, SECRET,
PASSWORD or CREDENTIAL (the LLM clients read their keys from such variables), plus the values
a caller passes as :func:`known_secrets` ``extra``: the keys its model clients hold however
they got them (``api_key=...`` in a notebook), found by :func:`secrets_of`.  No registry: the
values travel with the objects that need them (a session's journal and toolbox, an
evaluation).  :func:`redact` replaces each one with ``[REDACTED]``; it is applied where text
leaves the trusted side: the journal writer, the harness's result and log files, the ledger,
published studies and the tool results sent back to a model.
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterable

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.I)
MASK = "[REDACTED]"
MIN_LEN = 8  # shorter values (say, "1") would redact ordinary text


def known_secrets(environ=None, extra: Iterable[str] = (), min_len: int = MIN_LEN) -> list[str]:
    """The secret values in ``environ`` (default: this process's), longest first; values
    shorter than ``min_len`` are left alone."""
    env = os.environ if environ is None else environ
    vals = {v for k, v in env.items() if SECRET_NAME.search(k) and len(v or "") >= min_len}
    vals.update(v for v in extra if v and len(v) >= min_len)
    return sorted(vals, key=len, reverse=True)


def redact(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """``value`` with every secret replaced by ``[REDACTED]``: strings, and the strings
    inside dicts, lists and tuples (keys too); anything else is returned as is."""
    secrets = known_secrets() if secrets is None else list(secrets)
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, MASK)
        return value
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, secrets) for v in value)
    return value


def secrets_of(*holders: Any) -> tuple[str, ...]:
    """The credential values ``holders`` hold: LLM clients (their ``secrets``, see
    :func:`glia_nb.llm.base.held_secrets`), or anything running on one (a ``client``
    attribute, or an ``agent`` with a ``client``, as the Researcher and the Supervisor)."""
    found: list[str] = []
    for h in holders:
        for obj in (h, getattr(h, "client", None), getattr(getattr(h, "agent", None), "client", None)):
            found.extend(v for v in (getattr(obj, "secrets", None) or ()) if isinstance(v, str) and v)
    return tuple(dict.fromkeys(found))


def scrubbed_env(extra: dict | None = None) -> dict:
    """The current environment without credentials, for trusted helper processes."""
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
    env.update(extra or {})
    return env


__all__ = ["known_secrets", "redact", "secrets_of", "scrubbed_env", "SECRET_NAME", "MASK"]
