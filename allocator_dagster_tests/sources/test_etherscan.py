"""The Etherscan V2 client against a local server that speaks its envelopes and rate limit."""

from __future__ import annotations

import logging

import pytest

from allocator_dagster.redaction import KEY_FRAGMENT
from allocator_dagster.sources.etherscan import (
    CONVERT_TO_ASSETS,
    EtherscanClient,
    EtherscanError,
    RateLimiter,
    convert_to_assets_data,
    encode_uint256,
)
from allocator_dagster_tests.support.fake_chain import ATOKEN, VAULT, WALLETS, FakeEtherscan
from allocator_dagster_tests.support.keccak import keccak256

KEY = "K3YSECRET0123456789ABCDEFGHIJKLMN"


def _client(server: FakeEtherscan, **kwargs) -> EtherscanClient:
    kwargs = {"calls_per_second": 1000.0, "sleep": lambda _s: None, **kwargs}
    return EtherscanClient(server.base_url, server.api_key, **kwargs)


def _no_key_in(text: str) -> None:
    for i in range(len(KEY) - KEY_FRAGMENT + 1):
        assert KEY[i : i + KEY_FRAGMENT] not in text


def test_the_selector_is_keccak_of_the_signature() -> None:
    assert keccak256(b"").hex().startswith("c5d2460186f7233c927e7db2dcc703c0")  # the known vector
    assert keccak256(b"transfer(address,uint256)")[:4].hex() == "a9059cbb"
    assert "0x" + keccak256(b"convertToAssets(uint256)")[:4].hex() == CONVERT_TO_ASSETS


def test_calldata_is_the_selector_and_one_big_endian_word() -> None:
    assert convert_to_assets_data(1) == CONVERT_TO_ASSETS + "0" * 63 + "1"
    assert convert_to_assets_data(2**256 - 1) == CONVERT_TO_ASSETS + "f" * 64
    with pytest.raises(ValueError, match="not a uint256"):
        encode_uint256(2**256)
    with pytest.raises(ValueError, match="not a uint256"):
        encode_uint256(-1)


def test_balances_and_conversions_are_read_from_the_envelopes() -> None:
    with FakeEtherscan(api_key=KEY) as server:
        server.balances[(1, ATOKEN, WALLETS[0])] = 10**30
        server.balances[(1, "native", WALLETS[1])] = 15 * 10**17
        server.vaults[(8453, VAULT)] = (105, 100)
        with _client(server) as client:
            assert client.token_balance(1, ATOKEN, WALLETS[0]) == 10**30
            assert client.token_balance(1, ATOKEN, WALLETS[1]) == 0
            assert client.native_balance(1, WALLETS[1]) == 15 * 10**17
            assert client.convert_to_assets(8453, VAULT, 2 * 10**18) == 21 * 10**17
        assert "chainid=8453" in server.requests[-1] and "action=eth_call" in server.requests[-1]


def test_the_rate_limiter_spaces_calls_evenly() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == [0.5, 0.5, 0.5, 0.5]  # five calls at 2/s take two seconds
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


def test_a_rate_limit_envelope_is_retried_with_backoff() -> None:
    pauses: list[float] = []
    with FakeEtherscan() as server:
        server.balances[(1, ATOKEN, WALLETS[0])] = 7
        server.rate_limit_next = 3
        client = _client(server, sleep=pauses.append, rate_limit_backoff=0.5)
        assert client.token_balance(1, ATOKEN, WALLETS[0]) == 7
    assert server.rate_limited == 3 and client.rate_limited == 3
    # the same sleep also spaces calls to 1,000/s: those pauses are under 1 ms (a fast machine
    # makes none, a slow one may), the backoff's are the doubling 0.5, 1, 2 s
    assert [p for p in pauses if p >= 1e-3] == [0.5, 1.0, 2.0]
    assert all(p < 1e-3 for p in pauses if p not in (0.5, 1.0, 2.0))


def test_a_server_limited_per_second_is_never_exceeded_by_a_client_within_its_rate() -> None:
    with FakeEtherscan(calls_per_second=4) as server:
        client = EtherscanClient(server.base_url, calls_per_second=2.0)  # margin for a loaded CI
        for wallet in WALLETS * 4:
            assert client.token_balance(1, ATOKEN, wallet) == 0
    assert server.rate_limited == 0 and len(server.requests) == 8


def test_rate_limited_until_the_deadline_is_a_clear_error() -> None:
    with FakeEtherscan() as server:
        server.rate_limit_next = 10**6
        client = EtherscanClient(
            server.base_url, calls_per_second=100, deadline_seconds=0.3, rate_limit_backoff=0.05
        )
        with pytest.raises(EtherscanError, match="still rate limited .* deadline of 0.3 s"):
            client.token_balance(1, ATOKEN, WALLETS[0])
    assert len(server.requests) < 10


def test_a_spent_daily_quota_is_not_retried() -> None:
    with FakeEtherscan() as server:
        server.overrides[("tokenbalance", ATOKEN)] = {
            "status": "0", "message": "NOTOK", "result": "Max daily rate limit reached. 100000",
        }  # fmt: skip
        with pytest.raises(EtherscanError, match="daily quota"):
            _client(server).token_balance(1, ATOKEN, WALLETS[0])
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"status": "1", "message": "OK", "result": "-5"}, "expected a balance in digits"),
        ({"status": "1", "message": "OK", "result": "1e3"}, "expected a balance in digits"),
        ({"status": "1", "message": "OK", "result": 12}, "expected a balance in digits"),
        ({"status": "1", "message": "OK", "result": "9" * 79}, "expected a balance in digits"),
        ({"status": "1", "message": "OK", "result": str(2**256)}, "expected a balance in digits"),
        (
            {"status": "0", "message": "NOTOK", "result": "Error! Invalid address format"},
            "status '0'",
        ),
        (["not", "an", "object"], "expected a JSON object"),
        (b"<html>maintenance</html>", "not JSON"),
        (b'{"status": "1", "result": NaN}', "not JSON"),
    ],
)
def test_malformed_balances_are_refused_naming_the_call(payload: object, message: str) -> None:
    with FakeEtherscan() as server:
        server.overrides[("tokenbalance", ATOKEN)] = payload
        with pytest.raises(EtherscanError, match=message) as err:
            _client(server).token_balance(1, ATOKEN, WALLETS[0])
    assert f"tokenbalance of {ATOKEN} for {WALLETS[0]} on chain 1" in str(err.value)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"jsonrpc": "2.0", "id": 1, "result": "0x"}, "no data: is it an ERC-4626 vault"),
        ({"jsonrpc": "2.0", "id": 1, "result": "0x1234"}, "one 32-byte word"),
        ({"jsonrpc": "2.0", "id": 1, "result": "0x" + "zz" * 32}, "one 32-byte word"),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "execution reverted"}}, "execution reverted"),
    ],
)  # fmt: skip
def test_malformed_call_results_are_refused(payload: object, message: str) -> None:
    with FakeEtherscan() as server:
        server.overrides[("eth_call", VAULT)] = payload
        with pytest.raises(EtherscanError, match=message):
            _client(server).convert_to_assets(8453, VAULT, 10**18)


def test_an_unsupported_chain_is_an_error() -> None:
    with FakeEtherscan() as server, pytest.raises(EtherscanError, match="unsupported chainid"):
        _client(server).native_balance(999, WALLETS[0])


def test_the_key_never_appears_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeEtherscan(api_key="another-key") as server:  # the server refuses our key
        with pytest.raises(EtherscanError, match="Invalid API Key") as refused:
            EtherscanClient(server.base_url, KEY).token_balance(1, ATOKEN, WALLETS[0])
        server.http_errors_next = 10  # urllib3 retries, logging the URL (with its query)
        with pytest.raises(EtherscanError, match="HTTP 503") as busy:
            EtherscanClient(server.base_url, KEY, retries=1).token_balance(1, ATOKEN, WALLETS[0])
        assert any(f"apikey={KEY}" in path for path in server.requests)  # it was sent
    with pytest.raises(EtherscanError, match="request failed") as unreachable:
        EtherscanClient("http://127.0.0.1:9/v2/api", KEY, retries=0).native_balance(1, WALLETS[0])
    assert "127.0.0.1" in caplog.text  # urllib3 did log the requests
    for text in (str(refused.value), str(busy.value), str(unreachable.value), caplog.text):
        _no_key_in(text)
    assert KEY not in repr(EtherscanClient("http://x", KEY))
