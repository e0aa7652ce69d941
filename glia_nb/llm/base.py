"""The ``LLMClient`` protocol and the machinery shared by the SDK-backed clients."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from glia_nb.llm.accounting import UsageLedger
from glia_nb.llm.pricing import context_window_for, cost_usd
from glia_nb.llm.retry import Failure, RetryPolicy, call_with_retries, is_retryable_status, parse_retry_after
from glia_nb.llm.types import Completion, Message, ToolSpec, Usage

DEFAULT_MAX_TOKENS = 8192  # reasoning models spend part of this on hidden reasoning
DEFAULT_TIMEOUT_S = 600.0  # long reasoning calls take minutes; matches the SDKs' default


@runtime_checkable
class LLMClient(Protocol):
    """What the agent loop needs from a model: one synchronous completion call."""

    provider: str
    model: str
    context_window: int

    def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float | None = None,
    ) -> Completion:
        """Send the conversation (and the tools on offer); return the model's next turn."""
        ...


def sdk_classifier(sdk: Any) -> Callable[[BaseException], Failure | None]:
    """Classify the exceptions of a Stainless-generated SDK (``anthropic`` or ``openai``).

    Both SDKs expose ``APIStatusError`` (with ``status_code`` and ``response``),
    ``APIConnectionError`` and its subclass ``APITimeoutError``.
    """
    status_error, conn_error, timeout_error = sdk.APIStatusError, sdk.APIConnectionError, sdk.APITimeoutError

    def classify(exc: BaseException) -> Failure | None:
        if isinstance(exc, status_error):
            status = int(exc.status_code)
            headers = getattr(getattr(exc, "response", None), "headers", None)
            text = str(exc)
            detail = f"HTTP {status}: {text[:500]}"
            return Failure(is_retryable_status(status), status, detail, parse_retry_after(headers))
        if isinstance(exc, timeout_error):
            return Failure(True, None, f"request timed out ({exc})")
        if isinstance(exc, conn_error):
            cause = exc.__cause__ or exc.__context__
            return Failure(True, None, f"connection error ({exc}{'; ' + repr(cause) if cause else ''})")
        return None

    return classify


class SDKClient:
    """Shared behaviour of the SDK clients: retries, timing, cost and accounting.

    Subclasses set ``provider`` and implement :meth:`_create` (one HTTP request via the
    SDK) and :meth:`_parse` (SDK response → ``(message, usage, stop_reason, model)``).
    """

    provider: str = ""

    def __init__(
        self,
        model: str,
        *,
        retry: RetryPolicy | None,
        prices: Mapping[str, Any] | None,
        use_builtin_prices: bool,
        context_window: int | None,
        ledger: UsageLedger | None,
        sleep: Callable[[float], None],
        classify: Callable[[BaseException], Failure | None],
    ) -> None:
        if not model:
            raise ValueError(f"{self.provider}: a model name is required")
        self.model = model
        self.retry = retry if retry is not None else RetryPolicy()
        self.prices = dict(prices) if prices else None
        self.use_builtin_prices = use_builtin_prices
        self.context_window = int(context_window) if context_window else context_window_for(model)
        self.ledger = ledger
        self._sleep = sleep
        self._classify = classify

    def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float | None = None,
    ) -> Completion:
        """Send ``messages`` (and ``tools``) and return the model's reply.

        Retries per ``self.retry``; raises :class:`~glia_nb.llm.retry.LLMError` when the
        call fails for good. Records the completion in ``self.ledger`` if one was given.
        """
        msgs = list(messages)
        if not any(m.role != "system" for m in msgs):
            raise ValueError("complete() needs at least one non-system message")
        tool_list = list(tools or ())
        t0 = time.perf_counter()
        raw, attempts = call_with_retries(
            lambda: self._create(msgs, tool_list, max_tokens, temperature),
            policy=self.retry,
            classify=self._classify,
            provider=self.provider,
            model=self.model,
            sleep=self._sleep,
        )
        latency = time.perf_counter() - t0
        message, usage, stop_reason, served_model = self._parse(raw)
        model = served_model or self.model
        cost = cost_usd(model, usage, self.prices, use_builtin=self.use_builtin_prices)
        if not cost.known and model != self.model:
            # A served snapshot id may be missing from the table while the requested alias is in it.
            cost = cost_usd(self.model, usage, self.prices, use_builtin=self.use_builtin_prices)
        completion = Completion(
            message=message,
            usage=usage,
            cost_usd=cost.usd,
            model=model,
            provider=self.provider,
            stop_reason=stop_reason,
            latency_s=latency,
            cost_known=cost.known,
            attempts=attempts,
        )
        if self.ledger is not None:
            self.ledger.record(completion)
        return completion

    def _create(
        self, messages: list[Message], tools: list[ToolSpec], max_tokens: int, temperature: float | None
    ) -> Any:
        raise NotImplementedError

    def _parse(self, raw: Any) -> tuple[Message, Usage, str, str | None]:
        raise NotImplementedError

    def close(self) -> None:
        """Close the SDK's HTTP connection pool (the client is unusable afterwards)."""
        sdk = getattr(self, "_sdk", None)
        if sdk is not None:
            sdk.close()

    def __enter__(self) -> "SDKClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"
