"""benchmarks/kv_pressure.py: the probe measures what it says on a short run."""
import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "kv_pressure.py"


@pytest.fixture(scope="module")
def kv():
    spec = importlib.util.spec_from_file_location("kv_pressure", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hra_holds_requests_only_when_pools_are_full_and_llq_never_holds(kv):
    # Two replicas at 8 QPS are overloaded: HRA keeps requests back, LLQ routes them all.
    hra = kv.measure("hra", qps=8.0, replicas=2, duration=240.0, seed=0)
    llq = kv.measure("llq", qps=8.0, replicas=2, duration=240.0, seed=0)
    assert hra["held_share"] > 0.5 and hra["kv_use_when_held"] > 0.85
    assert llq["held_share"] == 0.0 and llq["kv_use_when_held"] != llq["kv_use_when_held"]  # NaN
    for r in (hra, llq):
        assert 0.0 < r["kv_use"] <= 1.0 and r["busy_gpu_hours"] > 0


def test_stacks_run_above_the_iteration_bound(kv):
    for stack in ("standard", "glia-stack"):
        r = kv.stack_iterations(stack, seed=0, duration=240.0)
        assert r["bound"] > 0 and r["iterations"] >= r["bound"] and r["busy_gpu_hours"] > 0
