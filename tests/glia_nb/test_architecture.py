"""The package layout holds: no import cycles (function-local imports included), imports flow
one way between the layers, and no module grows past the size we keep them at."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sim_core", "workloads", "glia_nb")
# Left depends on nothing to its right (llm is used by research and baselines only).
LAYER_ORDER = ("sim_core", "workloads", "glia_nb.progress", "glia_nb.text", "glia_nb.jsonable", "glia_nb.tasks", "glia_nb.evaluation",
               "glia_nb.llm", "glia_nb.research", "glia_nb.baselines", "glia_nb.plots",
               "glia_nb.widgets", "glia_nb.cli")
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module ``name`` imports, at any depth of the file (local imports too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names]
            # `from pkg import sub` depends on the submodule; `from pkg import name` on pkg.
            targets = subs + ([base] if any(s not in known for s in subs) else [])
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def _layer(module: str) -> int | None:
    best = None
    for i, prefix in enumerate(LAYER_ORDER):
        if module == prefix or module.startswith(prefix + "."):
            best = i
    return best


def test_imports_flow_one_way():
    wrong = []
    for m, deps in _graph().items():
        lm = _layer(m)
        for d in deps:
            ld = _layer(d)
            if lm is None or ld is None:
                continue
            if ld > lm:
                wrong.append(f"{m} -> {d}")
    assert wrong == []


def test_llm_is_used_by_research_and_baselines_only():
    users = {m for m, deps in _graph().items()
             if any(d == "glia_nb.llm" or d.startswith("glia_nb.llm.") for d in deps)
             and not m.startswith("glia_nb.llm")}
    allowed = ("glia_nb.research", "glia_nb.baselines", "glia_nb.widgets", "glia_nb.cli")
    assert sorted(u for u in users if not u.startswith(allowed)) == []


@pytest.mark.parametrize("pkg", PACKAGES)
def test_modules_stay_small(pkg):
    big = {str(p.relative_to(ROOT)): n for m, p in _modules().items() if m.split(".")[0] == pkg
           for n in [len(p.read_text().splitlines())] if n > MAX_LINES}
    assert big == {}


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
