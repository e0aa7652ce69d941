"""Each confined process has its own numba cache, seeded with the harness's: a candidate
built on a compiled built-in runs in the sandbox, and no candidate can leave compiled code
(numba's cache holds pickles) for the next one."""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from glia_nb.evaluation.harness import Limits, evaluate
from glia_nb.evaluation.numba_cache import private_cache
from glia_nb.tasks import get_task


@pytest.fixture(scope="module")
def task():
    return get_task("routing-a10").replace(duration_s=30, eval_seeds=(0,))


def _eval(tmp_path, source: str, task, cls: str, level: str | None = None):
    path = tmp_path / f"{cls.lower()}_{time.monotonic_ns()}.py"
    path.write_text(source)
    return evaluate(f"{path}:{cls}", task, limits=Limits(isolation=level))


def test_the_harness_cache_is_copied_where_numba_looks(tmp_path, task):
    import sim_core.routers as R
    from numba.core.caching import UserProvidedCacheLocator

    assert evaluate("hra", task).ok  # compiles (and caches) the built-in's functions
    root = Path(private_cache(tmp_path))
    sub = root / UserProvidedCacheLocator.get_suitable_cache_subpath(R.__file__)
    ours = {f.name for f in (Path(R.__file__).parent / "__pycache__").glob("*.nb[ic]")}
    assert any(n.startswith("routers._headroom_route") for n in ours)
    assert ours <= {f.name for f in sub.iterdir()}
    for d in (root, sub):  # writable for a process run as nobody; sticky keeps the copies
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o1777


SUBCLASS = """
from sim_core.routers import HeadRoomAdmission


class MyHRA(HeadRoomAdmission):
    pass
"""


def test_a_subclass_of_a_compiled_builtin_scores_like_the_builtin(tmp_path, task):
    builtin = evaluate("hra", task)
    res = _eval(tmp_path, SUBCLASS, task, "MyHRA")
    assert res.ok and res.isolation != "in-process", res.one_line()
    assert res.score == builtin.score


POISON = """
import os

class Poison:
    def reset(self, info, rng):
        marks = [os.environ["NUMBA_CACHE_DIR"], os.path.expanduser("~/.cache/numba"), "/tmp"]
        for d in marks:
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "glia-poison.nbi"), "w") as fh:
                    fh.write("left for the next candidate")
            except OSError:
                pass

    def route(self, view):
        return [(int(k), 0) for k in view.queue]
"""

CHECK = """
import os

class Check:
    def reset(self, info, rng):
        cache = os.environ["NUMBA_CACHE_DIR"]
        if not cache.startswith(os.getcwd() + os.sep):
            raise RuntimeError(f"LEAK: the numba cache {cache} is not in this process's scratch")
        for base, _dirs, files in os.walk(cache):  # where this process's numba reads
            if "glia-poison.nbi" in files:
                raise RuntimeError(f"LEAK: an earlier candidate's file in {base}")

    def route(self, view):
        return [(int(k), 0) for k in view.queue]
"""


@pytest.mark.parametrize("level", [None, "process"])  # the best here, and the fallback
def test_no_candidate_leaves_compiled_code_for_the_next(tmp_path, task, level):
    first = _eval(tmp_path, POISON, task, "Poison", level)
    assert first.ok, first.one_line()
    second = _eval(tmp_path, CHECK, task, "Check", level)
    assert second.ok, second.one_line()
    assert second.score == first.score
