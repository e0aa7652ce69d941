"""Shared helpers of the notebook builder scripts: cells, a stable notebook, a --check CLI."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BINDER = "https://mybinder.org/v2/gh/glia-nb/glia-nb/HEAD?urlpath=lab/tree/notebooks/{name}.ipynb"


def md(text: str):
    """A markdown cell."""
    return new_markdown_cell(text.strip("\n"))


def code(src: str, *tags: str):
    """A code cell; tags let the tests find cells."""
    cell = new_code_cell(src.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def build(name: str, cells, *, badge: bool = True) -> nbformat.NotebookNode:
    """A validated notebook with stable cell ids (regenerating it leaves no diff)."""
    head = []
    if badge:
        head = [md(f"[![Binder](https://mybinder.org/badge_logo.svg)]({BINDER.format(name=name)}) "
                   "*(Binder link uses the placeholder organisation `glia-nb`.)*")]
    nb = new_notebook(cells=head + [c.copy() for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"
    nbformat.validate(nb)
    return nb


def main(spec: dict, script: str, description: str, argv=None, *, badge: bool = True) -> int:
    """Write the notebooks of ``spec`` (name -> cells), or with --check fail if any differs."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--check", action="store_true", help="fail if a notebook differs from its source")
    ap.add_argument("--out", type=Path, default=NOTEBOOKS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, cells in spec.items():
        path = args.out / f"{name}.ipynb"
        text = nbformat.writes(build(name, cells, badge=badge)) + "\n"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
            continue
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if stale:
        print(f"out of date (run scripts/{script}):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0
