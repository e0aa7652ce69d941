"""Progress bars for long work, for the library, the CLI and notebooks alike.

Built on ``tqdm.auto``: a widget bar in Jupyter, a text bar on stderr in a terminal, under
pytest or when stdout is not a terminal. ``GLIA_PROGRESS=0`` in the environment turns the bars
off (CI logs). This module imports only the standard library and tqdm, so any layer may use it.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

__all__ = ["progress"]


def _disabled() -> bool:
    return os.environ.get("GLIA_PROGRESS", "1").strip().lower() in ("0", "false", "no", "off")


def progress(iterable: Iterable[Any] | None = None, desc: str | None = None, total: int | None = None,
             **kw: Any):
    """``tqdm.auto.tqdm`` over ``iterable`` with readable defaults: the bar stays when done
    (``leave=True``), prints at most a few updates a second and names its unit."""
    from tqdm.auto import tqdm

    kw.setdefault("leave", True)
    kw.setdefault("mininterval", 0.5)
    kw.setdefault("dynamic_ncols", True)
    kw.setdefault("disable", _disabled())
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return tqdm(iterable, desc=desc, total=total, **kw)
