"""Where runs go: one folder for every study, comparison and notebook run.

``glia study``, ``glia compare`` and the case-study notebooks write under :func:`runs_dir`:
``$GLIA_RUNS`` when set, else ``glia_runs/`` at the working root, which is the nearest folder
at or above the current directory holding a ``pyproject.toml`` (the repository, also when a
notebook runs from ``notebooks/``), or the current directory when there is none. A relative
``$GLIA_RUNS`` is taken from that root too. Nothing is created here.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["RUNS_ENV", "runs_dir", "working_root"]

RUNS_ENV = "GLIA_RUNS"


def working_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the current directory) with a
    ``pyproject.toml``, else ``start`` itself."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def runs_dir(start: str | os.PathLike | None = None) -> Path:
    """The folder runs go to (see the module docstring)."""
    root = working_root(start)
    env = os.environ.get(RUNS_ENV, "").strip()
    return (root / env).resolve() if env else root / "glia_runs"
