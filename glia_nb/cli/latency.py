"""``glia latency import``: turn Vidur's operator profiles into a glia-nb latency table (JSON).

    glia latency import DIR --gpu a10 --model llama-3-8b --tp 1 [--all-reduce CSV] [--out FILE]

``DIR`` holds Vidur's ``mlp.csv`` (and optionally ``attention.csv`` and ``all_reduce.csv``);
the reading rules are in :mod:`sim_core.vidur_profiles`.  Without ``--out`` the table goes to
``<gpu>__<model>__tp<tp>.json`` in the current directory.  Warnings (a roofline fallback for a
missing file) go to stderr; the written table's provenance records them too.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path


def cmd_latency_import(args) -> int:
    """Read the profiles, write the table, print one line saying where and what; 0 on success.

    Bad input raises ValueError with one line naming the file (the ``glia`` entry point prints
    it as ``glia: error: ...``).
    """
    from sim_core.latency import LatencyTable, table_filename

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = LatencyTable.from_vidur(args.dir, gpu=args.gpu, model=args.model, tp=args.tp,
                                        all_reduce=getattr(args, "all_reduce", None))
    for w in caught:
        print(f"glia: warning: {w.message}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(table_filename(args.gpu, args.model, args.tp))
    table.save(out)
    blob = table.pack()
    from sim_core.latency import iteration_ms, prefill_attn_ms

    pf = iteration_ms(blob, 1024, 0, 0, prefill_attn_ms(blob, 1024, 1024))
    dec = iteration_ms(blob, 128, 128, 128 * 1024, 0.0)
    print(f"wrote {out}: {args.gpu}/{args.model}/tp{args.tp}, prefill of 1,024 tokens {pf:.1f} ms, "
          f"128 decodes at 1,024 context {dec:.1f} ms")
    return 0


def register(sub) -> None:
    """Add ``latency`` (with its ``import`` action) to an argparse subparsers object."""
    lat = sub.add_parser("latency", help="latency tables: import Vidur profiles")
    actions = lat.add_subparsers(dest="latency_action", required=True)
    imp = actions.add_parser("import", help="write a latency table (JSON) from Vidur's profile CSVs")
    imp.add_argument("dir", help="folder with Vidur's mlp.csv [attention.csv, all_reduce.csv]")
    imp.add_argument("--gpu", required=True, help="a10 or h100 (the roofline for missing parts)")
    imp.add_argument("--model", required=True, help="llama-3-8b, llama-3.3-70b-fp8, llama-2-7b, ...")
    imp.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    imp.add_argument("--all-reduce", dest="all_reduce",
                     help="all_reduce.csv when not in DIR (Vidur: network/<gpu>_dgx/)")
    imp.add_argument("--out", help="output JSON (default <gpu>__<model>__tp<tp>.json)")
    imp.set_defaults(func=cmd_latency_import)
