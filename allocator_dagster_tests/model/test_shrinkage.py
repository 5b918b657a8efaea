"""MODEL.md's `forecast_shrinkage`: each pool's forecast APY is shrunk toward the day's mean by
`B_i = tau^2 / (tau^2 + lambda * s_i^2)`; expectations computed by hand from that definition."""

from __future__ import annotations

import numpy as np
import pytest

from allocator_dagster.model.shrinkage import APY_VOLATILITY_COLUMN, shrink_factors, shrunk
from allocator_dagster_tests.support.instances import pool_row
from allocator_dagster_tests.support.problems import build


def test_factors_follow_the_pools_own_noise():
    # tau^2 = var(10, 20) = 25; a still pool keeps its forecast, s = 10 gives 25 / 125
    factors = shrink_factors(np.array([10.0, 20.0]), np.array([0.0, 10.0]), 1.0)
    assert factors.tolist() == pytest.approx([1.0, 0.2])
    assert shrunk(np.array([10.0, 20.0]), factors).tolist() == pytest.approx([10.0, 16.0])


def test_no_strength_or_no_spread_keeps_the_forecast():
    apy = np.array([10.0, 20.0])
    assert shrink_factors(apy, np.array([5.0, 5.0]), 0.0).tolist() == [1.0, 1.0]
    assert shrink_factors(np.array([7.0, 7.0]), np.array([5.0, 5.0]), 1.0).tolist() == [1.0, 1.0]
    # a pool without a measured volatility (NaN) is believed whole
    assert shrink_factors(apy, np.array([np.nan, 0.0]), 1.0).tolist() == [1.0, 1.0]


def rows():
    return [
        pool_row("still", apy=10.0, **{APY_VOLATILITY_COLUMN: 0.0}),
        pool_row("noisy", apy=20.0, **{APY_VOLATILITY_COLUMN: 10.0}),
    ]


def test_the_problem_believes_a_noisy_pool_less():
    problem, _ = build(rows(), forecast_shrinkage=1.0)
    assert problem.pool_ids.tolist() == ["noisy", "still"]
    assert problem.apy.tolist() == pytest.approx([16.0, 10.0])
    # base and reward are shrunk alike (here all base), so the diluted model agrees
    assert problem.apy_base.tolist() == pytest.approx([16.0, 10.0])


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_without_the_parameter_or_the_column_the_forecast_is_kept(strength):
    off, _ = build(rows(), forecast_shrinkage=0.0)
    assert off.apy.tolist() == pytest.approx([20.0, 10.0])
    plain = [{k: v for k, v in r.items() if k != APY_VOLATILITY_COLUMN} for r in rows()]
    without, _ = build(plain, forecast_shrinkage=strength)
    assert without.apy.tolist() == pytest.approx([20.0, 10.0])
