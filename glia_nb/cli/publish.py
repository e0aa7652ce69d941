"""``glia publish``: turn a study's journal into a case-study folder with a notebook."""
from __future__ import annotations

import json
import re
from pathlib import Path


def register(sub) -> None:
    """Add ``glia publish`` to the ``glia`` parser."""
    p = sub.add_parser("publish", help="turn a study (a session, a multi-context study or a "
                       "glia compare run) into a case-study folder with a notebook that replays "
                       "the research and re-checks its result")
    p.add_argument("dir", help="the study folder (a session holding journal.jsonl, or a folder "
                   "with context0/, context1/... or a glia compare output)")
    p.add_argument("--out", help="where the case study goes (default case_studies/<title or task>)")
    p.add_argument("--title", help="the case study's title")
    p.add_argument("--lineage-only", action="store_true",
                   help="publish only the policy files of the best design's lineage")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--execute", action="store_true",
                   help="run the notebook once so it is saved with its outputs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_publish)


def execute_notebook(folder: Path, timeout_s: int = 600) -> Path:
    """Run the case study's notebook in a fresh kernel in its own folder and save it with
    its outputs; returns the notebook's path. A failing cell raises."""
    try:
        import nbclient
    except ImportError:
        raise RuntimeError("--execute needs nbclient and ipykernel (pip install nbclient "
                           "ipykernel)") from None
    import nbformat

    from glia_nb.research.publish import NOTEBOOK

    path = Path(folder) / NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    return path


def cmd_publish(args) -> int:
    from glia_nb.research.publish import MANIFEST, NOTEBOOK, find_journals, publish_study

    src = Path(args.dir)
    find_journals(src)  # a clear one-line error before anything is written
    if args.out:
        out = Path(args.out)
    else:
        from glia_nb.research.report import session_records

        name = args.title or session_records(find_journals(src)[0])[0].get("task_name") or "study"
        out = Path("case_studies") / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "study")
    folder = publish_study(src, out, title=args.title, lineage_only=args.lineage_only,
                           overwrite=args.overwrite)
    if args.execute:
        execute_notebook(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    best = manifest.get("best") or {}
    doc = {"out": str(out), "notebook": str(out / NOTEBOOK), "contexts": len(manifest["contexts"]),
           "best": best, "executed": bool(args.execute)}
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"published {manifest['title']!r} to {out}/ ({doc['contexts']} context(s))")
    if best:
        print(f"best design: {best.get('name')} (context {best.get('context')}), "
              f"score {best.get('score')}")
    print(f"open {out / NOTEBOOK}; commit the folder and add a Binder badge (docs/publishing.md)")
    return 0
