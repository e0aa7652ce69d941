"""The compiled engine and a pure-Python run of the same code agree exactly."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

SCRIPT = """
import sys
import numpy as np
from sim_core import simulate
from sim_core.config import ClusterConfig
from tests.conftest import linear_table, make_trace
from workloads import get_scenario
sc = get_scenario("routing-a10")
tr = sc.workload.trace(40.0, 3)
cl = ClusterConfig(num_replicas=2).with_replica(num_blocks=400)
for router in ("llq", "hra"):
    res = simulate(cl, tr, router, seed=3)
    res.requests.to_csv(f"{sys.argv[1]}/{router}.csv", index=False, float_format="%.17g")
small = ClusterConfig(num_replicas=1).with_replica(num_blocks=3, watermark_fraction=0.0,
                                                    scheduler="vllm")
res = simulate(small, make_trace([0, 0, 0.01], [16, 16, 8], [20, 20, 5]), "llq",
               latency=linear_table())
res.requests.to_csv(f"{sys.argv[1]}/vllm.csv", index=False, float_format="%.17g")
"""


def _run(tmp: Path, disable_jit: bool) -> Path:
    out = tmp / ("py" if disable_jit else "jit")
    out.mkdir()
    env = dict(os.environ, NUMBA_DISABLE_JIT="1" if disable_jit else "0")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True, env=env, cwd=root,
                   timeout=600)
    return out


def test_compiled_and_python_runs_agree(tmp_path):
    jit, py = _run(tmp_path, False), _run(tmp_path, True)
    for name in ("llq.csv", "hra.csv", "vllm.csv"):
        a, b = pd.read_csv(jit / name), pd.read_csv(py / name)
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b, check_exact=True)
