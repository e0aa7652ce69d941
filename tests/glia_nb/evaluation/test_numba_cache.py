"""Each confined process has its own numba cache: a policy process's is seeded with the
harness's, so a candidate built on a compiled built-in runs in the sandbox; no candidate can
leave compiled code (numba's cache holds pickles) for the next; and the harness never writes
into the shell's, which untrusted commands control."""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from glia_nb.evaluation.confine import choose_isolation
from glia_nb.evaluation.harness import Limits, evaluate
from glia_nb.evaluation.numba_cache import CACHE_DIRNAME, seeded_cache
from glia_nb.research.shell import run_confined
from glia_nb.research.workspace import Workspace
from glia_nb.tasks import get_task

LEVELS = ["process"] + (["bwrap"] if choose_isolation(warn=False) == "bwrap" else [])


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
    root = Path(seeded_cache(tmp_path))
    sub = root / UserProvidedCacheLocator.get_suitable_cache_subpath(R.__file__)
    ours = {f.name for f in (Path(R.__file__).parent / "__pycache__").glob("*.nb[ic]")}
    assert any(n.startswith("routers._headroom_route") for n in ours)
    assert ours <= {f.name for f in sub.iterdir()}
    for d in (root, sub):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    with pytest.raises(FileExistsError):  # never into a directory that is there already
        seeded_cache(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_cache_made_for_nobody_is_nobodys(tmp_path):
    root = Path(seeded_cache(tmp_path, owner=65534))
    assert {p.stat().st_uid for p in (root, *root.rglob("*"))} == {65534}


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


# Where this process's numba reads and writes the compiled HRA helper.
WHERE = """
import os
import sim_core.routers as R

def cache_dir():
    R._headroom_route.enable_caching()
    return R._headroom_route._cache._cache_path
"""

POISON = WHERE + """
class Poison:
    def reset(self, info, rng):
        with open(os.path.join(cache_dir(), "glia-poison.nbi"), "w") as fh:
            fh.write("left for the next candidate")

    def route(self, view):
        return [(int(k), 0) for k in view.queue]
"""

CHECK = WHERE + """
class Check:
    def reset(self, info, rng):
        where = os.path.realpath(cache_dir())
        if not where.startswith(os.path.realpath(os.getcwd()) + os.sep):
            raise RuntimeError(f"LEAK: numba's cache {where} is not in this process's scratch")
        if "glia-poison.nbi" in os.listdir(where):
            raise RuntimeError(f"LEAK: an earlier candidate's file in {where}")

    def route(self, view):
        return [(int(k), 0) for k in view.queue]
"""


@pytest.mark.parametrize("level", LEVELS)
def test_no_candidate_leaves_compiled_code_for_the_next(tmp_path, task, level):
    first = _eval(tmp_path, POISON, task, "Poison", level)
    assert first.ok, first.one_line()
    second = _eval(tmp_path, CHECK, task, "Check", level)
    assert second.ok, second.one_line()
    assert second.score == first.score


@pytest.mark.parametrize("level", LEVELS)
def test_links_planted_in_the_shells_cache_reach_nothing(tmp_path, level):
    """A shell command plants links where numba's cache would go; the next command's set-up
    writes nothing through them (the harness never writes into the shell's cache)."""
    ws = Workspace.create(tmp_path, get_task("routing-a10"), "s1")
    victim_dir, victim = tmp_path / "victim_dir", tmp_path / "victim.txt"
    victim_dir.mkdir(mode=0o755)
    victim.write_text("keep me")
    cache = Path(ws.path) / CACHE_DIRNAME
    import sim_core.routers as R
    from numba.core.caching import UserProvidedCacheLocator

    sub = UserProvidedCacheLocator.get_suitable_cache_subpath(R.__file__)
    plant = (f"mkdir -p {cache} && ln -s {victim_dir} {cache / sub} && "
             f"ln -s {victim} {cache / 'engine.advance-222.py311.1.nbc'} && echo planted")
    text, rc, _t, _n = run_confined(plant, ws.path, 60, 8000, level)
    assert rc == 0 and "planted" in text, text
    text, rc, _t, _n = run_confined("echo next", ws.path, 60, 8000, level)
    assert rc == 0, text
    assert stat.S_IMODE(victim_dir.stat().st_mode) == 0o755 and not any(victim_dir.iterdir())
    assert victim.read_text() == "keep me"
