"""The names of the design methods ``glia compare`` runs, and parsing of its method and
budget lists. Standard library only, so that the command line can offer them without
importing the methods themselves."""
from __future__ import annotations

__all__ = ["METHODS", "LLM_METHODS", "parse_methods", "parse_budgets"]

METHODS = ("as-is", "funsearch", "eoh", "openevolve", "glia-scg", "glia-par4", "glia-seq",
           "baselines")
LLM_METHODS = ("as-is", "funsearch", "eoh", "openevolve")


def parse_methods(text) -> list[str]:
    """``"as-is,eoh"`` or a list → validated method names (``all`` = every method)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [m.strip().lower() for m in items if m and m.strip()]
    if not items or items == ["all"]:
        return list(METHODS)
    unknown = [m for m in items if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    return list(dict.fromkeys(items))


def parse_budgets(text) -> list[int]:
    """``"15,100"``, ``15`` or a list → budgets (each >= 1)."""
    items = str(text).split(",") if isinstance(text, (str, int)) else list(text)
    out = [int(str(b).strip()) for b in items if str(b).strip()]
    if not out or any(b < 1 for b in out):
        raise ValueError(f"budgets must be integers >= 1, got {text!r}")
    return out
