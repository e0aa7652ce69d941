"""The ``LLMClient`` protocol and the machinery shared by the SDK-backed clients."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from glia_nb.llm.accounting import UsageLedger
from glia_nb.llm.context import TokenMeter, fit_max_tokens
from glia_nb.llm.context import refused
from glia_nb.llm.pricing import context_window_for, cost_usd
from glia_nb.llm.retry import Failure, LLMError, RetryPolicy, call_with_retries, classify_status, parse_retry_after
from glia_nb.llm.types import Completion, Message, ToolSpec, Usage

DEFAULT_MAX_TOKENS = 8192  # reasoning models spend part of this on hidden reasoning; cut to fit the window
DEFAULT_TIMEOUT_S = 600.0  # long reasoning calls take minutes; matches the SDKs' default
SMALL_WINDOW_TOKENS = 16_384  # up to this, a reply is capped at a quarter of the window
NO_KEY = "not-needed"  # what a keyless local server is sent as its API key: not a secret


def held_secrets(*values: str | None) -> tuple[str, ...]:
    """The credential values among ``values`` (an API key given to a client, or read from
    the environment), without blanks and the keyless placeholder :data:`NO_KEY`."""
    return tuple(dict.fromkeys(v for v in values if v and v != NO_KEY))


@runtime_checkable
class LLMClient(Protocol):
    """What the agent loop needs from a model: one synchronous completion call.

    A client that holds credentials also offers ``secrets`` (a tuple of their values, see
    :func:`held_secrets`): a session redacts them from everything it journals, writes or sends
    back to a model, however the key reached the client (``api_key=...`` or the environment).
    It is not part of the protocol, so that any object with ``complete`` still qualifies."""

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


def sdk_classifier(sdk: Any, where: str = "") -> Callable[[BaseException], Failure | None]:
    """Classify the exceptions of a Stainless-generated SDK (``anthropic`` or ``openai``).

    Both SDKs expose ``APIStatusError`` (with ``status_code`` and ``response``),
    ``APIConnectionError`` and its subclass ``APITimeoutError``. ``where`` (the base URL)
    names the endpoint in connection errors. A refused connection is final: retrying a
    closed port only delays the one-line error.
    """
    status_error, conn_error, timeout_error = sdk.APIStatusError, sdk.APIConnectionError, sdk.APITimeoutError
    at = f" {where}" if where else ""

    def classify(exc: BaseException) -> Failure | None:
        if isinstance(exc, status_error):
            status = int(exc.status_code)
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
            text = str(exc)
            try:  # the SDK's message omits bodies without an "error" key (FastAPI's "detail")
                body = response.text if response is not None else ""
            except Exception:  # noqa: BLE001 - a streamed or closed body: the message must do
                body = ""
            if body and body[:200] not in text:
                text = f"{text} {body}"
            return classify_status(status, text, parse_retry_after(headers))
        if isinstance(exc, timeout_error):
            return Failure(True, None, f"request to{at or ' the server'} timed out ({exc})", kind="timeout")
        if isinstance(exc, conn_error):
            if refused(exc):
                return Failure(False, None, f"cannot reach{at or ' the server'}: connection refused",
                               kind="connection")
            cause = exc.__cause__ or exc.__context__
            detail = f"connection error{at} ({exc}{'; ' + repr(cause) if cause else ''})"
            return Failure(True, None, detail, kind="connection")
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
        api_key: str | None = None,
    ) -> None:
        if not model:
            raise ValueError(f"{self.provider}: a model name is required")
        self.model = model
        self.retry = retry if retry is not None else RetryPolicy()
        self.prices = dict(prices) if prices else None
        self.use_builtin_prices = use_builtin_prices
        self.context_window = int(context_window) if context_window else context_window_for(model)
        self.context_source = "given" if context_window else "table"
        self.meter = TokenMeter()
        self.max_output_tokens: int | None = None  # a cap on every reply (the CLI's --max-tokens)
        self.ledger = ledger
        self.secrets = held_secrets(api_key)  # for redaction by whoever records this client's work
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
        self.discover_context()
        chars = self.meter.chars(msgs, tool_list)
        t0 = time.perf_counter()
        exact: int | None = None  # the prompt's size as a server counted it in an overflow error
        for fit_try in range(2):
            sent_max = self._fit(msgs, tool_list, max_tokens, exact)
            try:
                raw, attempts = call_with_retries(
                    lambda: self._create(msgs, tool_list, sent_max, temperature),
                    policy=self.retry,
                    classify=self._classify,
                    provider=self.provider,
                    model=self.model,
                    sleep=self._sleep,
                )
                break
            except LLMError as exc:
                # The server named a smaller window than we assumed: learn it and refit once.
                learnt, exact = self._learn_overflow(exc, chars) if exc.kind == "context_overflow" else (False, None)
                if fit_try or not learnt:
                    raise
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
        if usage.input_tokens > 0:
            self.meter.observe(chars, usage.input_tokens)
        if self.ledger is not None:
            self.ledger.record(completion)
        return completion

    def discover_context(self) -> int:
        """The context window in tokens (servers that can say are asked once, first)."""
        return self.context_window

    def _fit(self, msgs: list[Message], tools: list[ToolSpec], requested: int, exact: int | None = None) -> int:
        """``requested`` cut to the room the window leaves; LLMError when none is left."""
        estimate = exact if exact else self.meter.estimate(msgs, tools)
        if self.max_output_tokens:
            requested = min(requested, int(self.max_output_tokens))
        if self.context_window <= SMALL_WINDOW_TOKENS:  # one reply may not eat a small window
            requested = min(requested, self.context_window // 4)
        fitted = fit_max_tokens(self.context_window, estimate, requested)
        if fitted <= 0:
            raise LLMError(
                f"{self.provider}:{self.model}: the prompt (about {estimate} tokens) leaves no room for a reply "
                f"in the model's {self.context_window}-token context window",
                provider=self.provider, model=self.model, kind="context_overflow",
                context_tokens=self.context_window,
            )
        return fitted

    def _learn_overflow(self, exc: LLMError, chars: int) -> tuple[bool, int | None]:
        """Take the window and prompt size a context-overflow error reports: ``(learnt,
        prompt_tokens)``; when something was learnt a refitted retry may succeed."""
        import re

        learnt = False
        if exc.context_tokens and exc.context_tokens != self.context_window:
            self.context_window, self.context_source, learnt = int(exc.context_tokens), "server error", True
        m = re.search(r"(\d+) (?:tokens )?in the messages", str(exc))
        exact = int(m.group(1)) if m else None
        if exact:
            self.meter.observe(chars, exact)
            learnt = True
        return learnt, exact

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
