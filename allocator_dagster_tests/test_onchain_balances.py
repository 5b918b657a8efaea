"""Balances from the chain: valuation in exact cents, and one stored observation per day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster.model import Holdings
from allocator_dagster.onchain_balances import ObservationError, observe, observe_day
from allocator_dagster.pool_ingestion import ingest_sample_day, sample_universe
from allocator_dagster.positions import Positions, parse_positions
from allocator_dagster.sources.coins import CoinsClient
from allocator_dagster.sources.etherscan import EtherscanClient
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.balances import ETHERSCAN, imports_of, ledger_source
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster_tests.support.fake_chain import (
    ATOKEN,
    IDLE_USD,
    POOL_A_USD,
    POOL_B_USD,
    USDC,
    WALLETS,
    FakeCoins,
    FakeEtherscan,
    positions_yaml,
    stocked,
)

POOLS = {"pool-a": "Ethereum", "pool-b": "Base"}  # pool id -> chain, as in the pool data
DAY = dt.date(2026, 3, 2)


@dataclass
class Chain:
    etherscan: FakeEtherscan
    coins: FakeCoins

    def clients(self) -> tuple[EtherscanClient, CoinsClient]:
        return (
            EtherscanClient(self.etherscan.base_url, calls_per_second=1000, retries=0),
            CoinsClient(self.coins.url, retries=0),
        )

    def observe(self, positions: Positions, known=POOLS):
        etherscan, coins = self.clients()
        return observe(positions, known, etherscan, coins)


@pytest.fixture
def chain() -> Iterator[Chain]:
    with stocked() as (etherscan, coins):
        yield Chain(etherscan, coins)


def _positions(pools=tuple(POOLS)) -> Positions:
    return parse_positions(positions_yaml(*pools), "positions.yaml")


def test_pools_and_idle_cash_are_valued_in_exact_cents(chain: Chain) -> None:
    observation = chain.observe(_positions())
    holdings = observation.holdings
    assert holdings.positions == {"pool-a": Decimal(POOL_A_USD), "pool-b": Decimal(POOL_B_USD)}
    assert holdings.idle_usd == Decimal(IDLE_USD)
    # both wallets were read for every token; the vault converted the summed shares
    assert observation.reading.assets["pool-b"] == (2_000_000 * 10**18, 2_100_000 * 10**6)
    assert len(observation.reading.balances) == 2 * 4
    assert observation.balances_file.source_file == "etherscan:positions.yaml"


def test_the_hash_covers_what_was_read(chain: Chain) -> None:
    positions = _positions()
    first = chain.observe(positions).balances_file.sha256
    assert chain.observe(positions).balances_file.sha256 == first  # same reading, same hash
    chain.etherscan.balances[(1, ATOKEN, WALLETS[1])] += 1  # one micro-USDC more
    again = chain.observe(positions)
    assert again.balances_file.sha256 != first
    assert again.holdings.positions["pool-a"] == Decimal(POOL_A_USD)  # below a cent


def test_nothing_held_is_no_position_and_a_zero_balance_reads_no_vault(chain: Chain) -> None:
    chain.etherscan.balances = {}
    observation = chain.observe(_positions())
    assert observation.holdings.positions == {} and observation.holdings.idle_usd == 0
    assert not any("eth_call" in r for r in chain.etherscan.requests)


def test_a_pool_unknown_to_the_day_is_refused_before_any_call(chain: Chain) -> None:
    with pytest.raises(
        ObservationError,
        match="positions.pool-b: field 'pool' is not a pool of the day's pool data",
    ):
        chain.observe(_positions(), known={"pool-a": "Ethereum"})
    assert chain.etherscan.requests == [] and chain.coins.requests == []


def test_a_pool_on_another_chain_than_its_token_is_refused(chain: Chain) -> None:
    with pytest.raises(
        ObservationError,
        match="positions.pool-b: field 'chain_id': 8453 is Base, but the pool is on Avalanche",
    ):
        chain.observe(_positions(), known={"pool-a": "ethereum", "pool-b": "Avalanche"})
    assert chain.etherscan.requests == []


def test_decimals_that_disagree_with_defillama_are_refused(chain: Chain) -> None:
    chain.coins.prices[f"ethereum:{USDC}"]["decimals"] = 18
    with pytest.raises(
        ObservationError, match=f"ethereum:{USDC} \\(USDC\\) has 18 decimals at DefiLlama but 6"
    ):
        chain.observe(_positions())


def test_an_absurd_balance_is_refused(chain: Chain) -> None:
    chain.etherscan.balances[(1, ATOKEN, WALLETS[0])] = 10**40
    with pytest.raises(ObservationError, match="pool pool-a is .* an absurd balance or price"):
        chain.observe(_positions())


# ...................................................................... the day's observation


@pytest.fixture
def pool_day(engine: sa.Engine) -> tuple[str, str]:
    ingest_sample_day(engine, DAY, sample_universe(7, 60))
    universe = load_pool_day(engine, DAY).sort_values("pool")
    pools = [
        universe.loc[universe["chain"] == name, "pool"].iloc[0] for name in ("Ethereum", "Base")
    ]
    return str(pools[0]), str(pools[1])


def test_today_is_read_once_and_reused(engine: sa.Engine, pool_day, chain: Chain) -> None:
    positions = _positions(pool_day)
    first = observe_day(engine, DAY, lambda known: chain.observe(positions, known), today=DAY)
    assert first.record is not None
    with engine.connect() as conn:
        assert ledger_source(conn, DAY) == ETHERSCAN
        holdings = store.read_holdings(conn, DAY)
        (record,) = imports_of(conn, DAY)
    assert holdings is not None and holdings.positions == {
        pool_day[0]: Decimal(POOL_A_USD),
        pool_day[1]: Decimal(POOL_B_USD),
    }
    assert holdings.idle_usd == Decimal(IDLE_USD)
    assert record.source_file == "etherscan:positions.yaml"
    pool_chains = dict(zip(pool_day, ("Ethereum", "Base"), strict=True))
    assert record.file_sha256 == chain.observe(positions, pool_chains).balances_file.sha256
    assert record.total_usd == holdings.total_usd
    calls = len(chain.etherscan.requests)
    # a re-run (the same day, or later as a past day) reuses the stored observation
    for today in (DAY, DAY + dt.timedelta(days=3)):
        again = observe_day(engine, DAY, lambda known: chain.observe(positions, known), today=today)
        assert again.record is None and again.reused_source == ETHERSCAN
    assert len(chain.etherscan.requests) == calls


def test_a_past_day_without_an_observation_is_refused(
    engine: sa.Engine, pool_day, chain: Chain
) -> None:
    positions = _positions(pool_day)
    with pytest.raises(
        ObservationError,
        match="no observed balances stored for 2026-03-02, and on-chain balances exist only now \\(2026-03-05\\)",
    ):
        observe_day(
            engine, DAY, lambda known: chain.observe(positions, known), today=dt.date(2026, 3, 5)
        )
    assert chain.etherscan.requests == []


@pytest.mark.parametrize("fault", ["zero price", "malformed balance", "unknown pool"])
def test_hostile_data_stores_nothing(engine: sa.Engine, pool_day, chain: Chain, fault: str) -> None:
    positions = _positions(pool_day if fault != "unknown pool" else (pool_day[0], "not-a-pool"))
    if fault == "zero price":
        chain.coins.prices[f"ethereum:{USDC}"]["price"] = 0
    if fault == "malformed balance":
        chain.etherscan.overrides[("tokenbalance", ATOKEN)] = {
            "status": "1",
            "message": "OK",
            "result": "1.5",
        }
    with engine.begin() as conn:  # yesterday's plan left paper rows for the day
        store.write_holdings(conn, DAY, Holdings.idle(Decimal("5.00")), source="paper")
    with pytest.raises(ObservationError):
        observe_day(engine, DAY, lambda known: chain.observe(positions, known), today=DAY)
    with engine.connect() as conn:
        assert ledger_source(conn, DAY) == "paper" and imports_of(conn, DAY) == []
