"""Stack experiments: SLO throughput, sweeps, autoscaler grids, stack comparison, CLI."""
import json
import re

import pytest

from glia_nb.cli.main import main
from glia_nb.evaluation.simulate import evaluate_config
from glia_nb.evaluation.stack import (OFF_THE_SHELF, STACKS, compare_stacks, concurrency_sweep,
                                      grid_specs, off_the_shelf_autoscaler,
                                      peak_decode_throughput, slo_throughput, sweep_bar,
                                      tune_autoscaler)
from workloads import get_scenario


def pts(*rows):
    return [{"users": u, "throughput_qps": q, "p90_ttft_s": t} for u, q, t in rows]


def test_slo_throughput_interpolates_the_crossing():
    doc = slo_throughput(pts((25, 10.0, 0.5), (50, 20.0, 1.0), (100, 24.0, 2.0)), limit=1.5)
    assert doc["max_compliant_qps"] == 20.0 and doc["max_compliant_users"] == 50
    assert doc["slo_qps"] == pytest.approx(22.0)  # halfway from 1.0 s to 2.0 s
    assert slo_throughput(pts((25, 10.0, 2.0)))["slo_qps"] is None
    assert slo_throughput(pts((25, 10.0, 0.2), (50, 12.0, 0.3)))["slo_qps"] == 12.0


def test_sweep_bar_finds_meets_where_other_violates():
    curves = {"a": {"points": pts((1, 20.0, 1.2), (2, 24.0, 1.4))},
              "b": {"points": pts((1, 20.0, 1.3), (2, 23.5, 1.9))}}
    bar = sweep_bar(curves, 1.5)
    assert [(b["meets"], b["violates"], b["users_meets"]) for b in bar] == [("a", "b", 2)]


def test_get_scenario_varies_users_and_keeps_pool_rate():
    base = get_scenario("routing-h100-prefill")
    sc = get_scenario("routing-h100-prefill", users=50, duration_s=60)
    assert sc.workload.closed_loop_users == 50 and sc.duration_s == 60
    rate = (base.workload.pool_size - 200) / base.duration_s
    assert sc.workload.pool_size == 50 + int(round(rate * 60))
    with pytest.raises(ValueError, match="not a closed loop"):
        get_scenario("routing-a10", users=10)


def test_grid_specs():
    specs = grid_specs("throughput", {"high": (400,), "low_ratio": (0.5,), "cooldown_s": (30,)})
    assert specs == ["throughput:high=400,cooldown_s=30,low=200"]
    assert len(grid_specs("proportional", {"target": (10, 20), "down_delay_s": (60,)})) == 2


def test_tuning_needs_every_seed_within_the_bound_and_shows_progress(capsys, monkeypatch):
    monkeypatch.setenv("GLIA_PROGRESS", "1")
    grid = {"high": (600, 900), "low_ratio": (0.7,), "cooldown_s": (30,)}
    t = tune_autoscaler("autoscale-a10", STACKS["standard"], grid=grid, seeds=2,
                        duration_s=120, progress=True)
    assert len(t["grid"]) == 2
    for r in t["grid"]:
        assert r["p95_slowdown_worst_seed"] >= r["p95_slowdown"]
        assert r["feasible"] == (r["p95_slowdown_worst_seed"] <= 5.0 and not r["capped_ticks"])
    assert "tuning throughput" in capsys.readouterr().err


def test_concurrency_sweep_short():
    doc = concurrency_sweep("routing-h100-prefill", "least_prefill", (10, 40), seeds=1,
                            duration_s=30)
    assert [p["users"] for p in doc["points"]] == [10, 40]
    q = [p["throughput_qps"] for p in doc["points"]]
    assert q[1] > q[0] > 0                      # more users, more throughput
    assert doc["points"][1]["p90_ttft_s"] >= doc["points"][0]["p90_ttft_s"]


def test_evaluate_config_with_autoscaler_reports_cost():
    agg = evaluate_config("autoscale-a10", router="llq", autoscaler="proportional", seeds=1,
                          duration_s=120)
    assert agg["gpu_hours"] > 0 and agg["p95_slowdown"] >= 1.0
    assert 1.0 <= agg["mean_replicas"] <= agg["peak_replicas_worst_seed"] <= 32
    assert agg["capped_ticks_worst_seed"] == 0


def test_a_pool_too_small_for_the_autoscaler_is_flagged(capsys, monkeypatch):
    # Three A10s cannot carry 7.5-22.5 QPS: the throughput autoscaler asks for more at
    # most ticks, so the stack's GPU-hours measure the cap.  The row, the document and the
    # CLI say so, and tuning refuses such settings.
    import glia_nb.evaluation.stack as stack_mod
    from workloads.scenarios import autoscale_a10_scenario

    small = autoscale_a10_scenario(max_replicas=3, initial_replicas=3)
    doc = compare_stacks(small, stacks=("standard",), seeds=1, duration_s=120)
    row = doc["stacks"]["standard"]
    assert row["capped_ticks"] > 0 and row["peak_replicas"] == 3
    assert doc["capped_stacks"] == ["standard"] and doc["pool_replicas"] == 3
    grid = {"high": (680,), "low_ratio": (0.8,), "cooldown_s": (20,)}
    t = tune_autoscaler(small, STACKS["standard"], grid=grid, seeds=1, duration_s=120)
    assert t["grid"][0]["capped_ticks"] > 0 and t["best"] is None
    real = stack_mod.compare_stacks
    monkeypatch.setattr(stack_mod, "compare_stacks",
                        lambda _scenario, **kw: real(small, **kw))
    assert main(["stack", "--stacks", "standard", "--seeds", "1", "--duration", "120"]) == 0
    out = capsys.readouterr().out
    assert "CAPPED: standard asked for more than the pool's 3 replicas" in out


def test_off_the_shelf_thresholds_scale_out_at_a_share_of_the_peak():
    assert off_the_shelf_autoscaler(700.0) == "throughput:high=490,low=392,cooldown_s=20"
    assert off_the_shelf_autoscaler(1000.0, 0.5, low_ratio=0.6, cooldown_s=45) == \
        "throughput:high=500,low=300,cooldown_s=45"
    for bad in ((0.0,), (700.0, 1.2), (700.0, 0.0)):
        with pytest.raises(ValueError):
            off_the_shelf_autoscaler(*bad)


def test_simulate_text_flags_an_autoscaler_the_pool_held_back(tmp_path, capsys):
    f = tmp_path / "greedy.py"
    f.write_text("class AskTooMany:\n"
                 "    def reset(self, info, rng):\n        pass\n\n"
                 "    def decide(self, stats):\n        return 1000\n")
    assert main(["simulate", "--scenario", "autoscale-a10", "--autoscaler",
                 f"{f}:AskTooMany", "--seeds", "1", "--duration", "60"]) == 0
    out = capsys.readouterr().out
    assert "(32 at the peak)" in out and "CAPPED: the autoscaler asked for more" in out


def test_load_test_reads_the_saturated_plateau():
    short = dict(replicas=2, duration_s=360, warmup_s=120, seeds=(0,))
    llq = peak_decode_throughput(router="llq", batch_policy="fifo", **short)
    hra = peak_decode_throughput(router="hra", batch_policy="spf", **short)
    # Head-room admission keeps saturated pools out of recompute thrash: more tokens/s.
    assert 300 < llq["tokens_per_s"] < hra["tokens_per_s"] < 2000
    with pytest.raises(ValueError, match="saturated"):
        peak_decode_throughput(qps_per_replica=0.3, **short)


def test_h100_bar_hra_violates_where_ttft_aware_meets():
    # The routing-h100-prefill bar on 3 seeds: at 300 users HRA (as tuned for routing-a10)
    # exceeds P90 TTFT 1.5 s, while least_prefill stays within it at a throughput at least
    # as high as HRA's.
    curves = {r: concurrency_sweep("routing-h100-prefill", r, (300,), seeds=3)
              for r in ("hra", "least_prefill")}
    hra, lp = curves["hra"]["points"][0], curves["least_prefill"]["points"][0]
    assert hra["p90_ttft_s"] > 1.5 >= lp["p90_ttft_s"]
    assert lp["throughput_qps"] >= 0.99 * hra["throughput_qps"]
    assert any(b["meets"] == "least_prefill" and b["violates"] == "hra"
               for b in sweep_bar(curves))


def test_cli_sweep_and_simulate_flags(capsys):
    assert main(["simulate", "--scenario", "routing-h100-prefill", "--router", "llq",
                 "--sweep-users", "10,20", "--seeds", "1", "--duration", "20", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["users"] for p in doc["points"]] == [10, 20] and "slo_qps" in doc
    assert main(["simulate", "--scenario", "autoscale-a10", "--router", "llq",
                 "--autoscaler", "proportional:target=20", "--batch-policy", "spf",
                 "--seeds", "1", "--duration", "60", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["autoscaler"] == "proportional:target=20" and doc["batch_policy"] == "spf"
    assert doc["gpu_hours"] > 0 and "p95_slowdown" in doc["seeds"][0]
    # Four replicas at t=0 and a target of 20 per instance: it scales up (60 s cold starts).
    assert 0 < doc["starting_gpu_hours"] < doc["gpu_hours"]
    assert main(["simulate", "--scenario", "autoscale-a10", "--router", "llq",
                 "--autoscaler", "proportional:target=20", "--seeds", "1", "--duration", "60"]) == 0
    assert re.search(r"GPU-hours \(cold starts \d+%, draining \d+%\)", capsys.readouterr().out)
    assert main(["sweep", "--routers", "llq", "least_prefill", "--users", "10",
                 "--seeds", "1", "--duration", "20", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["curves"]) == {"llq", "least_prefill"}
    assert main(["simulate", "--sweep-users", "a,b", "--scenario", "routing-h100-prefill"]) == 2


def test_cli_stack_short(capsys):
    assert main(["stack", "--stacks", "standard,glia-stack", "--seeds", "1",
                 "--duration", "120", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["stacks"]) == {"standard", "glia-stack"}
    assert doc["stacks"]["glia-stack"]["autoscaler"] == STACKS["glia-stack"].autoscaler
    assert "whole_stack_reduction" in doc
    assert main(["stack", "--stacks", "nope"]) == 2


def test_cli_stack_off_the_shelf_row(capsys):
    assert main(["stack", "--stacks", f"{OFF_THE_SHELF},standard,glia-autoscaler", "--seeds", "1",
                 "--duration", "120", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ots = doc["off_the_shelf"]
    row = doc["stacks"][OFF_THE_SHELF]
    assert row["autoscaler"] == ots["autoscaler"] == \
        off_the_shelf_autoscaler(ots["peak_decode_tokens_per_s"])
    assert row["router"] == STACKS["standard"].router and row["gpu_hours_vs_off_the_shelf"] == 0
    alone = doc["stacks"]["glia-autoscaler"]
    assert doc["autoscaler_alone_reduction_vs_off_the_shelf"] == \
        pytest.approx(1 - alone["gpu_hours"] / row["gpu_hours"])
    assert "whole_stack_reduction_vs_off_the_shelf" not in doc    # glia-stack not asked for


def test_tuning_listing_is_cheapest_first_and_marks_the_choice(capsys):
    from glia_nb.cli.stack import _print_tuning

    rows = [{"autoscaler": "proportional:target=70", "gpu_hours": 4.2,
             "p95_slowdown_worst_seed": 9.0, "feasible": False},
            {"autoscaler": "proportional:target=30", "gpu_hours": 5.0,
             "p95_slowdown_worst_seed": 3.0, "feasible": True},
            {"autoscaler": "proportional:target=50", "gpu_hours": 4.5,
             "p95_slowdown_worst_seed": 4.5, "feasible": True},
            {"autoscaler": "proportional:target=60", "gpu_hours": 4.4,
             "p95_slowdown_worst_seed": 4.8, "feasible": False}]
    _print_tuning("glia-stack", {"family": "proportional", "limit": 5.0, "grid": rows,
                                 "best": rows[2]})
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("tuning glia-stack (proportional")
    assert [ln[3:].split()[0] for ln in lines[1:]] == \
        ["proportional:target=70", "proportional:target=60", "proportional:target=50",
         "proportional:target=30"]
    assert lines[1].endswith("violates") and lines[2].endswith("capped")   # within the bound
    assert lines[3].startswith(" *") and not lines[4].startswith(" *")
