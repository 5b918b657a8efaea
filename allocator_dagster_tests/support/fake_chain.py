"""Local stand-ins for Etherscan's V2 API and DefiLlama's coins API (threaded http.server).

`FakeEtherscan` answers `module=account&action=tokenbalance|balance` and
`module=proxy&action=eth_call` (ERC-4626 `convertToAssets`, decoded from the calldata) in
Etherscan's envelopes, checks the API key, and enforces a calls-per-second limit with the real
`{"status":"0","message":"NOTOK","result":"Max rate limit reached"}` answer (HTTP 200).
`FakeCoins` answers `/prices/current/{chain}:{address},...`. Both record every request and can
be told to answer a given call with any payload (hostile answers).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CONVERT_TO_ASSETS = "0x07a2d13a"
RATE_LIMITED = {"status": "0", "message": "NOTOK", "result": "Max rate limit reached"}
INVALID_KEY = {"status": "0", "message": "NOTOK", "result": "Invalid API Key"}


class _LocalServer:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with server.lock:
                    server.requests.append(self.path)
                status, payload = server.answer(self.path)
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def answer(self, path: str) -> tuple[int, Any]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):  # type: ignore[no-untyped-def]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class FakeEtherscan(_LocalServer):
    """Etherscan V2 at `{url}/v2/api`: balances and vault rates set by the test."""

    def __init__(self, api_key: str = "", calls_per_second: float | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.calls_per_second = calls_per_second
        self.chains = {1, 10, 8453, 42161}
        self.balances: dict[tuple[int, str, str], int] = {}  # (chain, token|"native", wallet)
        self.vaults: dict[tuple[int, str], tuple[int, int]] = {}  # assets = shares * n // d
        self.overrides: dict[tuple[str, str], Any] = {}  # (action, token|wallet) -> payload
        self.rate_limit_next = 0  # answer this many calls with the rate-limit envelope
        self.http_errors_next = 0  # answer this many calls with HTTP 503
        self.rate_limited = 0
        self._recent: deque[float] = deque()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2/api"

    def answer(self, path: str) -> tuple[int, Any]:
        parts = urlsplit(path)
        if parts.path != "/v2/api":
            return 404, b"not found"
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            if self.http_errors_next > 0:
                self.http_errors_next -= 1
                return 503, b"busy"
            if self.rate_limit_next > 0 or self._over_rate():
                self.rate_limit_next = max(0, self.rate_limit_next - 1)
                self.rate_limited += 1
                return 200, RATE_LIMITED
        if self.api_key and q.get("apikey") != self.api_key:
            return 200, INVALID_KEY
        try:
            chain = int(q.get("chainid", ""))
        except ValueError:
            chain = -1
        if chain not in self.chains:
            return 200, {"status": "0", "message": "NOTOK", "result": "Missing or unsupported chainid parameter (required for v2 api)"}  # fmt: skip
        action = q.get("action", "")
        subject = (q.get("contractaddress") or q.get("to") or q.get("address") or "").lower()
        if (action, subject) in self.overrides:
            return 200, self.overrides[(action, subject)]
        if q.get("module") == "account" and action == "tokenbalance":
            key = (chain, q["contractaddress"].lower(), q["address"].lower())
            return 200, {"status": "1", "message": "OK", "result": str(self.balances.get(key, 0))}
        if q.get("module") == "account" and action == "balance":
            key = (chain, "native", q["address"].lower())
            return 200, {"status": "1", "message": "OK", "result": str(self.balances.get(key, 0))}
        if q.get("module") == "proxy" and action == "eth_call":
            return 200, self._eth_call(chain, q.get("to", "").lower(), q.get("data", ""))
        return 200, {"status": "0", "message": "NOTOK", "result": "Error! Missing Or invalid Module name"}  # fmt: skip

    def _over_rate(self) -> bool:
        if self.calls_per_second is None:
            return False
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.calls_per_second:
            return True
        self._recent.append(now)
        return False

    def _eth_call(self, chain: int, to: str, data: str) -> dict:
        rate = self.vaults.get((chain, to))
        if rate is None or not data.startswith(CONVERT_TO_ASSETS) or len(data) != 10 + 64:
            return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "execution reverted"}}  # fmt: skip
        shares = int(data[10:], 16)
        return {"jsonrpc": "2.0", "id": 1, "result": "0x" + f"{shares * rate[0] // rate[1]:064x}"}


class FakeCoins(_LocalServer):
    """DefiLlama's coins API: `prices[key] = {"price": ..., ...}` (timestamp defaults to now)."""

    def __init__(self) -> None:
        super().__init__()
        self.prices: dict[str, dict[str, Any]] = {}
        self.raw: bytes | None = None  # answer every call with these bytes

    def set_price(self, key: str, price: Any, symbol: str, decimals: int, **extra: Any) -> None:
        entry = {"price": price, "symbol": symbol, "decimals": decimals}
        entry |= {"timestamp": int(time.time()), "confidence": 0.99} | extra
        self.prices[key.lower()] = entry

    def answer(self, path: str) -> tuple[int, Any]:
        if self.raw is not None:
            return 200, self.raw
        prefix = "/prices/current/"
        if not path.startswith(prefix):
            return 404, b"not found"
        keys = unquote(urlsplit(path).path[len(prefix) :]).split(",")
        coins = {k: self.prices[k.lower()] for k in keys if k.lower() in self.prices}
        return 200, {"coins": coins}


# A small treasury the tests share: two wallets, an Aave-like erc20 receipt on Ethereum, an
# ERC-4626 vault on Base, and idle USDC and ETH.
WALLETS = ("0x" + "a1" * 20, "0x" + "b2" * 20)
USDC = "0x" + "c3" * 20
USDC_BASE = "0x" + "c4" * 20
ATOKEN = "0x" + "d5" * 20
VAULT = "0x" + "e6" * 20
# 1,500,000.123456 aUSDC x 0.9998
POOL_A_USD = "1499700.12"
# 2,000,000 shares -> 2,100,000 USDC x 1.0001
POOL_B_USD = "2100210.00"
# 250,000.555555 USDC x 0.9998 + 1.5 ETH x 3000.12
IDLE_USD = "254450.74"


def positions_yaml(pool_a: str, pool_b: str) -> str:
    return f"""\
wallets:
  - "{WALLETS[0]}"
  - "{WALLETS[1]}"
positions:
  "{pool_a}":
    chain_id: 1
    token: "{ATOKEN}"
    decimals: 6
    kind: erc20
    underlying: "{USDC}"
  "{pool_b}":
    chain_id: 8453
    token: "{VAULT}"
    decimals: 18
    kind: erc4626
    underlying: "{USDC_BASE}"
    underlying_decimals: 6
idle:
  - {{chain_id: 1, token: "{USDC}", decimals: 6}}
  - {{chain_id: 1, token: native, decimals: 18}}
"""


def stock(etherscan: FakeEtherscan, coins: FakeCoins) -> None:
    """The treasury's balances and the prices (USDC 0.9998, USDC on Base 1.0001, ETH 3000.12)."""
    w1, w2 = WALLETS
    etherscan.balances |= {
        (1, ATOKEN, w1): 1_000_000_123_456,
        (1, ATOKEN, w2): 500_000_000_000,
        (8453, VAULT, w1): 2_000_000 * 10**18,
        (1, USDC, w2): 250_000_555_555,
        (1, "native", w1): 15 * 10**17,
    }
    etherscan.vaults[(8453, VAULT)] = (105, 100 * 10**12)  # 1 share (1e18) -> 1.05 USDC (1e6)
    coins.set_price(f"ethereum:{USDC}", 0.9998, "USDC", 6)
    coins.set_price(f"base:{USDC_BASE}", 1.0001, "USDC", 6)
    coins.set_price("ethereum:0x0000000000000000000000000000000000000000", 3000.12, "ETH", 18)


@contextmanager
def stocked(**etherscan: Any) -> Iterator[tuple[FakeEtherscan, FakeCoins]]:
    """Both servers running and stocked with the shared treasury (`stock`); `etherscan` are
    FakeEtherscan's options (api_key, calls_per_second)."""
    with FakeEtherscan(**etherscan) as server, FakeCoins() as coins:
        stock(server, coins)
        yield server, coins
