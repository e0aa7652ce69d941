"""Simulation results as pandas DataFrames, summary metrics and on-disk artifacts."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from sim_core import state as S
from sim_core.config import ClusterConfig

# The five parts a request's end-to-end time splits into (they sum to e2e exactly).
TIME_PARTS = ("global_queue_s", "replica_queue_s", "prefill_s", "decode_s", "lost_to_restarts_s")


@dataclass
class SimResult:
    """One simulation's outcome.  ``requests``, ``timeline`` and ``summary`` are computed
    lazily from the final state."""

    cluster: ClusterConfig
    state: S.SimState = field(repr=False)
    router: str
    seed: int
    latency_name: str
    cpu_s: float
    wall_s: float
    router_calls: int
    latency: object = field(default=None, repr=False)
    autoscaler: str | None = None
    # With an autoscaler: ``ticks``, ``capped_ticks`` (the autoscaler asked for more replicas
    # than the pool holds) and ``peak_replicas`` (see sim_core.autoscale.Scaler.report).
    autoscale_report: dict | None = None

    @cached_property
    def requests(self):
        """One row per completed request: times, tokens, restarts and the e2e split."""
        import pandas as pd

        st = self.state
        rv, rh, rf = st.rv, st.rh, st.rf
        idx = np.flatnonzero(rv[S.V_STATE] == S.ST_DONE)
        arr, routed = rf[S.F_ARRIVAL, idx], rf[S.F_ROUTED, idx]
        first_tok, done = rf[S.F_FIRST_TOKEN, idx], rf[S.F_COMPLETED, idx]
        start, pre_end = rf[S.F_ATTEMPT_START, idx], rf[S.F_ATTEMPT_PREFILL, idx]
        decode = rh[S.H_DECODE0, idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(decode > 1, (done - first_tok) / (decode - 1), np.nan)
        return pd.DataFrame({
            "request_id": idx,
            "arrived_at": arr,
            "routed_at": routed,
            "first_scheduled_at": rf[S.F_FIRST_SCHED, idx],
            "first_token_at": first_tok,
            "completed_at": done,
            "replica": rv[S.V_REPLICA, idx],
            "prompt_tokens": rv[S.V_PROMPT0, idx],
            "decode_tokens": decode,
            "final_prompt_tokens": rv[S.V_PROMPT, idx],
            "restarts": rv[S.V_RESTARTS, idx],
            "tokens_recomputed": rv[S.V_RECOMPUTED, idx],
            "e2e_s": done - arr,
            "ttft_s": first_tok - arr,
            "tpot_s": tpot,
            "global_queue_s": routed - arr,
            "replica_queue_s": rf[S.F_REPLICA_QUEUE, idx],
            "prefill_s": pre_end - start,
            "decode_s": done - pre_end,
            "lost_to_restarts_s": rf[S.F_LOST, idx],
        })

    @cached_property
    def timeline(self):
        """Replica state at every global event (empty if timelines were not recorded)."""
        import pandas as pd

        st = self.state
        k = int(st.si[S.S_TL_LEN])
        tl = st.tl[:, :k]
        df = pd.DataFrame({
            "time": tl[S.TL_TIME], "replica": tl[S.TL_REPLICA].astype(np.int64),
            "num_waiting": tl[S.TL_WAITING].astype(np.int64),
            "num_running": tl[S.TL_RUNNING].astype(np.int64),
            "allocated_blocks": tl[S.TL_ALLOC].astype(np.int64),
            "num_blocks": tl[S.TL_NUM_BLOCKS].astype(np.int64),
            "state": tl[S.TL_STATE].astype(np.int64)})
        df["memory_usage_percent"] = 100.0 * df["allocated_blocks"] / df["num_blocks"]
        return df

    @cached_property
    def summary(self) -> dict:
        """Headline metrics of this run (seconds; fractions in [0, 1])."""
        df = self.requests
        e2e = df["e2e_s"].to_numpy()
        st = self.state
        out = {
            "router": self.router, "seed": self.seed, "num_requests": int(len(df)),
            "mean_e2e_s": _f(e2e.mean()) if len(e2e) else float("nan"),
        }
        for p in (50, 90, 95, 99):
            out[f"p{p}_e2e_s"] = _f(np.percentile(e2e, p)) if len(e2e) else float("nan")
        ttft = df["ttft_s"].to_numpy()
        out["mean_ttft_s"] = _f(ttft.mean()) if len(ttft) else float("nan")
        out["p90_ttft_s"] = _f(np.percentile(ttft, 90)) if len(ttft) else float("nan")
        out["mean_tpot_s"] = _f(df["tpot_s"].mean())
        out["restart_fraction"] = _f((df["restarts"] > 0).mean()) if len(df) else 0.0
        out["total_restarts"] = int(df["restarts"].sum())
        out["tokens_recomputed"] = int(df["tokens_recomputed"].sum())
        span = (df["completed_at"].max() - df["arrived_at"].min()) if len(df) else 0.0
        out["makespan_s"] = _f(span)
        out["throughput_qps"] = _f(len(df) / span) if span > 0 else 0.0
        for part in TIME_PARTS:
            out[f"mean_{part}"] = _f(df[part].mean()) if len(df) else 0.0
        out["iterations"] = int(st.pi[S.P_ITERATIONS].sum())
        out["preemptions"] = int(st.pi[S.P_PREEMPTIONS].sum())
        out["busy_fraction"] = _f(st.pf[S.PF_BUSY_TIME].sum() / (span * self.cluster.num_replicas)) \
            if span > 0 else 0.0
        out["gpu_hours"] = self.gpu_hours
        # The part of the GPU-hours spent running iterations; the rest is idle, cold-start
        # or draining time that only the autoscaler can save.
        out["busy_gpu_hours"] = float(st.pf[S.PF_BUSY_TIME].sum() * self.cluster.replica.tp / 3600)
        out.update(self.lifecycle_gpu_hours)
        end = float(st.sf[S.SF_NOW])
        out["mean_replicas"] = (self.gpu_hours * 3600 / (self.cluster.replica.tp * end)) \
            if end > 0 else 0.0
        if self.autoscaler is not None and len(df):
            sd = self.slowdown.to_numpy()
            out["autoscaler"] = self.autoscaler
            out["mean_slowdown"] = _f(sd.mean())
            out["p95_slowdown"] = _f(np.percentile(sd, 95))
        if self.autoscale_report is not None:
            out.update(self.autoscale_report)
        out["cpu_s"] = self.cpu_s
        out["wall_s"] = self.wall_s
        return out

    def _state_gpu_hours(self, total_col: int, since_col: int, in_state) -> float:
        """GPU-hours of one kind of period: the finished ones summed in ``total_col``, plus,
        for the replicas ``in_state`` now, the open one since ``since_col`` up to the end."""
        st = self.state
        end = float(st.sf[S.SF_NOW])
        t = st.pf[total_col].sum() + (end - st.pf[since_col][in_state]).sum()
        return float(t * self.cluster.replica.tp / 3600.0)

    @cached_property
    def gpu_hours(self) -> float:
        """GPU-hours used: every replica-second of life (cold starts included) times TP,
        up to the last event of the simulation."""
        state = self.state.pi[S.P_STATE]
        return self._state_gpu_hours(S.PF_UP_TIME, S.PF_UP_SINCE, state != S.R_STOPPED)

    @cached_property
    def lifecycle_gpu_hours(self) -> dict:
        """The GPU-hours paid while replicas were starting (cold starts) and draining
        (accepting nothing, finishing what they hold); the rest of :attr:`gpu_hours` was
        paid while active.  Both are zero without autoscaling."""
        state = self.state.pi[S.P_STATE]
        return {"starting_gpu_hours": self._state_gpu_hours(
                    S.PF_START_TIME, S.PF_UP_SINCE, state == S.R_STARTING),
                "draining_gpu_hours": self._state_gpu_hours(
                    S.PF_DRAIN_TIME, S.PF_DRAIN_SINCE, state == S.R_DRAINING)}

    @cached_property
    def slowdown(self):
        """Per request: e2e time divided by its e2e time alone on an idle replica."""
        import pandas as pd

        from sim_core.latency import load_latency_table
        from sim_core.ideal import ideal_e2e

        rc = self.cluster.replica
        table = self.latency or load_latency_table(rc.gpu, rc.model, rc.tp)
        df = self.requests
        ideal = ideal_e2e(table.pack(), df["prompt_tokens"].to_numpy(np.int64),
                          df["decode_tokens"].to_numpy(np.int64), rc.chunk_size)
        return pd.Series(df["e2e_s"].to_numpy() / ideal, index=df.index, name="slowdown")

    def vidur_request_metrics(self):
        """Per-request metrics under Vidur's ``request_metrics.csv`` column names."""
        import pandas as pd

        df = self.requests
        return pd.DataFrame({
            "Request Id": df["request_id"],
            "request_e2e_time": df["e2e_s"],
            "request_e2e_time_normalized": df["e2e_s"] / df["decode_tokens"],
            "request_scheduling_delay": df["first_scheduled_at"] - df["arrived_at"],
            "request_execution_plus_preemption_time": df["completed_at"] - df["first_scheduled_at"],
            "prefill_e2e_time": df["ttft_s"],
            "decode_time_execution_plus_preemption_normalized":
                (df["completed_at"] - df["first_token_at"]) / df["decode_tokens"],
            "request_num_prefill_tokens": df["prompt_tokens"],
            "request_num_decode_tokens": df["decode_tokens"],
            "request_pd_ratio": df["prompt_tokens"] / df["decode_tokens"],
            "request_num_restarts": df["restarts"],
            "arrived_at": df["arrived_at"],
            "completed_at": df["completed_at"],
            "replica_id": df["replica"],
        })

    def write_artifacts(self, out_dir) -> Path:
        """Write ``request_metrics.csv`` (Vidur's columns), ``gs_log.csv`` (replica state
        at each global scheduling event), ``reqs_log.csv`` (where each request went),
        ``requests.csv`` (our full per-request table) and ``config.json``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.vidur_request_metrics().to_csv(out / "request_metrics.csv", index=False)
        tl = self.timeline.rename(columns={
            "replica": "replica_id", "num_waiting": "num_pending_requests",
            "num_running": "num_active_requests", "allocated_blocks": "num_allocated_blocks"})
        tl.to_csv(out / "gs_log.csv", index=False)
        df = self.requests.sort_values(["routed_at", "request_id"])
        df[["routed_at", "replica", "request_id", "prompt_tokens", "decode_tokens"]].rename(
            columns={"routed_at": "time", "replica": "replica_id",
                     "prompt_tokens": "num_prefill_tokens", "decode_tokens": "num_decode_tokens"},
        ).to_csv(out / "reqs_log.csv", index=False)
        self.requests.to_csv(out / "requests.csv", index=False)
        cfg = {"cluster": asdict(self.cluster), "router": self.router, "seed": self.seed,
               "latency_table": self.latency_name, "summary": self.summary}
        (out / "config.json").write_text(json.dumps(cfg, indent=2, default=_f))
        return out


def _f(x) -> float:
    return float(x)


def bootstrap_ci(values, confidence: float = 0.90, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean (``scipy.stats.bootstrap``); a single value
    gives a zero-width interval."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return (float("nan"), float("nan"))
    if len(v) == 1 or np.all(v == v[0]):
        return (float(v[0]), float(v[0]))
    res = stats.bootstrap((v,), np.mean, confidence_level=confidence, method="percentile",
                          n_resamples=2000, rng=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def summarize_seeds(results: list[SimResult], confidence: float = 0.90) -> dict:
    """Aggregate runs over seeds: the mean of per-seed means and its bootstrap CI."""
    per_seed = [r.summary for r in results]
    means = [s["mean_e2e_s"] for s in per_seed]
    lo, hi = bootstrap_ci(means, confidence)
    return {
        "mean_e2e_s": float(np.mean(means)),
        "mean_e2e_ci90_s": [lo, hi],
        "restart_fraction": float(np.mean([s["restart_fraction"] for s in per_seed])),
        "mean_ttft_s": float(np.mean([s["mean_ttft_s"] for s in per_seed])),
        "p90_ttft_s": float(np.mean([s["p90_ttft_s"] for s in per_seed])),
        "seeds": per_seed,
    }
