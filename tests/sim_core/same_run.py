"""Exact comparison of two simulations of the same inputs (fast paths against stepping)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from sim_core import state as S

# Engine switches and twin parameters: they differ by construction, not by outcome.
_SWITCH_SI = (S.S_FAST_FORWARD, S.S_SKIP_EMPTY, S.S_TWIN, S.S_TWIN_CALLS, S.S_RR_NEXT,
              S.S_HRA_SHORTEST, S.S_TWIN_KEY)
_SWITCH_SF = (S.SF_HRA_GROWTH, S.SF_HRA_SAFETY, S.SF_KEY_SECONDS_PER_TOKEN)
_FF_PF = (S.PF_FF_FIXED, S.PF_FF_TX, S.PF_FF_END, S.PF_FF_BUSY)


def _strip(st) -> dict:
    out = {name: getattr(st, name).copy() for name in ("rv", "rh", "rf", "tl")}
    out["pi"] = st.pi.copy()
    out["pf"] = np.delete(st.pf, _FF_PF, axis=0)
    si, sf = st.si.copy(), st.sf.copy()
    si[list(_SWITCH_SI)] = 0
    sf[list(_SWITCH_SF)] = 0.0
    out["si"], out["sf"] = si, sf
    return out


def assert_same_run(a, b) -> None:
    """Every state array bit for bit (NaN equal to NaN), the per-request table, the
    timeline and every summary field except the CPU and wall times."""
    sa, sb = _strip(a.state), _strip(b.state)
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=f"state.{name} differs")
    pd.testing.assert_frame_equal(a.requests, b.requests, check_exact=True)
    pd.testing.assert_frame_equal(a.timeline, b.timeline, check_exact=True)
    ka = {k: v for k, v in a.summary.items() if k not in ("cpu_s", "wall_s")}
    kb = {k: v for k, v in b.summary.items() if k not in ("cpu_s", "wall_s")}
    assert ka.keys() == kb.keys()
    for k in ka:
        assert ka[k] == kb[k] or (ka[k] != ka[k] and kb[k] != kb[k]), k
    assert a.autoscale_report == b.autoscale_report
