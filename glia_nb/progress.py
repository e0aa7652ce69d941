"""Progress bars and progress lines for long work, for the library, the CLI and notebooks.

Built on ``tqdm.auto``: a widget bar in Jupyter, a text bar on stderr elsewhere. When stderr
is not a terminal (a log file, a pipe, CI) the bar still prints, at a low refresh rate, so
a long command is never silent. ``GLIA_PROGRESS=0`` in the environment turns bars and lines
off. Numbers in progress text go through :func:`fmt` (4 significant figures). This module
imports only the standard library and tqdm, so any layer may use it.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any, Iterable

__all__ = ["fmt", "note", "progress", "NON_TTY_INTERVAL_S"]

NON_TTY_INTERVAL_S = 20.0  # refresh of a bar written to a file or pipe: a line every ~20 s


def _disabled() -> bool:
    return os.environ.get("GLIA_PROGRESS", "1").strip().lower() in ("0", "false", "no", "off")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def fmt(value: Any, digits: int = 4) -> str:
    """``value`` with ``digits`` significant figures (``23.568769`` -> ``23.57``); ``-``
    for None or a non-finite number; anything else as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # NumPy scalars
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, int):
        return str(value)
    return format(value, f".{digits}g") if math.isfinite(value) else "-"


def progress(iterable: Iterable[Any] | None = None, desc: str | None = None, total: int | None = None,
             **kw: Any):
    """``tqdm.auto.tqdm`` over ``iterable`` on stderr with readable defaults: the bar stays
    when done (``leave=True``), prints a few updates a second in a terminal and one every
    :data:`NON_TTY_INTERVAL_S` seconds otherwise, and names its unit."""
    from tqdm.auto import tqdm

    stream = kw.setdefault("file", sys.stderr)
    tty = _isatty(stream)
    kw.setdefault("leave", True)
    kw.setdefault("mininterval", 0.5 if tty else NON_TTY_INTERVAL_S)
    kw.setdefault("dynamic_ncols", tty)
    if not tty:
        kw.setdefault("ncols", 100)
        kw.setdefault("ascii", True)  # log files and CI viewers garble block characters
    kw.setdefault("disable", _disabled())
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return tqdm(iterable, desc=desc, total=total, **kw)


def note(text: str) -> None:
    """One progress line on stderr (written around any open bar, flushed at once), unless
    ``GLIA_PROGRESS=0``."""
    if _disabled():
        return
    from tqdm.auto import tqdm

    tqdm.write(text, file=sys.stderr)
    sys.stderr.flush()
