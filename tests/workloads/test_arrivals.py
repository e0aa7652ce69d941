"""Arrival processes: rates, shapes, determinism and parameter checks."""
import math

import numpy as np
import pytest

from workloads.arrivals import (ARRIVALS, ArrivalSpec, gamma_arrivals, lognormal_arrivals,
                                poisson_arrivals, sinusoidal_arrivals, sinusoidal_rate)


def rng(seed=0):
    return np.random.default_rng(seed)


def test_lognormal_gap_mean_is_one_over_qps():
    # sigma=2 gaps have variance (e^4 - 1)/qps^2, so the mean of 1e6 gaps is within
    # ~2.5% (4 standard errors) of 1/qps.
    qps = 7.5
    times = lognormal_arrivals(qps, None, rng(1), sigma=2.0, n=1_000_000)
    gaps = np.diff(np.concatenate([[0.0], times]))
    se = math.sqrt(math.exp(4) - 1) / qps / math.sqrt(len(gaps))
    assert abs(gaps.mean() - 1 / qps) < 4 * se
    # Bursty: the median gap is far below the mean (median = e^mu = e^-2 / qps).
    assert np.median(gaps) == pytest.approx(math.exp(-2) / qps, rel=0.02)


@pytest.mark.parametrize("fn, kw", [
    (poisson_arrivals, {}), (gamma_arrivals, {"cv": 0.5}), (gamma_arrivals, {"cv": 3.0}),
    (lognormal_arrivals, {"sigma": 0.5}),
])
def test_mean_rate_over_a_duration(fn, kw):
    times = fn(20.0, 5000.0, rng(2), **kw)
    assert times.min() > 0 and times.max() < 5000.0
    assert np.all(np.diff(times) >= 0)
    assert len(times) / 5000.0 == pytest.approx(20.0, rel=0.05)


def test_gamma_cv():
    gaps = np.diff(gamma_arrivals(4.0, None, rng(3), cv=2.0, n=200_000))
    assert gaps.std() / gaps.mean() == pytest.approx(2.0, rel=0.05)


def test_duration_and_count_modes():
    t = poisson_arrivals(10.0, 3.0, rng())
    assert (t < 3.0).all()
    assert len(poisson_arrivals(10.0, None, rng(), n=123)) == 123
    assert len(lognormal_arrivals(10.0, None, rng(), n=0)) == 0
    assert len(sinusoidal_arrivals(1.0, 5.0, 60.0, None, rng(), n=500)) == 500


def test_sinusoidal_follows_the_curve():
    lo, hi, period = 1.0, 9.0, 100.0
    t = sinusoidal_arrivals(lo, hi, period, 20_000.0, rng(4))
    phase = (t % period) / period
    # Rate is below (lo+hi)/2 for phase in [0, 1/4) u [3/4, 1), above in [1/4, 3/4).
    high = ((phase >= 0.25) & (phase < 0.75)).sum()
    low = len(t) - high
    # Expected ratio of integrals: (mid + 2 amp / pi) / (mid - 2 amp / pi).
    mid, amp = (lo + hi) / 2, (hi - lo) / 2
    assert high / low == pytest.approx((mid + 2 * amp / math.pi) / (mid - 2 * amp / math.pi), rel=0.05)
    assert len(t) / 20_000.0 == pytest.approx(mid, rel=0.03)
    # Finer check: counts per tenth of the period track the rate at its centre.
    bins = np.histogram(phase, bins=10, range=(0, 1))[0] / (20_000.0 / 10)
    centre = sinusoidal_rate((np.arange(10) + 0.5) / 10 * period, lo, hi, period)
    assert np.allclose(bins, centre, rtol=0.12)


def test_sinusoidal_rate_endpoints():
    assert sinusoidal_rate(0.0, 2.0, 6.0, 10.0) == pytest.approx(2.0)
    assert sinusoidal_rate(5.0, 2.0, 6.0, 10.0) == pytest.approx(6.0)


def test_same_seed_same_times():
    a = lognormal_arrivals(7.5, 100.0, rng(9))
    assert np.array_equal(a, lognormal_arrivals(7.5, 100.0, rng(9)))
    assert not np.array_equal(a[:10], lognormal_arrivals(7.5, 100.0, rng(10))[:10])


@pytest.mark.parametrize("call, match", [
    (lambda: lognormal_arrivals(0.0, 10.0, rng()), "qps must be a finite number > 0"),
    (lambda: lognormal_arrivals(1.0, 10.0, rng(), sigma=-1), "sigma"),
    (lambda: poisson_arrivals(1.0, -5.0, rng()), "duration_s"),
    (lambda: poisson_arrivals(1.0, 5.0, rng(), n=3), "exactly one of"),
    (lambda: poisson_arrivals(1.0, None, rng()), "exactly one of"),
    (lambda: poisson_arrivals(1.0, None, rng(), n=-1), "n must be"),
    (lambda: gamma_arrivals(1.0, 5.0, rng(), cv=0), "cv"),
    (lambda: sinusoidal_arrivals(5.0, 2.0, 10.0, 5.0, rng()), "qps_max .* must be >= qps_min"),
    (lambda: sinusoidal_arrivals(-1.0, 2.0, 10.0, 5.0, rng()), "qps_min"),
    (lambda: sinusoidal_arrivals(1.0, 2.0, 0.0, 5.0, rng()), "period_s"),
])
def test_bad_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_arrival_spec():
    assert set(ARRIVALS) == {"lognormal", "poisson", "gamma", "sinusoidal"}
    spec = ArrivalSpec()
    assert (spec.kind, spec.qps, spec.sigma) == ("lognormal", 7.5, 2.0)
    assert np.array_equal(spec.draw(50.0, rng(5)), lognormal_arrivals(7.5, 50.0, rng(5), 2.0))
    sin = ArrivalSpec(kind="sinusoidal", qps_min=1, qps_max=3, period_s=60)
    assert sin.mean_qps == 2.0 and "sinusoidal" in sin.describe()
    assert len(ArrivalSpec(kind="gamma", qps=2, cv=0.3).draw(None, rng(), n=7)) == 7
    with pytest.raises(ValueError, match="unknown arrival process 'bursty'"):
        ArrivalSpec(kind="bursty")
    with pytest.raises(ValueError, match="qps"):
        ArrivalSpec(qps=-1)
    with pytest.raises(ValueError, match="needs qps_min and qps_max"):
        ArrivalSpec(kind="sinusoidal")
