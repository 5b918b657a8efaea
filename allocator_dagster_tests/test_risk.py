"""Concentration and risk of holdings: exposures, effective number of positions, volatility."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from allocator_dagster.risk import PoolFacts, apy_volatility, concentration, concentration_markdown

FACTS = {
    "a": PoolFacts("aave-v3", "Ethereum", ("USDC",)),
    "b": PoolFacts("aave-v3", "Base", ("USDC", "WETH")),
    "c": PoolFacts("curve-dex", "Ethereum", ("DAI", "USDC", "USDT")),
}


def test_exposures_and_effective_number_of_positions():
    result = concentration({"a": Decimal("50"), "b": Decimal("30"), "c": Decimal("20")}, FACTS)
    assert result.by_protocol == {"aave-v3": 0.8, "curve-dex": 0.2}
    assert result.by_chain == {"Ethereum": 0.7, "Base": 0.3}
    # a pool counts fully for each of its tokens
    assert result.by_token["USDC"] == pytest.approx(1.0)
    assert result.by_token["WETH"] == pytest.approx(0.3)
    assert result.effective_positions == pytest.approx(1 / (0.25 + 0.09 + 0.04))
    assert result.largest_weight == 0.5


def test_equal_positions_count_fully_and_one_position_counts_once():
    assert concentration({p: 10.0 for p in "abc"}, FACTS).effective_positions == pytest.approx(3)
    assert concentration({"a": 5.0}, FACTS).effective_positions == 1.0


def test_nothing_invested_and_unknown_pools():
    empty = concentration({}, FACTS)
    assert empty.positions == 0 and empty.apy_volatility_pct is None
    assert concentration_markdown(empty) == "Nothing is invested."
    unknown = concentration({"zzz": 1.0}, FACTS)
    assert unknown.by_protocol == {"?": 1.0}


def test_apy_volatility_of_what_is_held_counts_a_missing_day_as_zero():
    days = [dt.date(2025, 1, d) for d in (1, 2, 3)]
    history = pd.DataFrame(
        {
            "date": [days[0], days[0], days[1], days[1], days[2]],
            "pool": ["a", "b", "a", "b", "a"],
            "apy": [4.0, 8.0, 6.0, 8.0, 4.0],  # b is missing on day 3
        }
    )
    # the portfolio's APY per day, weights 0.5 / 0.5: 6, 7, 2
    expected = pd.Series([6.0, 7.0, 2.0]).std(ddof=1)
    assert apy_volatility({"a": 0.5, "b": 0.5}, history) == pytest.approx(expected)
    assert apy_volatility({"a": 1.0}, history.iloc[:2]) is None  # one day: no spread


def test_markdown_escapes_outside_names():
    facts = {"x": PoolFacts("evil\x1b[2J", "Ethereum", ("USDC",))}
    text = concentration_markdown(concentration({"x": 1.0}, facts))
    assert "\x1b" not in text and "evil\\x1b[2J" in text
