"""Retries with exponential backoff, and the error the client layer raises.

The SDKs' own retry loops are switched off (``max_retries=0``) because their backoff
(0.5 s doubling to 8 s) cannot be tuned; this loop makes count and backoff explicit, so
tests run with zero delay and long studies can wait out rate limits.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")

# 408 request timeout, 409 conflict (lock contention), 429 rate limit, 5xx incl. Anthropic's 529.
RETRYABLE_STATUS = frozenset({408, 409, 429})


class LLMError(RuntimeError):
    """A model call that failed for good (after retries, or with a non-retryable error).

    ``status_code`` is the HTTP status (None for connection errors and timeouts),
    ``attempts`` how many requests were sent, ``retryable`` whether the last failure was
    of a kind that is retried (True means retries ran out).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status_code: int | None = None,
        attempts: int = 0,
        retryable: bool = False,
        kind: str = "other",
        context_tokens: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.context_tokens = context_tokens
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.attempts = attempts
        self.retryable = retryable


class LLMConfigError(ValueError):
    """A client cannot be built: bad spec, missing API key or base URL."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failed call.

    Retry ``k`` (0-based) waits ``min(max_backoff_s, backoff_s * multiplier**k)``, spread
    by ``±jitter`` (a fraction) so parallel sessions do not retry in lock step. A
    ``Retry-After`` header from the server, if ``respect_retry_after``, replaces the
    computed wait (still capped by ``max_backoff_s``). ``RetryPolicy(backoff_s=0,
    max_backoff_s=0)`` never sleeps.
    """

    max_retries: int = 4
    backoff_s: float = 1.0
    multiplier: float = 2.0
    max_backoff_s: float = 60.0
    jitter: float = 0.1
    respect_retry_after: bool = True

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0 or self.jitter < 0:
            raise ValueError("RetryPolicy values must be non-negative")

    def delay(self, retry_index: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_index`` (0-based)."""
        if self.respect_retry_after and retry_after is not None and retry_after >= 0:
            return min(self.max_backoff_s, retry_after)
        base = min(self.max_backoff_s, self.backoff_s * self.multiplier**retry_index)
        if self.jitter and base > 0:
            base *= 1.0 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.max_backoff_s, base))


@dataclass(frozen=True)
class Failure:
    """What a provider-specific classifier says about an exception."""

    retryable: bool
    status_code: int | None
    detail: str
    retry_after: float | None = None
    kind: str = "other"
    context_tokens: int | None = None


def is_retryable_status(status: int) -> bool:
    """True for HTTP statuses worth retrying (408, 409, 429 and all 5xx)."""
    return status in RETRYABLE_STATUS or status >= 500


# What servers say when the prompt plus max_tokens do not fit: OpenAI, vLLM, llama.cpp
# (C++ and Python servers), Ollama. Group 1, when present, is the window in tokens.
_OVERFLOW = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),
    re.compile(r"context window of (\d+)", re.IGNORECASE),
    re.compile(r"context (?:length|size) of (\d+)", re.IGNORECASE),
    re.compile(r"n_ctx(?:_slot)?\s*[=:]?\s*(\d+)", re.IGNORECASE),
    re.compile(r"exceeds? (?:the )?(?:available )?context", re.IGNORECASE),
    re.compile(r"prompt is too long|too many tokens|context_length_exceeded", re.IGNORECASE),
)
# A 5xx whose body says the request itself is wrong will fail the same way every time
# (llama-cpp-python answers a pydantic validation error with HTTP 500).
_INVALID = re.compile(r"validation error|input should be|invalid request|is not valid|"
                      r"unrecognized|not supported|unsupported", re.IGNORECASE)


def classify_status(status: int, text: str, retry_after: float | None = None) -> Failure:
    """A :class:`Failure` for an HTTP error ``status`` with body/message ``text``: only
    rate limits, timeouts, conflicts and genuine server faults are retried."""
    detail = f"HTTP {status}: {text[:500]}"
    for pattern in _OVERFLOW:
        m = pattern.search(text)
        if m and status < 500 or (m and status >= 500 and "context" in text.lower()):
            window = int(m.group(1)) if m.groups() and m.group(1) else None
            return Failure(False, status, detail, None, "context_overflow", window)
    if status in (401, 403):
        return Failure(False, status, detail, None, "auth")
    if status == 429:
        return Failure(True, status, detail, retry_after, "rate_limit")
    if status >= 500 and _INVALID.search(text):
        return Failure(False, status, detail, None, "invalid_request")
    if is_retryable_status(status):
        return Failure(True, status, detail, retry_after, "server" if status >= 500 else "other")
    return Failure(False, status, detail, None, "invalid_request")


def parse_retry_after(headers) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` headers (numeric forms only)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return float(ms) / 1000.0
        s = headers.get("retry-after")
        if s is not None:
            return float(s)
    except (TypeError, ValueError):
        return None
    return None


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    classify: Callable[[BaseException], Failure | None],
    provider: str,
    model: str,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """Call ``fn`` until it succeeds, retrying failures that ``classify`` marks retryable.

    Returns ``(result, attempts)``. Exceptions that ``classify`` does not recognise
    (returns None) propagate unchanged; recognised ones end as :class:`LLMError`.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), attempt
        except Exception as exc:  # noqa: BLE001 - classified below, unknown ones re-raised
            failure = classify(exc)
            if failure is None:
                raise
            if not failure.retryable or attempt > policy.max_retries:
                what = "failed after" if failure.retryable else "failed (not retried) after"
                raise LLMError(
                    f"{provider}:{model} request {what} {attempt} attempt(s): {failure.detail}",
                    provider=provider,
                    model=model,
                    status_code=failure.status_code,
                    attempts=attempt,
                    retryable=failure.retryable,
                    kind=failure.kind,
                    context_tokens=failure.context_tokens,
                ) from exc
            sleep(policy.delay(attempt - 1, failure.retry_after))
