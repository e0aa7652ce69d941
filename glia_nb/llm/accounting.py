"""Thread-safe totals of tokens and dollars across model calls."""

from __future__ import annotations

import threading
from typing import Any

from glia_nb.llm.types import Completion, Usage


class UsageLedger:
    """Sums tokens and dollars over calls, per model and overall.

    Safe to share between threads (the Researcher and Supervisor may run in a background
    thread while a notebook reads the totals). Pass one to a client as ``ledger=`` and it
    records every completion, or call :meth:`record` yourself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0
        self._usage = Usage()
        self._cost = 0.0
        self._by_model: dict[str, dict[str, Any]] = {}
        self._unpriced: set[str] = set()

    def record(self, completion: Completion) -> None:
        """Add one completion's usage and cost."""
        self.add(completion.usage, completion.cost_usd, completion.model, known=completion.cost_known)

    def add(self, usage: Usage, cost_usd: float, model: str = "", *, known: bool = True) -> None:
        """Add usage and cost directly (e.g. when replaying a journal on resume)."""
        with self._lock:
            self._calls += 1
            self._usage = self._usage + usage
            self._cost += float(cost_usd)
            row = self._by_model.setdefault(model, {"calls": 0, "usage": Usage(), "cost_usd": 0.0})
            row["calls"] += 1
            row["usage"] = row["usage"] + usage
            row["cost_usd"] += float(cost_usd)
            if not known:
                self._unpriced.add(model)

    @property
    def calls(self) -> int:
        """Number of recorded calls."""
        with self._lock:
            return self._calls

    @property
    def usage(self) -> Usage:
        """Summed token usage."""
        with self._lock:
            return self._usage

    @property
    def cost_usd(self) -> float:
        """Summed dollar cost (unpriced models count as 0)."""
        with self._lock:
            return self._cost

    @property
    def unpriced_models(self) -> frozenset[str]:
        """Models whose calls had no known price."""
        with self._lock:
            return frozenset(self._unpriced)

    def by_model(self) -> dict[str, dict[str, Any]]:
        """Per-model totals as JSON-native dicts."""
        with self._lock:
            return {
                m: {"calls": r["calls"], **r["usage"].to_dict(), "cost_usd": r["cost_usd"]}
                for m, r in self._by_model.items()
            }

    def snapshot(self) -> dict[str, Any]:
        """All totals as one JSON-native dict (for the journal or a widget)."""
        with self._lock:
            totals = {"calls": self._calls, **self._usage.to_dict(), "cost_usd": self._cost}
            unpriced = sorted(self._unpriced)
        return {**totals, "unpriced_models": unpriced, "by_model": self.by_model()}

    def __repr__(self) -> str:
        u = self.usage
        return (
            f"UsageLedger(calls={self.calls}, input_tokens={u.input_tokens}, "
            f"output_tokens={u.output_tokens}, cost_usd={self.cost_usd:.4f})"
        )
