"""A confined process's own numba cache, seeded with the harness's compiled simulator.

Inside the sandbox the project is read-only, so numba cannot use its cache beside the
sources, and a candidate that builds on a compiled built-in (say, subclasses
``HeadRoomAdmission``) failed to import ("no locator available").  Numba's fallback, a
cache under ``$HOME``, would be shared by every confined process at level ``process``
(``HOME=/tmp``): one candidate could leave compiled code (pickles) for the next.  So each
confined process gets ``NUMBA_CACHE_DIR`` inside its own scratch directory, seeded with
copies of the cache files the harness itself wrote for the simulator's packages (so
nothing is compiled again); whatever it adds there dies with the scratch directory.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

CACHE_DIRNAME = ".numba-cache"
PACKAGES = ("sim_core",)


def _package_dirs(package: str) -> list[Path]:
    """Every directory of ``package`` (the package's own and its subpackages')."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    roots = [Path(p) for p in spec.submodule_search_locations]
    return [d for r in roots for d in (r, *r.rglob("*")) if d.is_dir()
            and d.name != "__pycache__"]


def private_cache(scratch: str | os.PathLike, packages=PACKAGES) -> str:
    """Create ``scratch``'s numba cache directory, seed it with the harness's cache files
    of ``packages`` and return its path (for ``NUMBA_CACHE_DIR``)."""
    from numba.core.caching import UserProvidedCacheLocator

    root = Path(scratch) / CACHE_DIRNAME
    root.mkdir(exist_ok=True)
    dirs = [root]
    for package in packages:
        for src in _package_dirs(package):
            cached = sorted((src / "__pycache__").glob("*.nb[ic]"))
            if not cached:
                continue
            # Where numba looks for this directory's functions under NUMBA_CACHE_DIR.
            sub = root / UserProvidedCacheLocator.get_suitable_cache_subpath(str(src / "x.py"))
            sub.mkdir(exist_ok=True)
            dirs.append(sub)
            for f in cached:
                shutil.copyfile(f, sub / f.name)
    for d in dirs:  # a process run as nobody adds its own files; the sticky bit keeps ours
        os.chmod(d, 0o1777)
    return str(root)


__all__ = ["private_cache", "CACHE_DIRNAME", "PACKAGES"]
