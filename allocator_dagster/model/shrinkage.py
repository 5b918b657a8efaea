"""Credibility of each pool's forecast APY (MODEL.md, `forecast_shrinkage`).

The pools a decision moves into are those whose forecast beat the others', partly by luck (the
winner's curse), and a pool whose APY jumps about, or that is new, wins by luck more often. The
empirical-Bayes answer: each pool's forecast is shrunk toward the mean forecast of the day's
eligible pools by the factor `B_i = tau^2 / (tau^2 + lambda * s_i^2)`, where `tau^2` is the
variance of the eligible pools' forecasts (how far apart pools really are, at most), `s_i` the
pool's own APY volatility (`APY_VOLATILITY_COLUMN`: the standard deviation of its daily APY over
the trailing days, a day without a row counting 0, so a short history is a noisy one) and
`lambda` the parameter. A still pool keeps its forecast; a noisy one is believed less.
"""

from __future__ import annotations

import numpy as np

# the column of a day's universe that holds each pool's trailing APY volatility (percentage
# points); a pool without it (NaN, or the column missing) keeps its forecast
APY_VOLATILITY_COLUMN = "apy_volatility_pct"


def shrink_factors(apy: np.ndarray, volatility: np.ndarray, strength: float) -> np.ndarray:
    """`B_i` in (0, 1] for each pool (1: the forecast is kept)."""
    factors = np.ones(len(apy))
    if strength <= 0 or len(apy) < 2:
        return factors
    tau2 = float(np.var(apy))
    noise2 = np.where(np.isfinite(volatility), volatility, 0.0) ** 2
    if not np.isfinite(tau2) or tau2 <= 0:
        return factors
    return tau2 / (tau2 + strength * noise2)


def shrunk(values: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """`m + B_i * (v_i - m)`, m the mean of `values` (one forecast column of the eligible pools)."""
    if not len(values):
        return values
    mean = float(np.mean(values))
    return mean + factors * (values - mean)
