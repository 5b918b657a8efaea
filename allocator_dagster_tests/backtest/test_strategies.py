"""The baselines: greedy fills the best forecasts to their caps, equal weight water-fills."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from allocator_dagster.backtest.strategies import equal_cents, foresight_frame, greedy_cents
from allocator_dagster.model import Holdings, build_problem
from allocator_dagster_tests.backtest.helpers import LISTS, PARAMS, frame


def problem_of(pools, capital="100000.00", **overrides):
    params = PARAMS.model_copy(update=overrides)
    problem, _ = build_problem(frame(pools), Holdings.idle(Decimal(capital)), params, LISTS)
    return problem


def test_greedy_fills_the_highest_forecasts_up_to_their_caps():
    # caps: 10 % of the forecast TVL; forecasts b > c > a
    pools = {"a": (0.0, 1.0, 1e6), "b": (0.0, 9.0, 4e5), "c": (0.0, 5.0, 5e5)}
    problem = problem_of(pools, tvl_limit_percentage=0.1, position_max_pct_pool_tvl=0.1)
    cents = dict(zip(problem.pool_ids, greedy_cents(problem).tolist(), strict=True))
    assert cents == {"a": 1_000_000, "b": 4_000_000, "c": 5_000_000}
    assert sum(cents.values()) == 10_000_000


def test_greedy_respects_group_caps_and_the_minimum_position():
    pools = {"a": (0.0, 9.0, 1e9), "b": (0.0, 5.0, 1e9)}
    problem = problem_of(pools, group2_max_pct=0.3, group1_max_pct=0.3, min_position_usd=1_000.0)
    x = greedy_cents(problem)
    assert x.sum() <= int(0.3 * 100000 * 100)  # both pools are group 2 here


def test_equal_weight_water_fills_under_the_caps():
    pools = {"a": (0.0, 1.0, 1e5), "b": (0.0, 2.0, 1e9), "c": (0.0, 3.0, 1e9)}
    problem = problem_of(pools, tvl_limit_percentage=0.1, position_max_pct_pool_tvl=0.1)
    cents = dict(zip(problem.pool_ids, equal_cents(problem).tolist(), strict=True))
    # a can take 10,000 USD; b and c share the rest equally
    assert cents["a"] == 1_000_000
    assert cents["b"] == cents["c"] == 4_500_000
    assert sum(cents.values()) == 10_000_000


def test_equal_weight_keeps_shares_above_the_minimum_position():
    pools = {p: (0.0, 1.0, (k + 1) * 1e9) for k, p in enumerate("abc")}
    problem = problem_of(pools, capital="2500.00", min_position_usd=1_000.0)
    x = equal_cents(problem)
    held = x[x > 0]
    assert len(held) == 2 and held.min() >= 100_000  # the two largest pools by TVL
    assert set(np.asarray(problem.pool_ids)[x > 0]) == {"b", "c"}


def test_foresight_frame_takes_tomorrows_values_and_zero_for_a_missing_pool():
    today = frame({"a": (1.0, 9.0, 1e6), "b": (1.0, 9.0, 2e6)})
    tomorrow = frame({"a": (7.0, 0.0, 3e6)})
    seen = foresight_frame(today, tomorrow).set_index("pool")
    assert seen.loc["a", "apy_forecast"] == 7.0 and seen.loc["a", "tvl_forecast"] == 3e6
    assert seen.loc["b", "apy_forecast"] == 0.0 and seen.loc["b", "tvl_forecast"] == 2e6
