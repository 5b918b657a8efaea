"""A client of DefiLlama's coins API: the current USD price of tokens, checked before use.

`GET {base}/prices/current/{chain}:{address},...` answers
`{"coins": {"ethereum:0x...": {"price", "symbol", "decimals", "timestamp", "confidence"}}}`.
A price values the treasury, so it is refused, naming the token, when it is missing, not a
positive number, absurdly large, older than `max_age_seconds`, from the future, or of a
confidence below `min_confidence`. Prices are read as exact decimals from the JSON text.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import requests

from allocator_dagster.sources.http import FetchError, get_json, retrying_session

DEFAULT_COINS_URL = "https://coins.llama.fi"
KEYS_PER_CALL = 40  # a URL of 40 keys stays well under common URL limits
MAX_PRICE_USD = Decimal(10) ** 7  # no token the treasury holds is worth ten million dollars
FUTURE_SKEW_SECONDS = 300  # a timestamp this far ahead of our clock is not a price "now"


class CoinPriceError(RuntimeError):
    """A price cannot be used; the message names the token and why."""


@dataclass(frozen=True)
class CoinPrice:
    key: str  # "{chain}:{address}", lower-case
    price: Decimal
    symbol: str
    decimals: int | None
    timestamp: int
    confidence: Decimal | None


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    number = Decimal(value)
    return number if number.is_finite() else None


def _symbol(value: object) -> str:
    """A symbol for messages only: printable, short."""
    text = value if isinstance(value, str) else ""
    return "".join(c for c in text if c.isprintable())[:32]


class CoinsClient:
    """Prices of many tokens in few calls, each checked (age, confidence, plausibility)."""

    def __init__(
        self,
        base_url: str = DEFAULT_COINS_URL,
        *,
        max_age_seconds: float = 3600.0,
        min_confidence: Decimal = Decimal("0.9"),
        max_price_usd: Decimal = MAX_PRICE_USD,
        timeout: float = 20.0,
        retries: int = 4,
        deadline_seconds: float = 120.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_age_seconds = max_age_seconds
        self.min_confidence = Decimal(min_confidence)
        self.max_price_usd = Decimal(max_price_usd)
        self.timeout = timeout
        self.deadline_seconds = deadline_seconds
        self.session = session or retrying_session(retries)

    def prices(
        self, keys: Iterable[str], *, now: dt.datetime | None = None
    ) -> dict[str, CoinPrice]:
        """The checked price of every `{chain}:{address}` key (lower-case), or an error."""
        wanted = sorted({key.lower() for key in keys})
        deadline_at = time.monotonic() + self.deadline_seconds
        answers: dict[str, object] = {}
        for start in range(0, len(wanted), KEYS_PER_CALL):
            batch = wanted[start : start + KEYS_PER_CALL]
            url = f"{self.base_url}/prices/current/{','.join(batch)}"
            try:
                payload = get_json(self.session, url, timeout=self.timeout, deadline_at=deadline_at)
            except FetchError as exc:
                raise CoinPriceError(f"DefiLlama coins {url}: {exc}") from None
            coins = payload.get("coins") if isinstance(payload, dict) else None
            if not isinstance(coins, dict):
                raise CoinPriceError(f"DefiLlama coins {url}: the answer has no 'coins' object")
            answers |= {str(k).lower(): v for k, v in coins.items() if str(k).lower() in batch}
        clock = (now or dt.datetime.now(dt.UTC)).timestamp()
        return {key: self._checked(key, answers.get(key), clock) for key in wanted}

    def _checked(self, key: str, entry: object, now: float) -> CoinPrice:
        if not isinstance(entry, dict):
            raise CoinPriceError(f"DefiLlama coins: no price for {key}")
        symbol = _symbol(entry.get("symbol"))
        token = f"{key} ({symbol})" if symbol else key
        price = _number(entry.get("price"))
        if price is None or price <= 0:
            raise CoinPriceError(
                f"DefiLlama coins: the price of {token} is {str(entry.get('price'))[:40]!r}, "
                "not a positive number"
            )
        if price > self.max_price_usd:
            raise CoinPriceError(
                f"DefiLlama coins: the price of {token} is {price} USD, above the plausible "
                f"{self.max_price_usd} USD"
            )
        stamp = entry.get("timestamp")
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            raise CoinPriceError(f"DefiLlama coins: the price of {token} has no timestamp")
        age = now - stamp
        if age > self.max_age_seconds:
            raise CoinPriceError(
                f"DefiLlama coins: the price of {token} is {age / 60:,.0f} minutes old, older "
                f"than the {self.max_age_seconds / 60:g} minutes accepted"
            )
        if age < -FUTURE_SKEW_SECONDS:
            raise CoinPriceError(f"DefiLlama coins: the price of {token} is dated in the future")
        confidence = _number(entry.get("confidence"))
        if "confidence" in entry and confidence is None:
            raise CoinPriceError(f"DefiLlama coins: the confidence of {token} is not a number")
        if self.min_confidence > 0 and (confidence is None or confidence < self.min_confidence):
            raise CoinPriceError(
                f"DefiLlama coins: the price of {token} has confidence {confidence}, below the "
                f"{self.min_confidence} required"
            )
        decimals = entry.get("decimals")
        return CoinPrice(
            key=key,
            price=price,
            symbol=symbol,
            decimals=decimals
            if isinstance(decimals, int) and not isinstance(decimals, bool)
            else None,
            timestamp=stamp,
            confidence=confidence,
        )
