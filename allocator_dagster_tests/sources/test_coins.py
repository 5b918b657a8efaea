"""The DefiLlama coins client: prices read exactly, and refused when stale, unsure or absurd."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocator_dagster.sources.coins import CoinPriceError, CoinsClient
from allocator_dagster_tests.support.fake_chain import USDC, FakeCoins

KEY = f"ethereum:{USDC}"
NOW = 1_764_547_200  # the clock of the tests that judge a price's age


def _client(server: FakeCoins, **kwargs) -> CoinsClient:
    return CoinsClient(server.url, retries=0, **kwargs)


def test_prices_are_exact_decimals_for_many_keys_in_few_calls() -> None:
    with FakeCoins() as server:
        keys = [f"ethereum:0x{i:040x}" for i in range(45)]
        for i, key in enumerate(keys):
            server.set_price(key, float(f"1.{i:02d}"), f"T{i}", 18)
        server.set_price(KEY, 0.9998, "USDC", 6)
        prices = _client(server).prices([*keys, KEY.upper().replace("ETHEREUM", "ethereum")])
    assert len(server.requests) == 2  # 46 keys, 40 per call
    assert prices[KEY].price == Decimal("0.9998")  # not the float 0.99980000000000002
    assert prices[KEY].symbol == "USDC" and prices[KEY].decimals == 6
    assert prices[keys[7]].price == Decimal("1.07")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"price": 0}, "not a positive number"),
        ({"price": -1.5}, "not a positive number"),
        ({"price": "1.0"}, "not a positive number"),
        ({"price": None}, "not a positive number"),
        ({"price": 1e12}, "above the plausible"),
        ({"confidence": 0.5}, "confidence 0.5, below the 0.9 required"),
        ({"confidence": "high"}, "confidence .* is not a number"),
        ({"timestamp": NOW - 7200}, "120 minutes old, older than the 60 minutes"),
        ({"timestamp": NOW + 86400}, "dated in the future"),
        ({"timestamp": "yesterday"}, "has no timestamp"),
    ],
)
def test_an_unusable_price_is_refused_naming_the_token(entry: dict, message: str) -> None:
    with FakeCoins() as server:
        server.set_price(KEY, 1.0, "USDC", 6, timestamp=NOW)
        server.prices[KEY] |= entry
        with pytest.raises(CoinPriceError, match=message) as err:
            _client(server).prices([KEY], now=dt.datetime.fromtimestamp(NOW, dt.UTC))
    assert f"{KEY} (USDC)" in str(err.value)


def test_age_and_confidence_limits_are_configurable() -> None:
    with FakeCoins() as server:
        server.set_price(KEY, 1.0, "USDC", 6, confidence=0.5, timestamp=NOW - 7200)
        client = _client(server, max_age_seconds=3 * 3600, min_confidence=Decimal("0.4"))
        price = client.prices([KEY], now=dt.datetime.fromtimestamp(NOW, dt.UTC))
    assert price[KEY].confidence == Decimal("0.5")


def test_a_missing_token_and_a_broken_answer_are_errors() -> None:
    with FakeCoins() as server:
        with pytest.raises(CoinPriceError, match=f"no price for {KEY}"):
            _client(server).prices([KEY])
        server.raw = b'{"coins": []}'
        with pytest.raises(CoinPriceError, match="no 'coins' object"):
            _client(server).prices([KEY])
        server.raw = b"<html>"
        with pytest.raises(CoinPriceError, match="not JSON"):
            _client(server).prices([KEY])


def test_the_clock_can_be_given() -> None:
    with FakeCoins() as server:
        server.set_price(KEY, 1.0, "USDC", 6, timestamp=1_700_000_000)
        now = dt.datetime.fromtimestamp(1_700_000_060, dt.UTC)
        assert _client(server).prices([KEY], now=now)[KEY].timestamp == 1_700_000_000
