"""sim_core — a numba discrete-event simulator of an LLM-serving GPU cluster.

Import what you need from the submodules or from here::

    from sim_core import simulate, ClusterConfig, ReplicaConfig
"""
from sim_core.config import ClusterConfig, ReplicaConfig, kv_blocks_from_memory

__all__ = ["simulate", "SimResult", "ClusterConfig", "ReplicaConfig", "kv_blocks_from_memory",
           "ROUTERS", "make_router", "Router", "BaseRouter", "ClusterView", "ClusterInfo",
           "LatencyTable", "load_latency_table", "RoutingError", "RouterLoadError",
           "summarize_seeds", "bootstrap_ci"]


def __getattr__(name):
    # Lazy: importing the package must not compile or load numba-heavy modules.
    if name in ("simulate", "RoutingError", "cluster_info"):
        from sim_core import facade as _m
        return getattr(_m, name)
    if name in ("SimResult", "summarize_seeds", "bootstrap_ci"):
        from sim_core import results as _m
        return getattr(_m, name)
    if name in ("ROUTERS", "make_router", "Router", "BaseRouter", "RouterLoadError"):
        from sim_core import routers as _m
        return getattr(_m, name)
    if name in ("ClusterView", "ClusterInfo"):
        from sim_core import view as _m
        return getattr(_m, name)
    if name in ("LatencyTable", "load_latency_table"):
        from sim_core import latency as _m
        return getattr(_m, name)
    raise AttributeError(f"module 'sim_core' has no attribute {name!r}")
