"""``glia doctor`` and the sandbox for ``glia simulate``'s policy files.

``glia doctor`` prints what confinement this machine supports and which isolation level
candidate code will get.  :func:`sandboxed_policies` swaps every ``file.py:Class`` policy of
a ``glia simulate`` run for a confined policy process (``--trusted`` skips it).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path


def _cmd_doctor(args) -> int:
    from glia_nb.evaluation.confine import doctor

    d = doctor()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"platform         {d['platform']}  (python {d['python']})")
    print(f"bubblewrap       {d['bwrap'] or 'not installed'}")
    print(f"namespaces       {'usable' if d['bwrap_usable'] else 'NOT usable'}: {d['bwrap_detail']}")
    print(f"sealed memfd     {'yes' if d['memfd_seals'] else 'no (a private temporary file instead)'}")
    print(f"running as root  {'yes (confined code runs as uid 65534)' if d['running_as_root'] else 'no'}")
    print(f"seccomp filter   {'yes' if d['seccomp'] else 'NO'}: {d['seccomp_detail']}")
    print(f"isolation        {d['recorded_isolation']}"
          + ("" if d["isolation"] == "bwrap" else
             "  (weaker: no mount/network/PID namespaces; install bubblewrap)")
          + ("" if d["seccomp"] else "  (no seccomp filter: pip install pyseccomp, "
             "apt-get install libseccomp2)"))
    return 0


def is_policy_file(spec) -> bool:
    """True for a ``path/to/file.py:Name`` spec (untrusted code), False for registry names."""
    head, sep, _tail = str(spec or "").rpartition(":")
    return bool(sep) and head.endswith(".py")


@contextlib.contextmanager
def sandboxed_policies(specs: dict, cluster, *, wall_s: float = 3600.0, log_dir=None):
    """Yield ``(policies, start_seed)``: ``specs`` (``{"router": ..., "batch_policy": ...,
    "autoscaler": ...}``) with each policy file replaced by a confined policy process, and
    ``start_seed(seed)`` returning the ``share_state`` hook of that seed's simulation (None
    when nothing is sandboxed).  Every process is killed on exit."""
    from glia_nb.evaluation.confine import HardLimits, choose_isolation
    from glia_nb.evaluation.proxy import PolicyProcess, share_with
    from sim_core.facade import cluster_info
    from sim_core.routers import RouterLoadError

    procs, out = [], dict(specs)
    try:
        level = None
        for layer, spec in specs.items():
            if not is_policy_file(spec):
                continue
            level = level or choose_isolation()
            head, _, name = str(spec).rpartition(":")
            try:
                source = Path(head).read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RouterLoadError(f"policy file {head} cannot be read as UTF-8 text: {exc}") from exc
            log = Path(log_dir) / f"policy_{layer}.log" if log_dir else Path(os.devnull)
            p = PolicyProcess(level=level, limits=HardLimits(cpu_s=int(wall_s) + 30),
                              deadline=time.monotonic() + wall_s, log_path=str(log))
            procs.append(p)
            p.load(source, head, name, layer)
            out[layer] = p

        def start_seed(seed: int):
            if not procs:
                return None
            for p in procs:
                p.for_seed(seed, cluster_info(cluster))
            return share_with(procs)
        yield out, start_seed
    finally:
        for p in procs:
            p.close()


def register(sub) -> None:
    """Add ``glia doctor``."""
    d = sub.add_parser("doctor", help="what confinement this machine supports for candidate code")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=_cmd_doctor)
