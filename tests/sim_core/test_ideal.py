"""The ideal-schedule figures: time alone on an idle replica, the iteration bound."""
import numpy as np
from pytest import approx

from sim_core import simulate
from sim_core.config import ClusterConfig
from sim_core.ideal import min_iterations
from tests.conftest import linear_table, make_trace


def test_min_iterations_by_hand():
    # p=10, d=5: decode iterations 1..4 hold 11, 12, 13, 14 tokens = 50 token-iterations;
    # a 2-block pool of 16 tokens holds 32 per iteration.
    assert min_iterations([10], [5], num_blocks=2, block_size=16) == approx(50 / 32)
    # A single-token answer comes from the prefill: no decode iteration at all.
    assert min_iterations([100, 7], [1, 1], num_blocks=1, block_size=16) == 0.0
    # Requests add up.
    assert min_iterations([10, 10], [5, 5], 2, 16) == approx(100 / 32)


def test_a_memory_bound_run_stays_above_the_bound_and_near_it():
    # Ten identical requests that together need ten times a small pool: the engine has to
    # run them a few at a time, so its iterations are close to the bound but not below.
    tr = make_trace(np.zeros(10), [40] * 10, [40] * 10)
    cl = ClusterConfig(num_replicas=1).with_replica(num_blocks=16, block_size=16,
                                                    watermark_fraction=0.0)
    res = simulate(cl, tr, "llq", latency=linear_table())
    bound = min_iterations(tr.prompt_tokens, tr.decode_tokens, 16, 16)
    assert bound <= res.summary["iterations"] <= 2.0 * bound
