"""Arrival processes: sorted arrival times (seconds) over a duration or for a count.

Every function takes an explicit ``numpy.random.Generator`` and either ``duration_s`` (all
arrivals in ``[0, duration_s)``) or ``n=`` (exactly ``n`` arrivals).  As in Vidur's
synthetic generator, the first request arrives one gap after ``t = 0``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

GapSampler = Callable[[int], np.ndarray]


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
            and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _window(duration_s: float | None, n: int | None) -> tuple[float | None, int | None]:
    """Validate the exactly-one-of (duration_s, n) choice."""
    if (duration_s is None) == (n is None):
        raise ValueError("give exactly one of duration_s (arrivals in [0, duration_s)) or n "
                         "(a number of arrivals)")
    if duration_s is not None:
        return _positive("duration_s", duration_s), None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    return None, int(n)


def _from_gaps(gaps: GapSampler, qps: float, duration_s: float | None, n: int | None) -> np.ndarray:
    """Cumulative sums of i.i.d. gaps, cut at ``duration_s`` or after ``n`` arrivals."""
    if n is not None:
        return np.cumsum(gaps(n)) if n else np.empty(0)
    parts: list[np.ndarray] = []
    t = 0.0
    # Chunks a little above the expected count; heavy-tailed gaps just take more rounds.
    chunk = max(64, int(1.1 * qps * duration_s + 64))
    while t < duration_s:
        times = t + np.cumsum(gaps(chunk))
        parts.append(times)
        t = float(times[-1])
    times = np.concatenate(parts)
    return times[: np.searchsorted(times, duration_s, side="left")]


def lognormal_arrivals(qps: float, duration_s: float | None, rng: np.random.Generator,
                       sigma: float = 2.0, *, n: int | None = None) -> np.ndarray:
    """Bursty arrivals with log-normal gaps of mean exactly ``1/qps``.

    The gap is ``exp(N(mu, sigma^2))`` with ``mu = ln(1/qps) - sigma^2/2``, so its mean is
    ``1/qps`` for every ``sigma``; a larger ``sigma`` means more bursts and longer lulls.
    """
    qps = _positive("qps", qps)
    sigma = _positive("sigma", sigma)
    duration_s, n = _window(duration_s, n)
    mu = math.log(1.0 / qps) - sigma * sigma / 2.0
    return _from_gaps(lambda k: rng.lognormal(mu, sigma, k), qps, duration_s, n)


def poisson_arrivals(qps: float, duration_s: float | None, rng: np.random.Generator,
                     *, n: int | None = None) -> np.ndarray:
    """A Poisson process of rate ``qps`` (exponential gaps)."""
    qps = _positive("qps", qps)
    duration_s, n = _window(duration_s, n)
    return _from_gaps(lambda k: rng.exponential(1.0 / qps, k), qps, duration_s, n)


def gamma_arrivals(qps: float, duration_s: float | None, rng: np.random.Generator,
                   cv: float = 1.0, *, n: int | None = None) -> np.ndarray:
    """Gamma-distributed gaps with mean ``1/qps`` and coefficient of variation ``cv``.

    ``cv = 1`` is Poisson; ``cv > 1`` is burstier, ``cv < 1`` more regular
    (shape ``1/cv^2``, scale ``cv^2/qps``).
    """
    qps = _positive("qps", qps)
    cv = _positive("cv", cv)
    duration_s, n = _window(duration_s, n)
    shape = 1.0 / (cv * cv)
    scale = 1.0 / (qps * shape)
    return _from_gaps(lambda k: rng.gamma(shape, scale, k), qps, duration_s, n)


def sinusoidal_rate(t, qps_min: float, qps_max: float, period_s: float):
    """Rate of :func:`sinusoidal_arrivals` at time ``t``: ``qps_min`` at t=0, ``qps_max`` at period/2."""
    mid = (qps_max + qps_min) / 2.0
    amp = (qps_max - qps_min) / 2.0
    return mid - amp * np.cos(2.0 * np.pi * np.asarray(t, dtype=float) / period_s)


def sinusoidal_arrivals(qps_min: float, qps_max: float, period_s: float,
                        duration_s: float | None, rng: np.random.Generator,
                        *, n: int | None = None) -> np.ndarray:
    """A non-homogeneous Poisson process whose rate follows a sinusoid (diurnal-style load).

    The rate is :func:`sinusoidal_rate`: it starts at ``qps_min``, peaks at ``qps_max`` at
    ``period_s / 2`` and repeats.  Drawn by thinning: candidates from a Poisson process at
    ``qps_max``, each kept with probability ``rate(t) / qps_max``.
    """
    if not (isinstance(qps_min, (int, float, np.integer, np.floating)) and math.isfinite(qps_min)
            and qps_min >= 0):
        raise ValueError(f"qps_min must be a finite number >= 0, got {qps_min!r}")
    qps_max = _positive("qps_max", qps_max)
    if qps_max < qps_min:
        raise ValueError(f"qps_max ({qps_max}) must be >= qps_min ({qps_min})")
    period_s = _positive("period_s", period_s)
    duration_s, n = _window(duration_s, n)

    def thin(times: np.ndarray) -> np.ndarray:
        keep = rng.random(len(times)) * qps_max < sinusoidal_rate(times, qps_min, qps_max, period_s)
        return times[keep]

    if duration_s is not None:
        return thin(poisson_arrivals(qps_max, duration_s, rng))
    if n == 0:
        return np.empty(0)
    parts: list[np.ndarray] = []
    got, t = 0, 0.0
    mean_rate = (qps_min + qps_max) / 2.0
    while got < n:
        # Enough candidates for the rest on average, plus a margin.
        k = int((n - got) * qps_max / mean_rate * 1.2) + 64
        cand = t + poisson_arrivals(qps_max, None, rng, n=k)
        t = float(cand[-1])
        kept = thin(cand)
        parts.append(kept)
        got += len(kept)
    return np.concatenate(parts)[:n]


ARRIVALS: dict[str, Callable[..., np.ndarray]] = {
    "lognormal": lognormal_arrivals,
    "poisson": poisson_arrivals,
    "gamma": gamma_arrivals,
    "sinusoidal": sinusoidal_arrivals,
}


@dataclass(frozen=True)
class ArrivalSpec:
    """An arrival process by name and parameters; :meth:`draw` makes the arrival times.

    ``kind`` is a key of :data:`ARRIVALS`.  ``qps`` is the mean rate of ``lognormal``,
    ``poisson`` and ``gamma``; ``sigma`` belongs to ``lognormal``, ``cv`` to ``gamma``;
    ``qps_min``, ``qps_max`` and ``period_s`` to ``sinusoidal`` (whose ``qps`` is unused).
    """

    kind: str = "lognormal"
    qps: float = 7.5
    sigma: float = 2.0
    cv: float = 1.0
    qps_min: float | None = None
    qps_max: float | None = None
    period_s: float = 600.0

    def __post_init__(self) -> None:
        if self.kind not in _DRAW:
            raise ValueError(f"unknown arrival process {self.kind!r}; choose one of "
                             f"{sorted(_DRAW)}")
        if self.kind == "sinusoidal":
            if self.qps_min is None or self.qps_max is None:
                raise ValueError("a sinusoidal arrival process needs qps_min and qps_max")
        else:
            _positive("qps", self.qps)
        # Parameter checks live in the functions; a zero-length draw runs them now.
        self.draw(None, np.random.default_rng(0), n=0)

    @property
    def mean_qps(self) -> float:
        """Long-run mean arrival rate."""
        if self.kind == "sinusoidal":
            return (self.qps_min + self.qps_max) / 2.0
        return float(self.qps)

    def describe(self) -> str:
        """A short human-readable label, e.g. ``log-normal gaps (sigma=2), 7.5 QPS``."""
        if self.kind == "lognormal":
            return f"log-normal gaps (sigma={self.sigma:g}), {self.qps:g} QPS"
        if self.kind == "poisson":
            return f"Poisson, {self.qps:g} QPS"
        if self.kind == "gamma":
            return f"gamma gaps (cv={self.cv:g}), {self.qps:g} QPS"
        return (f"sinusoidal Poisson {self.qps_min:g}-{self.qps_max:g} QPS, "
                f"period {self.period_s:g} s")

    def draw(self, duration_s: float | None, rng: np.random.Generator, *,
             n: int | None = None) -> np.ndarray:
        """Sorted arrival times in ``[0, duration_s)``, or exactly ``n`` of them."""
        return _DRAW[self.kind](self, duration_s, rng, n)


# How a spec's fields map onto each function's parameters.
_DRAW = {
    "lognormal": lambda s, d, rng, n: lognormal_arrivals(s.qps, d, rng, s.sigma, n=n),
    "poisson": lambda s, d, rng, n: poisson_arrivals(s.qps, d, rng, n=n),
    "gamma": lambda s, d, rng, n: gamma_arrivals(s.qps, d, rng, s.cv, n=n),
    "sinusoidal": lambda s, d, rng, n: sinusoidal_arrivals(s.qps_min, s.qps_max, s.period_s,
                                                           d, rng, n=n),
}
