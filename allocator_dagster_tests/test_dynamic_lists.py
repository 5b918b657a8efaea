"""Which list changes touch a held pool (the sensor's rule), and what a valid entry is."""

import pytest

from allocator_dagster.dynamic_lists import (
    Change,
    HeldPool,
    ListValueError,
    forced_reasons,
    normalise_protocol,
    normalise_token,
)

USDC_ADDR = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
WETH_ADDR = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
POOL = HeldPool("p1", "uniswap-v3", ("USDC", "WETH"), (USDC_ADDR, WETH_ADDR))


def change(list_name: str, action: str, value: str) -> Change:
    return Change(1, list_name, action, value, "why", "ops")


def test_blacklist_icebox_and_protocol_removal_touch_the_pool() -> None:
    assert forced_reasons([change("blacklisted_tokens", "add", "WETH")], [POOL])
    assert forced_reasons([change("icebox_tokens", "add", WETH_ADDR)], [POOL])
    assert forced_reasons([change("approved_protocols", "remove", "uniswap-v3")], [POOL])
    assert not forced_reasons([change("blacklisted_tokens", "add", "DAI")], [POOL])
    assert not forced_reasons([change("blacklisted_tokens", "remove", "WETH")], [POOL])


def test_removing_an_approved_symbol_keeps_a_pool_whose_addresses_are_approved() -> None:
    removal = [change("approved_tokens", "remove", "WETH")]
    # MODEL.md: eligible when every symbol part OR every underlying address is approved
    assert not forced_reasons(removal, [POOL], approved_tokens_now=["USDC", USDC_ADDR, WETH_ADDR])
    assert forced_reasons(removal, [POOL], approved_tokens_now=["USDC", USDC_ADDR])


def test_entries_are_validated() -> None:
    assert normalise_token(" usdc ") == "USDC"
    assert normalise_token(WETH_ADDR.upper().replace("0X", "0x")) == WETH_ADDR
    assert normalise_token("coingecko:Ethereum") == "coingecko:ethereum"
    assert normalise_protocol("ether.fi-stake") == "ether.fi-stake"
    for bad in ("USDC-USDT", "a b", "", "x" * 50):
        with pytest.raises(ListValueError):
            normalise_token(bad)
    for bad in ("Aave V3", "aave_v3", "-aave"):
        with pytest.raises(ListValueError):
            normalise_protocol(bad)
