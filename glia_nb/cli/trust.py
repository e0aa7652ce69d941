"""``glia doctor``: what confinement this machine supports and which isolation level
candidate code will get.  (The sandbox of the commands' policy files is
:func:`glia_nb.evaluation.simulate.sandboxed_policies`.)
"""
from __future__ import annotations

import json


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
    print("landlock         " + (f"ABI {d['landlock_abi']} (the fallback level's file allow-list)"
                                  if d["landlock_abi"] else "no (kernel before 5.13, or not Linux)"))
    print(f"isolation        {d['recorded_isolation']}"
          + ("" if d["isolation"] == "bwrap" else
             "  (weaker: no mount/network/PID namespaces; install bubblewrap)")
          + ("" if d["seccomp"] else "  (no seccomp filter: pip install pyseccomp, "
             "apt-get install libseccomp2)"))
    return 0


def register(sub) -> None:
    """Add ``glia doctor``."""
    d = sub.add_parser("doctor", help="what confinement this machine supports for candidate code")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=_cmd_doctor)
