"""The sample's pools: who they are (chain, protocol, tokens, id) and their process parameters.

Everything is drawn once from a generator seeded by (seed, 0), in a fixed order, so a pool's
identity and parameters depend only on (seed, n_pools); `sample.py` then moves them day by day.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from allocator_dagster.sources.sample_catalogue import (
    APY_LEVEL,
    CHAIN_STYLE,
    CHAIN_TOKENS,
    CHAIN_WEIGHT,
    DEX,
    FEE_TIERS,
    GOV,
    KIND_APY,
    KIND_BETA,
    KIND_HACK,
    KIND_NOISE,
    KIND_REWARD_SHARE,
    KIND_TVL_BONUS,
    LENDING,
    LENDING_APY,
    LST,
    P_DEPEG,
    PROTOCOLS,
    SAVINGS,
    SOL,
    STABLE,
    STABLE_DEX,
    TOKEN_CLASS,
    VAULT,
    Protocol,
    token_address,
)


@cache
def _address(chain: str, symbol: str) -> str:
    return token_address(chain, symbol)


def _pick(options: tuple[str, ...] | list[str], x: float) -> str:
    return options[min(int(x * len(options)), len(options) - 1)]


@cache
def _chain_tokens(chain: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(stablecoins, volatile tokens, volatile tokens that are not governance tokens) of a chain."""
    available = CHAIN_TOKENS[chain]
    stables = tuple(t for t in available if TOKEN_CLASS[t] == STABLE)
    volatile = tuple(t for t in available if TOKEN_CLASS[t] != STABLE)
    majors = tuple(t for t in volatile if TOKEN_CLASS[t] != GOV) or volatile
    return stables, volatile, majors


def _pick_tokens(proto: Protocol, chain: str, a: float, b: float, c: float) -> list[str]:
    """The tokens of a new pool of `proto` on `chain`, from three uniform draws."""
    if proto.tokens:
        return list(proto.tokens)
    stables, volatile, majors = _chain_tokens(chain)
    pick = _pick
    if proto.kind == LENDING:
        if a < 0.5:
            return [pick(stables, b)]
        return [pick(majors if a < 0.85 else volatile, b)]
    if proto.kind == VAULT and a < 0.6:
        return [pick(stables if b < 0.5 else majors, c)]
    if (proto.kind == STABLE_DEX and a < 0.7) or (proto.kind == DEX and a < 0.15):
        if len(stables) < 2:
            return [pick(stables, b), pick(majors, c)]
        first = pick(stables, b)
        rest = [t for t in stables if t != first]
        pair = sorted([first, pick(rest, c)])
        if proto.slug == "curve-dex" and c > 0.75 and len(stables) >= 3:
            third = [t for t in stables if t not in pair][0]
            pair = sorted([*pair, third])
        return pair
    if a < 0.6:  # volatile-stable
        return [pick(volatile if b < 0.3 else majors, c), pick(stables, b)]
    first = pick(majors, b)
    others = [t for t in volatile if t != first] or [first]
    return [first, pick(others, c)]


def _pool_meta(proto: Protocol, parts: list[str], x: float) -> str | None:
    """DefiLlama's poolMeta: fee tier, market or vault name where the protocol has one."""
    if proto.slug in ("uniswap-v3", "uniswap-v4", "pancakeswap-amm-v3", "aerodrome-slipstream"):
        return FEE_TIERS[min(int(x * len(FEE_TIERS)), len(FEE_TIERS) - 1)]
    if proto.slug == "compound-v3":
        return "USDC-pool" if x < 0.6 else "WETH-pool"
    if proto.slug == "morpho-blue":
        curators = ("Steakhouse", "Gauntlet", "Re7", "MEV Capital", "Smokehouse")
        return f"{curators[min(int(x * 5), 4)]} {parts[0]}"
    if proto.slug == "pendle":
        return ("Maturity 26MAR2026", "Maturity 25JUN2026", "Maturity 24DEC2026")[
            min(int(x * 3), 2)
        ]
    if proto.slug == "aave-v3" and x < 0.1:
        return "Aave Horizon Market"
    return None


def _uuid4(raw: bytes) -> str:
    """A version-4 UUID string from 16 bytes (DefiLlama's pool id format)."""
    h = bytearray(raw)
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def pool_uuid(seed: int, *parts: object) -> str:
    """A stable pool id derived from `seed` and `parts` (the ids of the sample's bad records)."""
    return _uuid4(hashlib.sha256(repr((seed, *parts)).encode()).digest()[:16])


@dataclass(frozen=True)
class PoolIdentities:
    """Who each pool is, index-aligned lists: what `/pools` says about it besides the numbers."""

    pool_ids: list[str]
    chains: list[str]
    projects: list[str]
    symbols: list[str]
    underlying: list[tuple[str, ...] | None]
    pool_meta: list[str | None]
    kinds: list[str]
    classes: list[str]  # the token class of a pool whose tokens share one, else "mixed"
    stablecoin: list[bool]


@dataclass(frozen=True)
class SamplePools(PoolIdentities):
    """The static attributes of every pool, index-aligned: lists per pool and numpy arrays."""

    index: dict[str, int]  # pool id -> position
    exposure: list[str]
    il_risk: list[str]
    listing: np.ndarray  # first listed day, in days from the universe's start
    delisting: np.ndarray  # first day gone (far in the future for pools never delisted)
    mu: np.ndarray  # base APY level (percent)
    kappa: np.ndarray  # mean reversion of the log base APY per day
    sigma: np.ndarray  # daily shock of the log base APY
    noise: np.ndarray  # observation noise of the base APY (log units)
    base_null: np.ndarray  # reward-only farms: apyBase is null
    has_reward: np.ndarray
    half_life: np.ndarray  # of a reward campaign, in days
    amp0: np.ndarray  # reward APY of the campaign running at the start
    log_level: np.ndarray  # natural log of the TVL level in USD
    tau: np.ndarray  # TVL ramp-up time after launch, in days
    sig_g: np.ndarray  # TVL growth shock
    phi: np.ndarray  # TVL momentum persistence
    beta: np.ndarray  # loading of the log base APY on the market's common factor and regime
    loss_p: np.ndarray  # chance per day of a principal-loss event (a depeg or a hack)
    loss_min: np.ndarray  # the fraction of principal such an event takes: uniform in
    loss_max: np.ndarray  # [loss_min, loss_max)
    loss_tvl: np.ndarray  # the event's jump of log TVL (money leaves the pool)


def draw_pools(seed: int, n: int) -> SamplePools:
    """`n` pools drawn from the catalogue by a generator seeded by (seed, 0)."""
    rng = np.random.default_rng([seed, 0])
    weights = np.array([p.weight for p in PROTOCOLS])
    proto_idx = rng.choice(len(PROTOCOLS), size=n, p=weights / weights.sum())
    u = rng.random((n, 8))
    normals = rng.standard_normal((n, 6))
    ids = _identities(rng, proto_idx, u)
    index = {p: i for i, p in enumerate(ids.pool_ids)}
    if len(index) != n:  # pragma: no cover - sha256 collisions
        raise RuntimeError("generated pool ids collide")
    multi = np.array([len(s.split("-")) > 1 for s in ids.symbols])
    kind_arr = np.array(ids.kinds)
    il = multi & ~np.array(ids.stablecoin) & np.isin(kind_arr, [DEX, STABLE_DEX, VAULT])
    listing, delisting = _lifetimes(rng, u[:, 7])

    # Base APY process: mu * exp(x), x mean-reverting (OU), plus observation noise; levels
    # scaled to the real data's (APY_LEVEL).
    median, spread = _apy_median_spread(ids)
    mu = APY_LEVEL * median * np.exp(spread * normals[:, 0])
    kappa = 0.02 + 0.13 * rng.random(n)
    sigma = (0.03 + 0.09 * rng.random(n)) * np.where(kind_arr == SAVINGS, 0.3, 1.0)
    noise = np.array([KIND_NOISE[k] for k in ids.kinds]) * (0.5 + rng.random(n))
    base_null = rng.random(n) < 0.03  # reward-only farms: apyBase is null

    # Rewards: campaigns that start at launch (or later) and decay exponentially.
    share = np.array([KIND_REWARD_SHARE[k] for k in ids.kinds])
    has_reward = rng.random(n) < share
    base_null &= has_reward
    half_life = 15.0 + 185.0 * rng.random(n)
    amp0 = APY_LEVEL * np.exp(np.log(0.5) + np.log(80.0) * rng.random(n))

    # TVL: a level (log-uniform-ish over 1e5..1e10), momentum around it, ramp-up at launch.
    bonus = np.array([KIND_TVL_BONUS[k] for k in ids.kinds])
    log10_level = np.clip(5.0 + 5.0 * rng.beta(1.3, 2.2, n) + bonus, 5.0, 10.2)
    # Drawn last, so every draw above is what it was before the market factor existed.
    beta = np.array([KIND_BETA[k] for k in ids.kinds]) * (0.5 + rng.random(n))
    depeg = np.array(ids.stablecoin)  # a stablecoin pool loses principal by a depeg...
    loss_p = np.where(depeg, P_DEPEG, np.array([KIND_HACK[k] for k in ids.kinds]))
    return SamplePools(
        **vars(ids),
        index=index,
        exposure=["multi" if m else "single" for m in multi],
        il_risk=["yes" if flag else "no" for flag in il],
        listing=listing,
        delisting=delisting,
        mu=mu,
        kappa=kappa,
        sigma=sigma,
        noise=noise,
        base_null=base_null,
        has_reward=has_reward,
        half_life=half_life,
        amp0=amp0,
        log_level=log10_level * math.log(10.0),
        tau=5.0 + 35.0 * rng.random(n),
        sig_g=0.003 + 0.012 * rng.random(n),
        phi=0.6 + 0.3 * rng.random(n),
        beta=beta,
        loss_p=loss_p,
        loss_min=np.where(depeg, 0.02, 0.3),  # ...of a few percent; any other by a hack
        loss_max=np.where(depeg, 0.15, 1.0),
        loss_tvl=np.where(depeg, math.log(0.6), math.log(0.1)),
    )


def _identities(rng: np.random.Generator, proto_idx: np.ndarray, u: np.ndarray) -> PoolIdentities:
    """Protocol, chain, tokens, id and metadata of each pool (draws the 16-byte ids from `rng`)."""
    n = len(proto_idx)
    chain_cum = [
        np.cumsum([CHAIN_WEIGHT[c] for c in p.chains]) / sum(CHAIN_WEIGHT[c] for c in p.chains)
        for p in PROTOCOLS
    ]
    id_bytes = rng.bytes(16 * n)
    ids = PoolIdentities([], [], [], [], [], [], [], [], [])
    for i in range(n):
        proto = PROTOCOLS[proto_idx[i]]
        cum = chain_cum[proto_idx[i]]
        chain = proto.chains[min(bisect.bisect_left(cum, u[i, 0]), len(cum) - 1)]
        parts = _pick_tokens(proto, chain, u[i, 1], u[i, 2], u[i, 3])
        pool_id = _uuid4(id_bytes[16 * i : 16 * i + 16])
        if proto.kind == DEX and CHAIN_STYLE[chain] == "evm" and u[i, 5] < 0.15:
            # Some DEX pools are keyed by their pair address, like DefiLlama's.
            pool_id = f"0x{hashlib.sha256(pool_id.encode()).hexdigest()[:40]}-{chain.lower()}"
        ids.pool_ids.append(pool_id)
        ids.chains.append(chain)
        ids.projects.append(proto.slug)
        ids.symbols.append("-".join(parts))
        # DefiLlama leaves underlyingTokens null for some pools.
        ids.underlying.append(None if u[i, 6] < 0.04 else tuple(_address(chain, t) for t in parts))
        ids.pool_meta.append(_pool_meta(proto, parts, u[i, 4]))
        ids.kinds.append(proto.kind)
        cls = {TOKEN_CLASS[t] for t in parts}
        ids.classes.append(cls.pop() if len(cls) == 1 else "mixed")
        ids.stablecoin.append(all(TOKEN_CLASS[t] == STABLE for t in parts))
    return ids


def _lifetimes(rng: np.random.Generator, old_draw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(listing, delisting) in days from the start; delisted pools are gone from that day."""
    n = len(old_draw)
    old = old_draw < 0.88
    listing = np.where(old, -rng.integers(30, 1500, n), rng.integers(0, 700, n))
    delisted = rng.random(n) < 0.10
    earliest = np.maximum(listing, 0) + 30
    delist_day = earliest + (rng.random(n) * np.maximum(900 - earliest, 1)).astype(np.int64)
    return (
        listing.astype(np.int64),
        np.where(delisted, delist_day, np.iinfo(np.int64).max // 4),
    )


def _apy_median_spread(ids: PoolIdentities) -> tuple[np.ndarray, np.ndarray]:
    """Each pool's base APY median (percent) and spread (log units), by kind and token class."""
    n = len(ids.kinds)
    mu = np.empty(n)
    spread = np.empty(n)
    for i, (kind, cls) in enumerate(zip(ids.kinds, ids.classes, strict=True)):
        if kind == LENDING:
            mu[i], spread[i] = LENDING_APY.get(cls, LENDING_APY[GOV])
        elif kind == LST and cls == SOL:
            mu[i], spread[i] = 7.0, 0.15
        elif kind == DEX and ids.stablecoin[i]:
            mu[i], spread[i] = 2.5, 0.8
        else:
            mu[i], spread[i] = KIND_APY[kind]
    return mu, spread
