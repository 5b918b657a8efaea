"""The realised share of the forecast gain of a strategy's trades (forecast_credibility)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocator_dagster.backtest.credibility import credibility_text, trade_credibility
from allocator_dagster.backtest.engine import DayRecord, Market, StrategyRun
from allocator_dagster.risk import Concentration
from allocator_dagster_tests.backtest.helpers import START, market_of

NOTHING = Concentration(0.0, 0, 0.0, 0.0, {}, {}, {}, None)


def strategy(market: Market, positions: list[dict[str, str]]) -> StrategyRun:
    """A run that holds `positions[k]` during day k (only the positions matter here)."""
    zero = Decimal("0.00")
    days = tuple(
        DayRecord(day, {p: Decimal(a) for p, a in held.items()}, zero, zero, 0.0, zero, zero,
                  zero, 0, "", NOTHING)
        for day, held in zip(market.days, positions, strict=True)
    )  # fmt: skip
    return StrategyRun("allocator", Decimal("1000.00"), days)


def market(b_realised: list[float]) -> Market:
    """Pools a and b; a realises its 10 % forecast, b is forecast at 20 % and realises
    `b_realised` on days 2.. (day 1: 20 %)."""
    days = [{"a": (10.0, 10.0, 1e9), "b": (20.0, 20.0, 1e9)}]
    days += [{"a": (10.0, 10.0, 1e9), "b": (apy, 20.0, 1e9)} for apy in b_realised]
    end = START + dt.timedelta(days=len(days) - 1)
    return Market.load(market_of(days), START, end)


def test_the_realised_share_of_a_trades_forecast_gain_per_horizon() -> None:
    # day 1 places 1,000 USD in a (not a trade); day 2 moves it to b, forecast +10 points;
    # b then realises 13 % and 16 %: 3 of 10 points the next day, 4.5 over two days
    m = market([13.0, 13.0, 16.0])
    run = strategy(m, [{}, {"a": "1000"}, {"b": "1000"}, {"b": "1000"}])
    one, two, five = trade_credibility(run, m, horizons=(1, 2, 5))
    assert (one.trades, two.trades, five.trades) == (1, 1, 0)
    assert one.forecast_usd == pytest.approx(1000 * 10 / 36500)
    assert one.ratio == pytest.approx(0.3)
    assert two.ratio == pytest.approx((3 + 6) / 20)
    assert five.ratio is None  # its five days are not in the range
    text = credibility_text([one, five])
    assert text == (
        "realised / forecast gain of the trades over 1 d 0.300 (1 trades), 5 d - (0 trades)"
    )


def test_a_trade_across_a_principal_loss_day_is_left_out() -> None:
    m = market([13.0, 13.0, -30_000.0])  # the loss on day 4, two days after the trade
    run = strategy(m, [{}, {"a": "1000"}, {"b": "1000"}, {"b": "1000"}])
    one, two = trade_credibility(run, m, horizons=(1, 2))
    assert (one.trades, one.ratio) == (1, pytest.approx(0.3))
    assert (two.trades, two.ratio) == (0, None)
    with pytest.raises(ValueError, match="allocator: 2 days for a market of 4"):
        trade_credibility(StrategyRun("allocator", run.capital_usd, run.days[:2]), m)
