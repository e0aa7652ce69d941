"""Secrets: which environment variables are credentials, and the one redaction function.

A secret is the value of any environment variable whose name contains KEY, TOKEN, SECRET,
PASSWORD or CREDENTIAL (the LLM clients read their keys from such variables), plus any value
registered by a client that got its key another way (:func:`known_secrets` ``extra``).
:func:`redact` replaces each one with ``[REDACTED]``; it is applied where text leaves the
trusted side: the journal writer and the tool results sent back to a model.
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


def scrubbed_env(extra: dict | None = None) -> dict:
    """The current environment without credentials, for trusted helper processes."""
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
    env.update(extra or {})
    return env


__all__ = ["known_secrets", "redact", "scrubbed_env", "SECRET_NAME", "MASK"]
