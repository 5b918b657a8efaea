"""ALLOCATOR_BALANCES_SOURCE=etherscan through Dagster, against local Etherscan and coins servers:
today's partition reads the chain once and decides from it, a re-run reuses the stored
observation, a past day is refused, and the key never shows. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, EnvVar

from allocator_dagster.defs.allocation.assets import CHAIN_KEYS
from allocator_dagster.defs.resources import AllocationResource, OnchainBalancesConfig
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.balances import ETHERSCAN, imports_of, ledger_source
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster_tests.support.allocation_runs import chain_resources, run_days
from allocator_dagster_tests.support.fake_chain import (
    IDLE_USD,
    POOL_A_USD,
    POOL_B_USD,
    FakeCoins,
    FakeEtherscan,
    positions_yaml,
    stocked,
)

KEY = "k7Qz9VwX2mL4pR8tY1nB6cJ3hF5"
POOLS = AssetSelection.keys("pool_daily_metrics")
CHAIN = AssetSelection.keys(*CHAIN_KEYS)


def _resources(
    database_url: str, positions: Path, etherscan: FakeEtherscan, coins: FakeCoins
) -> dict:
    resources = chain_resources(database_url)
    resources["allocation"] = AllocationResource(
        balances_source="etherscan",
        onchain=OnchainBalancesConfig(
            positions_file=str(positions),
            etherscan_api_key=EnvVar("ETHERSCAN_API_KEY"),
            etherscan_base_url=etherscan.base_url,
            coins_url=coins.url,
            calls_per_second=50.0,
        ),
    )
    return resources


def _day_held(
    database_url: str,
    day: dt.date,
    tmp_path: Path,
    instance: DagsterInstance,
    chain: tuple[FakeEtherscan, FakeCoins],
) -> tuple[dict, tuple[str, str]]:
    """The day's pool data stored, and the positions file putting the treasury's two tokens on
    the largest pool of each of their chains: the run's resources and those two pools."""
    positions = tmp_path / "positions.yaml"
    resources = _resources(database_url, positions, *chain)
    assert run_days(resources, day, selection=POOLS, instance=instance).success
    universe = load_pool_day(get_engine(database_url), day)
    universe = universe.sort_values("tvlUsd", ascending=False)
    first, second = (
        str(universe.loc[universe["chain"] == c, "pool"].iloc[0]) for c in ("Ethereum", "Base")
    )
    positions.write_text(positions_yaml(first, second))
    return resources, (first, second)


def _error_text(result) -> str:
    error = result.get_step_failure_events()[0].event_specific_data.error
    return error.message + (error.cause.message if error.cause else "")


def _everything_recorded(instance: DagsterInstance) -> str:
    """Every event, log message, metadata entry and run config the instance holds."""
    runs = instance.get_runs()
    return "\n".join(
        repr(run.run_config) + "\n".join(repr(e) for e in instance.all_logs(run.run_id))
        for run in runs
    )


def test_a_day_from_the_chain(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETHERSCAN_API_KEY", KEY)
    today = dt.datetime.now(dt.UTC).date()
    engine = get_engine(database_url)
    instance = DagsterInstance.ephemeral()
    with stocked(api_key=KEY, calls_per_second=20) as (etherscan, coins):
        resources, held = _day_held(database_url, today, tmp_path, instance, (etherscan, coins))
        first = run_days(resources, today, selection=CHAIN, instance=instance)
        assert first.success
        calls = len(etherscan.requests)
        assert calls == 2 * 4 + 1  # 4 tokens in 2 wallets, one convertToAssets
        with engine.connect() as conn:
            assert ledger_source(conn, today) == ETHERSCAN
            observed = store.read_holdings(conn, today)
            (record,) = imports_of(conn, today)
            allocation = store.read_allocation(conn, today)
        assert observed is not None and observed.positions == {
            held[0]: Decimal(POOL_A_USD),
            held[1]: Decimal(POOL_B_USD),
        }
        assert observed.idle_usd == Decimal(IDLE_USD)
        assert record.source_file == "etherscan:positions.yaml" and len(record.file_sha256) == 64
        # the day's decision started from what the chain holds
        assert allocation is not None and allocation.total_usd == observed.total_usd
        balances = next(
            m for m in first.asset_materializations_for_node("allocation_chain")
            if m.asset_key.path == ["balances"]
        )  # fmt: skip
        assert balances.metadata["total_usd"].value == float(observed.total_usd)

        # a re-run of the day reuses the observation: no chain read, the same result
        etherscan.balances.clear()
        again = run_days(resources, today, selection=CHAIN, instance=instance)
        assert again.success and len(etherscan.requests) == calls
        with engine.connect() as conn:
            assert store.read_allocation(conn, today).result_hash == allocation.result_hash
            assert len(imports_of(conn, today)) == 1

        # a past day has no observation and on-chain balances are only "now"
        yesterday = today - dt.timedelta(days=1)
        assert run_days(resources, yesterday, selection=POOLS, instance=instance).success
        past = run_days(resources, yesterday, selection=CHAIN, instance=instance)
        assert not past.success
        assert "on-chain balances exist only now" in _error_text(past)
        assert len(etherscan.requests) == calls

    assert KEY not in _everything_recorded(instance)


def test_the_key_is_never_recorded_when_the_chain_refuses(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETHERSCAN_API_KEY", KEY)
    today = dt.datetime.now(dt.UTC).date()
    engine = get_engine(database_url)
    instance = DagsterInstance.ephemeral()
    with stocked(api_key="the-server-wants-another") as (etherscan, coins):
        resources, _ = _day_held(database_url, today, tmp_path, instance, (etherscan, coins))
        failed = run_days(resources, today, selection=CHAIN, instance=instance)
        assert any(f"apikey={KEY}" in r for r in etherscan.requests)  # it was sent
    assert not failed.success
    assert "Invalid API Key" in _error_text(failed)
    with engine.connect() as conn:
        assert ledger_source(conn, today) is None  # nothing stored
    recorded = _everything_recorded(instance)
    assert "Invalid API Key" in recorded
    for i in range(len(KEY) - 7):
        assert KEY[i : i + 8] not in recorded
