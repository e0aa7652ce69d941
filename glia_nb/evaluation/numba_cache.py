"""Where a confined process's numba keeps its cache: never where another one reads.

Inside the sandbox the project is read-only, so numba cannot use its cache beside the
sources, and a candidate that builds on a compiled built-in (say, subclasses
``HeadRoomAdmission``) failed to import ("no locator available").  Numba's fallback, a
cache under ``$HOME``, would be shared by every confined process at level ``process``
(``HOME=/tmp``), and the cache holds pickles: one candidate could leave code for the next.
So every confined process gets ``NUMBA_CACHE_DIR`` of its own:

* a policy process: ``.numba-cache`` in its fresh scratch directory, which the harness
  seeds (:func:`seeded_cache`) with copies of the cache files it wrote itself for the
  simulator's packages before the process starts, so nothing is compiled again; it goes
  with the scratch directory;
* the Researcher's shell: ``.numba-cache`` in the workspace (:data:`CACHE_DIRNAME`), which
  the harness never touches -- the shell's earlier commands wrote there, and copying into
  a directory untrusted code controls would follow its symbolic links.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

CACHE_DIRNAME = ".numba-cache"
PACKAGES = ("sim_core",)


def _source_dirs(package: str) -> list[Path]:
    """The directories holding ``package``'s modules (its own and its subpackages')."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    roots = [Path(p) for p in spec.submodule_search_locations]
    return [d for r in roots for d in (r, *r.rglob("*")) if d.is_dir()
            and d.name != "__pycache__"]


def seeded_cache(scratch: str | os.PathLike, owner: int | None = None,
                 packages=PACKAGES) -> str:
    """Create ``scratch/.numba-cache`` with copies of the harness's numba cache files of
    ``packages``, owned by ``owner`` (a uid) when given, and return its path.

    ``scratch`` must be a directory the harness has just created and no untrusted code has
    run in (the copies would follow links planted there): a policy's fresh scratch."""
    from numba.core.caching import UserProvidedCacheLocator

    root = Path(scratch) / CACHE_DIRNAME
    root.mkdir(mode=0o700)  # exclusive: a directory that exists already is refused
    made = [root]
    for package in packages:
        for src in _source_dirs(package):
            cached = sorted((src / "__pycache__").glob("*.nb[ic]"))
            if not cached:
                continue
            # Where numba looks for this directory's functions under NUMBA_CACHE_DIR.
            sub = root / UserProvidedCacheLocator.get_suitable_cache_subpath(str(src / "x.py"))
            sub.mkdir(mode=0o700)
            made.append(sub)
            for f in cached:
                shutil.copyfile(f, sub / f.name)
                made.append(sub / f.name)
    if owner is not None:  # a process that will run as ``owner`` adds and replaces entries
        for p in made:
            os.chown(p, owner, -1)
    return str(root)


__all__ = ["seeded_cache", "CACHE_DIRNAME", "PACKAGES"]
