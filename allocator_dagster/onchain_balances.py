"""Balances from the chain: what the treasury's wallets hold now, valued in exact cents.

For each pool of the positions file, the receipt token's balance is summed over the wallets and
valued as `balance x (1 for erc20 | convertToAssets for erc4626) / 10^decimals x price of the
underlying`; idle cash is the idle tokens' balances at their prices. All in Decimal, each pool
(and the idle cash) rounded once to the cent with money.py.

On-chain balances exist only "now": a day's observation is read once, when that day is today
(UTC), and stored in daily_ledger with source `etherscan` and a record of when, from what, and
the SHA-256 of everything read (balances, vault conversions, prices, the positions file). A
re-run of the day reuses the stored observation; a past day without one is refused, never
filled with today's chain state. Any problem stores nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

import sqlalchemy as sa

from allocator_dagster.balances_import import BalancesFile
from allocator_dagster.model import Holdings
from allocator_dagster.money import check_usd, to_cents
from allocator_dagster.positions import YIELDS_CHAIN_NAMES, Positions
from allocator_dagster.sources.coins import CoinPrice, CoinPriceError, CoinsClient
from allocator_dagster.sources.etherscan import EtherscanClient, EtherscanError
from allocator_dagster.storage.balances import (
    ETHERSCAN,
    IMPORTED,
    BalanceImport,
    import_balances,
    imports_of,
    ledger_source,
)
from allocator_dagster.storage.pool_reads import load_pool_day

OBSERVED_BY = "etherscan balances source"
_PRECISION = 120  # digits: a uint256 (78) times a price never loses one before the cent


class ObservationError(ValueError):
    """The chain's balances cannot be observed or valued; nothing was stored."""


@dataclass(frozen=True)
class Reading:
    """Everything read for one observation (the hash covers exactly this)."""

    balances: dict[tuple[int, str, str], int]  # (chain id, token or "native", wallet) -> raw
    assets: dict[str, tuple[int, int]]  # erc4626 pool -> (shares, convertToAssets(shares))
    prices: dict[str, CoinPrice]  # "{chain}:{address}" -> checked price

    def sha256(self, positions: Positions) -> str:
        document = {
            "positions_sha256": positions.sha256,
            "balances": sorted([c, t, w, str(v)] for (c, t, w), v in self.balances.items()),
            "assets": {p: [str(s), str(a)] for p, (s, a) in sorted(self.assets.items())},
            "prices": {
                k: [str(p.price), p.timestamp, str(p.confidence)]
                for k, p in sorted(self.prices.items())
            },
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Observation:
    holdings: Holdings
    reading: Reading
    balances_file: BalancesFile  # what the ledger import stores (holdings, source, hash)


def pool_errors(positions: Positions, pool_chains: Mapping[str, str]) -> list[str]:
    """Pools the day's pool data (pool id -> chain) does not know, or knows on another chain."""
    errors = []
    for pool, entry in positions.pools.items():
        where = f"{positions.source_file}: positions.{pool}"
        if pool not in pool_chains:
            errors.append(f"{where}: field 'pool' is not a pool of the day's pool data")
            continue
        expected = YIELDS_CHAIN_NAMES.get(entry.chain_id)
        if expected is not None and expected.lower() != str(pool_chains[pool]).lower():
            errors.append(
                f"{where}: field 'chain_id': {entry.chain_id} is {expected}, but the pool is on "
                f"{pool_chains[pool]}"
            )
    return errors


def read_chain(positions: Positions, etherscan: EtherscanClient, coins: CoinsClient) -> Reading:
    """Balances of every token in every wallet, vault conversions and prices (no valuation)."""
    balances: dict[tuple[int, str, str], int] = {}
    tokens = [(e.chain_id, e.token) for e in positions.pools.values()]
    tokens += [(e.chain_id, e.token) for e in positions.idle]
    for chain_id, token in tokens:
        for wallet in positions.wallets:
            balances[(chain_id, token, wallet)] = (
                etherscan.native_balance(chain_id, wallet)
                if token == "native"
                else etherscan.token_balance(chain_id, token, wallet)
            )
    assets = {}
    for pool, entry in positions.pools.items():
        if entry.kind == "erc4626":
            shares = _summed(balances, entry.chain_id, entry.token)
            converted = (
                etherscan.convert_to_assets(entry.chain_id, entry.token, shares) if shares else 0
            )
            assets[pool] = (shares, converted)
    keys = [positions.price_key(e.chain_id, e.underlying) for e in positions.pools.values()]
    keys += [positions.price_key(e.chain_id, e.token) for e in positions.idle]
    return Reading(balances=balances, assets=assets, prices=coins.prices(keys))


def _summed(balances: dict[tuple[int, str, str], int], chain_id: int, token: str) -> int:
    return sum(v for (c, t, _), v in balances.items() if (c, t) == (chain_id, token))


def _price(
    positions: Positions, reading: Reading, chain_id: int, token: str, decimals: int
) -> Decimal:
    key = positions.price_key(chain_id, token)
    price = reading.prices.get(key)
    if price is None:
        raise ObservationError(f"no price was read for {key}")
    if price.decimals is not None and price.decimals != decimals:
        raise ObservationError(
            f"{key} ({price.symbol}) has {price.decimals} decimals at DefiLlama but "
            f"{decimals} in the positions file: check the token address and its decimals"
        )
    return price.price


def value(positions: Positions, reading: Reading) -> Holdings:
    """The observed holdings in exact cents (pools with nothing held are left out)."""
    out: dict[str, Decimal] = {}
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        for pool, entry in positions.pools.items():
            if entry.kind == "erc4626":
                units = reading.assets[pool][1]
            else:
                units = _summed(reading.balances, entry.chain_id, entry.token)
            if units:
                price = _price(
                    positions, reading, entry.chain_id, entry.underlying, entry.asset_decimals
                )
                out[pool] = _usd(units, entry.asset_decimals, price, f"pool {pool}")
        idle = Decimal(0)
        for item in positions.idle:
            units = _summed(reading.balances, item.chain_id, item.token)
            if units:
                price = _price(positions, reading, item.chain_id, item.token, item.decimals)
                idle += Decimal(units).scaleb(-item.decimals) * price
        idle_usd = _cents(idle, "the idle cash")
    holdings = Holdings(positions=out, idle_usd=idle_usd)
    check_usd(holdings.total_usd, "the observed total")
    return holdings


def _usd(units: int, decimals: int, price: Decimal, what: str) -> Decimal:
    return _cents(Decimal(units).scaleb(-decimals) * price, what)


def _cents(amount: Decimal, what: str) -> Decimal:
    try:
        check_usd(amount, what)
    except ValueError as exc:
        raise ObservationError(f"{exc}: an absurd balance or price") from None
    return to_cents(amount)


def observe(
    positions: Positions,
    pool_chains: Mapping[str, str],
    etherscan: EtherscanClient,
    coins: CoinsClient,
) -> Observation:
    """Read and value the treasury now; a pool the day's pool data (pool id -> chain) lacks, or
    has on another chain, is refused before any call."""
    errors = pool_errors(positions, pool_chains)
    if errors:
        raise ObservationError("\n".join(errors))
    reading = read_chain(positions, etherscan, coins)
    holdings = value(positions, reading)
    source = f"{ETHERSCAN}:{positions.source_file}"
    file = BalancesFile(holdings=holdings, source_file=source, sha256=reading.sha256(positions))
    return Observation(holdings=holdings, reading=reading, balances_file=file)


@dataclass(frozen=True)
class DayObservation:
    record: BalanceImport | None  # the observation stored now; None when one was reused
    reused_source: str | None  # the stored rows' source when reused


def observe_day(
    engine: sa.Engine,
    day: dt.date,
    observer: Callable[[Mapping[str, str]], Observation],
    *,
    today: dt.date | None = None,
) -> DayObservation:
    """Make sure `day` has observed balances: reuse the stored ones, or read the chain if `day`
    is today, storing them in one transaction; a past or future day without them is refused."""
    today = today or dt.datetime.now(dt.UTC).date()
    with engine.connect() as conn:
        source = ledger_source(conn, day)
        stored = imports_of(conn, day) if source in (ETHERSCAN, IMPORTED) else []
    if stored:
        return DayObservation(record=None, reused_source=source)
    if day != today:
        raise ObservationError(
            f"no observed balances stored for {day}, and on-chain balances exist only now "
            f"({today}): the etherscan source reads a day only while it is today. Import that "
            f"day's balances with `allocator balances import --day {day} FILE` to run it"
        )
    universe = load_pool_day(engine, day)
    if universe.empty:
        raise ObservationError(
            f"no pool data stored for {day}: materialise pool_daily_metrics first"
        )
    try:
        chains = dict(zip(universe["pool"].astype(str), universe["chain"].astype(str), strict=True))
        observation = observer(chains)
    except (ValueError, EtherscanError, CoinPriceError) as exc:  # hostile or unreachable data
        if isinstance(exc, ObservationError):
            raise
        raise ObservationError(str(exc)) from None
    record = import_balances(
        engine, day, observation.balances_file, by=OBSERVED_BY, source=ETHERSCAN
    )
    return DayObservation(record=record, reused_source=None)
