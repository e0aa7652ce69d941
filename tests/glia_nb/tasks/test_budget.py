"""Budgets and the thread-safe tracker."""

from __future__ import annotations

import threading

import pytest

from glia_nb.tasks.budget import Budget, BudgetTracker


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_budget_is_frozen_validated_and_round_trips():
    b = Budget(max_simulations=30, max_usd=5.0, max_wall_s=60, max_turns=10)
    with pytest.raises(AttributeError):
        b.max_usd = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        Budget(max_usd=-1)
    assert Budget.from_dict(b.to_dict()) == b
    assert Budget.coerce(None) == Budget()
    assert Budget.coerce({"max_turns": 4}) == Budget(max_turns=4)


def test_one_budget_class_and_old_journal_headers_still_read():
    import math

    from glia_nb.tasks import Budget as TaskBudget
    from glia_nb.tasks import get_task

    assert TaskBudget is Budget and isinstance(get_task("routing-a10").budget, Budget)
    # A header written before the merge: the task budget's field names, plus one we dropped.
    old = {"max_simulations": 90, "max_dollars": 20.0, "max_wall_s": 3600, "max_turns": 250,
           "max_llm_calls": 7}
    assert Budget.from_dict(old) == Budget(max_simulations=90, max_usd=20.0, max_wall_s=3600,
                                           max_turns=250)
    # Unlimited is None; math.inf is accepted and stored as None; NaN is refused.
    assert Budget(max_simulations=math.inf, max_usd=math.inf) == Budget()
    with pytest.raises(ValueError):
        Budget(max_usd=float("nan"))


def test_split_shares_the_total_and_minus_leaves_the_rest():
    parts = Budget(max_simulations=6, max_usd=2.0, max_turns=9).split(4)
    assert [p.max_simulations for p in parts] == [2, 2, 1, 1]
    assert sum(p.max_usd for p in parts) == pytest.approx(2.0)
    assert all(p.max_turns == 9 for p in parts)
    assert Budget().split(3) == [Budget()] * 3
    assert Budget(max_simulations=5, max_usd=1.0).minus(2, 0.25) == Budget(max_simulations=3, max_usd=0.75)
    assert Budget(max_simulations=1).minus(4).max_simulations == 0


def test_unlimited_budget_is_never_exhausted():
    t = BudgetTracker()
    for _ in range(100):
        t.add_simulations(3)
        t.add_cost(10.0)
        t.add_turn()
    assert t.exhausted() is None and t.simulations_left() is None


@pytest.mark.parametrize(
    "budget, spend, reason",
    [
        (Budget(max_simulations=6), lambda t: t.add_simulations(3), "simulations"),
        (Budget(max_usd=0.5), lambda t: t.add_cost(0.2), "dollars"),
        (Budget(max_turns=3), lambda t: t.add_turn(), "turns"),
    ],
)
def test_each_limit_is_reported_when_reached(budget, spend, reason):
    t = BudgetTracker(budget)
    spent = 0
    while t.exhausted() is None:
        spend(t)
        spent += 1
        assert spent < 10
    assert t.exhausted() == reason
    assert spent == {"simulations": 2, "dollars": 3, "turns": 3}[reason]


def test_wall_clock_runs_only_while_started_and_survives_restore():
    clock = FakeClock()
    t = BudgetTracker(Budget(max_wall_s=100), clock=clock)
    clock.t += 50  # not started: does not count
    assert t.wall_s == 0.0
    t.start_clock()
    clock.t += 30
    assert t.wall_s == pytest.approx(30)
    t.stop_clock()
    clock.t += 1000  # paused: does not count
    t.start_clock()
    clock.t += 60
    assert t.wall_s == pytest.approx(90) and t.exhausted() is None
    clock.t += 10
    assert t.exhausted() == "wall_time"

    resumed = BudgetTracker(Budget(max_wall_s=100), clock=clock)
    resumed.restore(simulations=9, usd=1.5, turns=4, calls=6, wall_s=95.0)
    resumed.start_clock()
    clock.t += 4
    snap = resumed.snapshot()
    assert (snap["simulations"], snap["usd"], snap["turns"], snap["llm_calls"]) == (9, 1.5, 4, 6)
    assert snap["wall_s"] == pytest.approx(99.0) and resumed.exhausted() is None


def test_counters_are_exact_under_concurrent_updates():
    t = BudgetTracker(Budget(max_simulations=10**9))

    def work():
        for _ in range(2000):
            t.add_simulations(1)
            t.add_cost(0.001)
            t.add_turn()
            t.snapshot()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.simulations == 16_000 and t.turns == 16_000
    assert t.usd == pytest.approx(16.0)


def test_snapshot_and_description():
    t = BudgetTracker(Budget(max_simulations=90, max_usd=20.0))
    t.add_simulations(3)
    t.add_cost(1.25)
    snap = t.snapshot()
    assert snap["limits"]["max_simulations"] == 90 and snap["usd"] == 1.25 and snap["llm_calls"] == 1
    assert t.simulations_left() == 87
    line = t.describe()
    assert "simulations 3 of 90" in line and "dollars 1.25 of 20.00" in line and "turns 0" in line


def test_claims_never_exceed_the_budget_from_many_threads():
    t = BudgetTracker(Budget(max_simulations=50))
    got = []

    def worker():
        while (n := t.claim_simulation()) is not None:
            got.append(n)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(got) == list(range(1, 51)) and t.simulations_left() == 0
    assert t.exhausted() == "simulations" and BudgetTracker().claim_simulation() == 1
