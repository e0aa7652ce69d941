"""workloads — request traces, arrival processes, ShareGPT lengths and named scenarios.

    from workloads import get_scenario
    scenario = get_scenario("routing-a10")
    trace = scenario.trace(seed=0)        # a Trace: arrivals + Llama-3 token lengths

Importing the package reads no files and does not import pandas.
"""
from workloads.arrivals import (ARRIVALS, ArrivalSpec, gamma_arrivals, lognormal_arrivals,
                                poisson_arrivals, sinusoidal_arrivals, sinusoidal_rate)
from workloads.scenarios import (LENGTHS, SCENARIOS, Scenario, UnknownScenarioError,
                                 WorkloadSpec, get_scenario)
from workloads.sharegpt import (inflate_lengths, load_sharegpt_lengths, sample_sharegpt,
                                sharegpt_provenance)
from workloads.trace import Trace, TraceError

__all__ = [
    "Trace", "TraceError",
    "ARRIVALS", "ArrivalSpec", "lognormal_arrivals", "poisson_arrivals", "gamma_arrivals",
    "sinusoidal_arrivals", "sinusoidal_rate",
    "load_sharegpt_lengths", "sample_sharegpt", "inflate_lengths", "sharegpt_provenance",
    "LENGTHS", "WorkloadSpec", "Scenario", "SCENARIOS", "get_scenario", "UnknownScenarioError",
]
