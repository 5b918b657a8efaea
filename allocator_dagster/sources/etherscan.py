"""A client of Etherscan's V2 API: token and coin balances, and ERC-4626 `convertToAssets`.

V2 is one base URL for every chain, which a `chainid` parameter selects. Three calls are used:
`module=account&action=tokenbalance` (an ERC-20 balance), `module=account&action=balance` (the
chain's coin) and `module=proxy&action=eth_call` (a read-only contract call, here
`convertToAssets(uint256)`). Everything that comes back is hostile until checked: a balance is a
string of at most 78 digits (a uint256), a call result one 32-byte word.

The free tier allows a few calls per second: a `RateLimiter` spaces the calls, and the
`{"status":"0","message":"NOTOK","result":"Max rate limit reached"}` envelope (Etherscan says it
with HTTP 200) is retried with backoff, like HTTP 429/5xx (urllib3 `Retry`), all within one
overall deadline. The API key travels in the query string, as Etherscan requires, so every text
that leaves this module (errors, urllib3's retry warnings) goes through `redact_secret`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from allocator_dagster.redaction import redact_secret
from allocator_dagster.sources.http import FetchError, get_json, retrying_session

DEFAULT_BASE_URL = "https://api.etherscan.io/v2/api"
# keccak256("convertToAssets(uint256)")[:4]; a test recomputes it
CONVERT_TO_ASSETS = "0x07a2d13a"
UINT256_MAX = 2**256 - 1
_DIGITS = re.compile(r"^[0-9]{1,78}$")
_WORD = re.compile(r"^0x[0-9a-fA-F]{64}$")
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


class EtherscanError(RuntimeError):
    """Etherscan gave no usable answer; the message names the call and never holds the key."""


class RateLimiter:
    """At most `calls_per_second` calls, spaced evenly (thread-safe)."""

    def __init__(
        self,
        calls_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not calls_per_second > 0:
            raise ValueError(f"calls per second must be positive, got {calls_per_second!r}")
        self.interval = 1.0 / calls_per_second
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


class _RedactingFilter(logging.Filter):
    """Takes the client's key out of urllib3's log records (its retry warnings quote the URL)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = redact_secret(text, self.secret)
        if clean != text:
            record.msg, record.args = clean, None
        return True


def encode_uint256(value: int) -> str:
    """One ABI word: a uint256 as 64 hex digits, big-endian."""
    if not 0 <= value <= UINT256_MAX:
        raise ValueError(f"{value} is not a uint256")
    return f"{value:064x}"


def convert_to_assets_data(shares: int) -> str:
    """The calldata of `convertToAssets(shares)`: selector and one argument word."""
    return CONVERT_TO_ASSETS + encode_uint256(shares)


class EtherscanClient:
    """Reads balances and calls on any chain Etherscan V2 serves, within one deadline.

    `deadline_seconds` bounds everything the client does from its first call: one reading of
    the treasury makes one client.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        *,
        calls_per_second: float = 4.0,
        timeout: float = 20.0,
        retries: int = 4,
        deadline_seconds: float = 300.0,
        rate_limit_backoff: float = 1.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.timeout = timeout
        self.deadline_seconds = deadline_seconds
        self.rate_limit_backoff = rate_limit_backoff
        self.limiter = RateLimiter(calls_per_second, sleep=sleep)
        self.session = session or retrying_session(retries)
        self._sleep = sleep
        self._deadline_at: float | None = None
        self.calls = 0
        self.rate_limited = 0
        if api_key:
            self._filter = _RedactingFilter(api_key)
            for name in _URLLIB3_LOGGERS:
                logging.getLogger(name).addFilter(self._filter)

    def __repr__(self) -> str:  # never the key
        return f"EtherscanClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Stop filtering urllib3's logs for this client's key (they never hold it again)."""
        if self._api_key:
            for name in _URLLIB3_LOGGERS:
                logging.getLogger(name).removeFilter(self._filter)

    def __enter__(self) -> EtherscanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ............................................................ the three calls

    def token_balance(self, chain_id: int, token: str, wallet: str) -> int:
        """The raw ERC-20 balance (in the token's smallest unit) of `wallet`."""
        what = f"tokenbalance of {token} for {wallet} on chain {chain_id}"
        params = {"module": "account", "action": "tokenbalance"}
        params |= {"contractaddress": token, "address": wallet, "tag": "latest"}
        return self._uint(self._account(chain_id, params, what), what)

    def native_balance(self, chain_id: int, wallet: str) -> int:
        """The raw balance of the chain's own coin (wei on Ethereum) of `wallet`."""
        what = f"balance of {wallet} on chain {chain_id}"
        params = {"module": "account", "action": "balance", "address": wallet, "tag": "latest"}
        return self._uint(self._account(chain_id, params, what), what)

    def convert_to_assets(self, chain_id: int, vault: str, shares: int) -> int:
        """What `shares` of the ERC-4626 `vault` are worth in its underlying's smallest unit."""
        what = f"convertToAssets({shares}) of {vault} on chain {chain_id}"
        params = {"module": "proxy", "action": "eth_call", "to": vault}
        params |= {"data": convert_to_assets_data(shares), "tag": "latest"}
        payload = self._get(chain_id, params, what)
        if isinstance(payload.get("error"), dict):
            message = str(payload["error"].get("message", ""))[:160]
            raise self._error(what, f"the call failed: {message!r}")
        result = payload.get("result")
        if result == "0x":
            raise self._error(what, "the call returned no data: is it an ERC-4626 vault?")
        if not isinstance(result, str) or not _WORD.match(result):
            raise self._error(what, f"expected one 32-byte word, got {_quote(result)}")
        return int(result, 16)

    # ............................................................ envelopes

    def _account(self, chain_id: int, params: dict[str, str], what: str) -> Any:
        payload = self._get(chain_id, params, what)
        if payload.get("status") != "1":
            message, result = payload.get("message"), payload.get("result")
            raise self._error(
                what, f"status {payload.get('status')!r}: {message!r}, {_quote(result)}"
            )
        return payload.get("result")

    def _get(self, chain_id: int, params: dict[str, str], what: str) -> dict[str, Any]:
        """The JSON object of one call; rate-limit envelopes are retried within the deadline."""
        if self._deadline_at is None:
            self._deadline_at = time.monotonic() + self.deadline_seconds
        query = {"chainid": str(chain_id), **params}
        if self._api_key:
            query["apikey"] = self._api_key
        pause = self.rate_limit_backoff
        while True:
            self.limiter.wait()
            self.calls += 1
            try:
                payload = get_json(
                    self.session,
                    self.base_url,
                    params=query,
                    timeout=self.timeout,
                    deadline_at=self._deadline_at,
                )
            except FetchError as exc:
                raise self._error(what, str(exc)) from None
            if not isinstance(payload, dict):
                raise self._error(what, f"expected a JSON object, got {type(payload).__name__}")
            if not _rate_limited(payload):
                return payload
            self.rate_limited += 1
            result = str(payload.get("result"))
            if "daily" in result.lower():
                raise self._error(what, f"{result[:120]!r}: the key's daily quota is spent")
            remaining = self._deadline_at - time.monotonic()
            if remaining <= pause:
                raise self._error(
                    what,
                    f"still rate limited ({result[:80]!r}) after {self.rate_limited} "
                    f"retries when the deadline of {self.deadline_seconds:g} s ran out: "
                    "lower calls_per_second or raise the deadline",
                )
            self._sleep(pause)
            pause = min(pause * 2, 30.0)

    def _uint(self, value: object, what: str) -> int:
        if not isinstance(value, str) or not _DIGITS.match(value) or int(value) > UINT256_MAX:
            raise self._error(what, f"expected a balance in digits, got {_quote(value)}")
        return int(value)

    def _error(self, what: str, problem: str) -> EtherscanError:
        text = f"Etherscan {what}: {problem}"
        return EtherscanError(redact_secret(text, self._api_key))


def _rate_limited(payload: dict[str, Any]) -> bool:
    result = payload.get("result")
    return (
        payload.get("status") == "0" and isinstance(result, str) and "rate limit" in result.lower()
    )


def _quote(value: object) -> str:
    return repr(value)[:120]
