"""A generated pool universe in DefiLlama's shape, for development, tests and benchmarks.

The treasury cannot fetch the live API everywhere (CI has no network), yet the pipeline, the
forecast and the solvers need a realistic universe with a long history. `SampleUniverse` makes
one: 15 real chain names, 63 real protocol slugs (29 approved by default), lending, staking,
savings and DEX pools with realistic symbols and underlying token addresses (the real ones for
the main tokens), TVL spread over five orders of magnitude,
mean-reverting base APYs with noise and rare spikes, reward campaigns that decay after launch,
pools that are listed and delisted during the history, and a few broken records per day that
validation must reject.

Everything is a pure function of (seed, n_pools, start, day): histories are generated in
chunks of `CHUNK_DAYS` days, each from the state at the end of the previous chunk and a random
generator seeded by (seed, chunk number), so the result never depends on which days were asked
for first or on what the cache holds. Generation is vectorised over pools with numpy.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from allocator_dagster.parameters import DynamicLists
from allocator_dagster.sources.records import Rejection, validate_pool_records

CHUNK_DAYS = 32
CACHE_BYTES = 256 * 1024 * 1024  # generated chunks kept in memory, at most
HISTORY_BLOCKS = 4  # chunks of history rows kept as sorted frames (a 60-day window spans 3)
MEAN_WINDOW = 30  # apyMean30d: mean APY of the last 30 listed days, today included
P_SPIKE = 0.002  # per pool and day: an outlier base APY, 3x to 23x the usual
P_JUMP = 0.01  # per pool and day: a sudden TVL move of up to +-30 %
P_CAMPAIGN = 1.0 / 150.0  # per reward pool and day: a new reward campaign starts

# ------------------------------------------------------------------ chains and tokens

# (name, address style, weight of the chain when a protocol lives on several)
CHAINS: tuple[tuple[str, str, float], ...] = (
    ("Ethereum", "evm", 10.0),
    ("Arbitrum", "evm", 4.0),
    ("Base", "evm", 4.0),
    ("BSC", "evm", 3.0),
    ("Solana", "solana", 3.5),
    ("Polygon", "evm", 2.0),
    ("Avalanche", "evm", 1.5),
    ("OP Mainnet", "evm", 1.5),
    ("Linea", "evm", 0.8),
    ("Scroll", "evm", 0.6),
    ("Mantle", "evm", 0.8),
    ("Gnosis", "evm", 0.6),
    ("Sonic", "evm", 0.8),
    ("Tron", "tron", 1.0),
    ("Sui", "sui", 1.0),
)
CHAIN_STYLE = {name: style for name, style, _ in CHAINS}
CHAIN_WEIGHT = {name: weight for name, _, weight in CHAINS}

# Token classes drive the APY level of lending pools and the stablecoin flag.
STABLE, ETH, BTC, SOL, NATIVE, GOV = "stable", "eth", "btc", "sol", "native", "gov"
TOKEN_CLASS: dict[str, str] = {
    **dict.fromkeys(
        [
            "USDC",
            "USDT",
            "DAI",
            "USDS",
            "USDE",
            "FRAX",
            "PYUSD",
            "GHO",
            "CRVUSD",
            "LUSD",
            "FDUSD",
            "USDC.E",
            "USDD",
            "EURC",
            "WXDAI",
            "SUSDS",
            "SUSDC",
            "SUSDE",
            "USDY",
            "SYRUPUSDC",
            "BUIDL",
        ],
        STABLE,
    ),
    **dict.fromkeys(
        ["WETH", "ETH", "WSTETH", "STETH", "RETH", "WEETH", "CBETH", "METH", "WBETH"], ETH
    ),
    **dict.fromkeys(["WBTC", "CBBTC", "BTCB", "TBTC"], BTC),
    **dict.fromkeys(["SOL", "JITOSOL", "MSOL"], SOL),
    **dict.fromkeys(
        ["WBNB", "WAVAX", "SAVAX", "WPOL", "WMNT", "WS", "TRX", "SUI", "HASUI"], NATIVE
    ),
    **dict.fromkeys(
        [
            "ARB",
            "OP",
            "LINK",
            "UNI",
            "AAVE",
            "CRV",
            "CVX",
            "PENDLE",
            "ENA",
            "LDO",
            "CAKE",
            "JUP",
            "RAY",
            "BONK",
            "GMX",
            "AERO",
            "VELO",
            "BAL",
            "COMP",
            "EIGEN",
            "PEPE",
            "WIF",
            "ONDO",
            "GNO",
            "JOE",
            "SUN",
            "CETUS",
            "MOE",
        ],
        GOV,
    ),
}

_EVM_COMMON = ["USDC", "USDT", "WETH", "WBTC", "WSTETH", "LINK"]
CHAIN_TOKENS: dict[str, tuple[str, ...]] = {
    "Ethereum": tuple(
        [
            "USDC",
            "USDT",
            "DAI",
            "USDS",
            "USDE",
            "FRAX",
            "PYUSD",
            "GHO",
            "CRVUSD",
            "LUSD",
            "EURC",
            "WETH",
            "ETH",
            "WSTETH",
            "STETH",
            "RETH",
            "WEETH",
            "CBETH",
            "WBTC",
            "CBBTC",
            "TBTC",
            "LINK",
            "UNI",
            "AAVE",
            "CRV",
            "CVX",
            "PENDLE",
            "ENA",
            "LDO",
            "COMP",
            "EIGEN",
            "PEPE",
            "ONDO",
            "BAL",
        ]
    ),
    "Arbitrum": (*_EVM_COMMON, "USDC.E", "DAI", "USDE", "WEETH", "ARB", "GMX", "PENDLE", "CRV"),
    "Base": ("USDC", "WETH", "CBBTC", "CBETH", "WSTETH", "WEETH", "USDE", "EURC", "AERO", "DAI"),
    "BSC": ("USDT", "USDC", "FDUSD", "WBNB", "BTCB", "ETH", "CAKE", "WBETH", "USDE"),
    "Solana": (
        "USDC",
        "USDT",
        "PYUSD",
        "SOL",
        "JITOSOL",
        "MSOL",
        "CBBTC",
        "JUP",
        "RAY",
        "BONK",
        "WIF",
    ),
    "Polygon": ("USDC", "USDT", "DAI", "WETH", "WBTC", "WPOL", "LINK", "AAVE"),
    "Avalanche": ("USDC", "USDT", "WAVAX", "SAVAX", "WETH", "BTCB", "JOE"),
    "OP Mainnet": ("USDC", "USDT", "WETH", "WBTC", "WSTETH", "OP", "VELO"),
    "Linea": ("USDC", "USDT", "WETH", "WSTETH", "WEETH"),
    "Scroll": ("USDC", "USDT", "WETH", "WSTETH"),
    "Mantle": ("USDC", "USDT", "USDE", "WMNT", "METH", "MOE"),
    "Gnosis": ("WXDAI", "USDC", "WETH", "WSTETH", "GNO"),
    "Sonic": ("USDC", "WS", "WETH"),
    "Tron": ("USDT", "USDD", "TRX", "SUN", "ETH"),
    "Sui": ("USDC", "USDT", "SUI", "HASUI", "CETUS"),
}

# Real addresses for the tokens that matter most; the rest are derived from (chain, symbol).
KNOWN_ADDRESSES: dict[tuple[str, str], str] = {
    ("Ethereum", "USDC"): "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
    ("Ethereum", "USDT"): "0xdAC17F958D2ee523a2206206994597C13D831ec7",
    ("Ethereum", "DAI"): "0x6B175474E89094C44Da98b954EedeAC495271d0F",
    ("Ethereum", "WETH"): "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
    ("Ethereum", "WBTC"): "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599",
    ("Ethereum", "WSTETH"): "0x7f39C581F595B53c5cb19bD0b3f8dA6c935E2Ca0",
    ("Ethereum", "USDS"): "0xdC035D45d973E3EC169d2276DDab16f1e407384F",
    ("Ethereum", "USDE"): "0x4c9EDD5852cd905f086C759E8383e09bff1E68B3",
    ("Ethereum", "PYUSD"): "0x6c3ea9036406852006290770BEdFcAbA0e23A0e8",
    ("Ethereum", "GHO"): "0x40D16FC0246aD3160Ccc09B8D0D3A2cD28aE6C2f",
    ("Ethereum", "CRVUSD"): "0xf939E0A03FB07F59A73314E73794Be0E57ac1b4E",
    ("Ethereum", "CBBTC"): "0xcbB7C0000aB88B473b1f5aFd9ef808440eed33Bf",
    ("Ethereum", "RETH"): "0xae78736Cd615f374D3085123A210448E74Fc6393",
    ("Ethereum", "WEETH"): "0xCd5fE23C85820F7B72D0926FC9b05b43E359b7ee",
    ("Ethereum", "LINK"): "0x514910771AF9Ca656af840dff83E8264EcF986CA",
    ("Ethereum", "AAVE"): "0x7Fc66500c84A76Ad7e9c93437bFc5Ac33E2DDaE9",
    ("Ethereum", "EURC"): "0x1aBaEA1f7C830bD89Acc67eC4af516284b1bC33c",
    ("Ethereum", "SUSDE"): "0x9D39A5DE30e57443BfF2A8307A4256c8797A3497",
    ("Arbitrum", "USDC"): "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",
    ("Arbitrum", "WETH"): "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1",
    ("Arbitrum", "WBTC"): "0x2f2a2543B76A4166549F7aaB2e75Bef0aefC5B0f",
    ("Arbitrum", "WSTETH"): "0x5979D7b546E38E414F7E9822514be443A4800529",
    ("Arbitrum", "WEETH"): "0x35751007a407ca6FEFfE80b3cB397736D2cf4dbe",
    ("Base", "USDC"): "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
    ("Base", "WETH"): "0x4200000000000000000000000000000000000006",
    ("Base", "CBBTC"): "0xcbB7C0000aB88B473b1f5aFd9ef808440eed33Bf",
    ("Base", "WSTETH"): "0xc1CBa3fCea344f92D9239c08C0568f6F2F0ee452",
    ("Base", "USDE"): "0x5d3a1Ff2b6BAb83b63cd9AD0787074081a52ef34",
    ("BSC", "USDT"): "0x55d398326f99059fF775485246999027B3197955",
    ("BSC", "USDC"): "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d",
    ("BSC", "WBNB"): "0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c",
    ("BSC", "BTCB"): "0x7130d2A12B9BCbFAe4f2634d864A1Ee1Ce3Ead9c",
    ("BSC", "ETH"): "0x2170Ed0880ac9A755fd29B2688956BD959F933F8",
    ("Polygon", "USDC"): "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359",
    ("Polygon", "USDT"): "0xc2132D05D31c914a87C6611C10748AEb04B58e8F",
    ("Polygon", "WETH"): "0x7ceB23fD6bC0adD59E62ac25578270cFf1b9f619",
    ("Polygon", "WBTC"): "0x1BFD67037B42Cf73acF2047067bd4F2C47D9BfD6",
    ("Avalanche", "USDC"): "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E",
    ("Avalanche", "WAVAX"): "0xB31f66AA3C1e785363F0875A1B74E27b85FD66c7",
    ("OP Mainnet", "WBTC"): "0x68f180fcCe6836688e9084f035309E29Bf0A2095",
    ("OP Mainnet", "WSTETH"): "0x1F32b1c2345538c0c6f582fCB022739c4A194Ebb",
    ("Gnosis", "WSTETH"): "0x6C76971f98945AE98dD7d4DFcA8711ebea946eA6",
    ("Solana", "USDC"): "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    ("Solana", "USDT"): "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
    ("Solana", "SOL"): "So11111111111111111111111111111111111111112",
    ("Solana", "JITOSOL"): "J1toso1uCk3RLmjorhTtrVwY9HJ7X8V9yYac6Y7kGCPn",
    ("Solana", "MSOL"): "mSoLzYCxHdYgdzU16g5QSh3i5K3z3KZK7ytfqcJm7So",
    ("Solana", "PYUSD"): "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo",
    ("Solana", "CBBTC"): "cbbtcf3aa214zXHbiAZQwf4122FBYbraNdFqgw4iMij",
    ("Tron", "USDT"): "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
    ("Tron", "ETH"): "THb4CqiFdwNHsWsQCs4JhzwjMWys4aqCbF",
    ("Sui", "SUI"): "0x2::sui::SUI",
}

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rest = divmod(number, 58)
        out.append(_B58[rest])
    return "".join(reversed(out)) or "1"


@cache
def _address(chain: str, symbol: str) -> str:
    return token_address(chain, symbol)


def token_address(chain: str, symbol: str) -> str:
    """The token's address on `chain`: the real one when known, else a stable derived one."""
    known = KNOWN_ADDRESSES.get((chain, symbol))
    if known:
        return known
    digest = hashlib.sha256(f"sample-token:{chain}:{symbol}".encode()).digest()
    style = CHAIN_STYLE.get(chain, "evm")
    if style == "solana":
        return _base58(digest)
    if style == "tron":
        return "T" + _base58(digest[:24])[:33]
    if style == "sui":
        return f"0x{digest.hex()}::{symbol.lower()}::{symbol}"
    return "0x" + digest[:20].hex()


# ------------------------------------------------------------------ protocols

LENDING, DEX, STABLE_DEX, VAULT, LST, SAVINGS = (
    "lending",
    "dex",
    "stable-dex",
    "vault",
    "lst",
    "savings",
)


@dataclass(frozen=True)
class Protocol:
    """One protocol of the catalogue: its kind decides symbols, exposure, IL risk and APYs."""

    slug: str
    kind: str
    chains: tuple[str, ...]
    weight: float
    approved: bool
    tokens: tuple[str, ...] = ()  # fixed token(s) for staking and savings products


_EVM_MAIN = ("Ethereum", "Arbitrum", "Base", "Polygon", "OP Mainnet")
_AAVE = (*_EVM_MAIN, "Avalanche", "BSC", "Scroll", "Gnosis", "Linea", "Sonic")
_EULER = ("Ethereum", "Base", "Sonic", "Arbitrum", "Avalanche", "BSC")
_BALANCER = ("Ethereum", "Arbitrum", "Polygon", "Gnosis", "Avalanche")
_BEEFY = (*_EVM_MAIN, "BSC", "Avalanche", "Linea", "Sonic", "Mantle")
_BUIDL = ("Ethereum", "Solana", "Avalanche", "Polygon", "Arbitrum", "OP Mainnet")
PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("aave-v3", LENDING, _AAVE, 9, True),
    Protocol("compound-v3", LENDING, (*_EVM_MAIN, "Scroll", "Mantle", "Linea"), 4, True),
    Protocol("morpho-blue", LENDING, ("Ethereum", "Base", "Arbitrum", "Polygon"), 10, True),
    Protocol("sparklend", LENDING, ("Ethereum", "Gnosis"), 2, True),
    Protocol("fluid-lending", LENDING, ("Ethereum", "Arbitrum", "Base", "Polygon"), 2, True),
    Protocol("euler-v2", LENDING, _EULER, 3, True),
    Protocol("venus-core-pool", LENDING, ("BSC", "Ethereum", "Arbitrum"), 2.5, True),
    Protocol("kamino-lend", LENDING, ("Solana",), 3, True),
    Protocol("marginfi-lending", LENDING, ("Solana",), 1.5, False),
    Protocol("jupiter-lend", LENDING, ("Solana",), 1.5, False),
    Protocol("justlend-v1", LENDING, ("Tron",), 1.5, False),
    Protocol("benqi-lending", LENDING, ("Avalanche",), 1, False),
    Protocol("moonwell-lending", LENDING, ("Base", "OP Mainnet"), 1.5, True),
    Protocol("radiant-v2", LENDING, ("Arbitrum", "BSC", "Ethereum", "Base"), 1, False),
    Protocol("silo-v2", LENDING, ("Sonic", "Arbitrum", "Avalanche", "Ethereum"), 1.5, False),
    Protocol("dolomite", LENDING, ("Arbitrum", "Mantle", "Ethereum"), 1, False),
    Protocol("navi-lending", LENDING, ("Sui",), 1, False),
    Protocol("suilend", LENDING, ("Sui",), 1, False),
    Protocol("lendle-pooled", LENDING, ("Mantle",), 0.5, False),
    Protocol("zerolend", LENDING, ("Linea", "Ethereum", "Base"), 1, False),
    Protocol("uniswap-v3", DEX, (*_EVM_MAIN, "BSC", "Avalanche", "Linea", "Scroll"), 9, True),
    Protocol("uniswap-v2", DEX, ("Ethereum", "Base", "Arbitrum"), 2, True),
    Protocol("uniswap-v4", DEX, ("Ethereum", "Base", "Arbitrum"), 2.5, True),
    Protocol("pancakeswap-amm-v3", DEX, ("BSC", "Ethereum", "Arbitrum", "Base", "Linea"), 4, True),
    Protocol("pancakeswap-amm", DEX, ("BSC",), 2, False),
    Protocol("aerodrome-slipstream", DEX, ("Base",), 3, True),
    Protocol("aerodrome-v1", DEX, ("Base",), 1.5, False),
    Protocol("velodrome-v2", DEX, ("OP Mainnet",), 1.5, False),
    Protocol("sushiswap", DEX, ("Ethereum", "Arbitrum", "Polygon"), 1.5, False),
    Protocol("camelot-v3", DEX, ("Arbitrum",), 1.5, False),
    Protocol("balancer-v2", DEX, _BALANCER, 2, True),
    Protocol("raydium-amm", DEX, ("Solana",), 3, True),
    Protocol("orca-dex", DEX, ("Solana",), 2.5, True),
    Protocol("meteora-dlmm", DEX, ("Solana",), 2.5, False),
    Protocol("quickswap-dex", DEX, ("Polygon",), 1, False),
    Protocol("joe-v2.1", DEX, ("Avalanche", "Arbitrum", "BSC"), 1, False),
    Protocol("shadow-exchange-clmm", DEX, ("Sonic",), 1, False),
    Protocol("cetus-amm", DEX, ("Sui",), 1.5, False),
    Protocol("sunswap-v2", DEX, ("Tron",), 1, False),
    Protocol("merchant-moe-liquidity-book", DEX, ("Mantle",), 0.7, False),
    Protocol("curve-dex", STABLE_DEX, (*_EVM_MAIN, "Avalanche", "Gnosis", "Sonic"), 6, True),
    Protocol("fluid-dex", STABLE_DEX, ("Ethereum", "Arbitrum", "Base"), 1.5, True),
    Protocol("balancer-v3", STABLE_DEX, ("Ethereum", "Gnosis", "Arbitrum", "Base"), 1.5, False),
    Protocol("yearn-finance", VAULT, ("Ethereum", "Arbitrum", "Polygon", "Base"), 2, True),
    Protocol("beefy", VAULT, _BEEFY, 4, False),
    Protocol("convex-finance", VAULT, ("Ethereum", "Arbitrum"), 2, True),
    Protocol("pendle", VAULT, ("Ethereum", "Arbitrum", "Base", "BSC", "Mantle", "Sonic"), 3, True),
    Protocol("stakedao", VAULT, ("Ethereum",), 1, False),
    Protocol("gmx-v2-perps", VAULT, ("Arbitrum", "Avalanche"), 1.5, False),
    Protocol("lido", LST, ("Ethereum",), 0.3, True, ("STETH",)),
    Protocol("rocket-pool", LST, ("Ethereum",), 0.3, True, ("RETH",)),
    Protocol("ether.fi-stake", LST, ("Ethereum",), 0.3, True, ("WEETH",)),
    Protocol("binance-staked-eth", LST, ("Ethereum", "BSC"), 0.3, False, ("WBETH",)),
    Protocol("mantle-staked-eth", LST, ("Ethereum", "Mantle"), 0.3, False, ("METH",)),
    Protocol("jito-liquid-staking", LST, ("Solana",), 0.3, True, ("JITOSOL",)),
    Protocol("marinade-liquid-staking", LST, ("Solana",), 0.3, False, ("MSOL",)),
    Protocol("benqi-staked-avax", LST, ("Avalanche",), 0.2, False, ("SAVAX",)),
    Protocol("sky-lending", SAVINGS, ("Ethereum",), 0.5, True, ("SUSDS",)),
    Protocol("spark-savings", SAVINGS, ("Ethereum", "Base", "Arbitrum"), 0.6, True, ("SUSDC",)),
    Protocol("ethena-usde", SAVINGS, ("Ethereum",), 0.3, False, ("SUSDE",)),
    Protocol("ondo-yield-assets", SAVINGS, ("Ethereum", "Solana", "Mantle"), 0.6, False, ("USDY",)),
    Protocol("maple", SAVINGS, ("Ethereum", "Solana"), 0.5, True, ("SYRUPUSDC",)),
    Protocol("blackrock-buidl", SAVINGS, _BUIDL, 0.8, False, ("BUIDL",)),
)  # fmt: skip

# Base APY level (percent) of a lending market by token class: (median, spread in log units).
LENDING_APY = {STABLE: (4.5, 0.45), ETH: (1.6, 0.6), BTC: (0.3, 0.8), SOL: (5.0, 0.5),
               NATIVE: (2.2, 0.7), GOV: (0.6, 1.0)}  # fmt: skip
KIND_APY = {LST: (3.0, 0.2), SAVINGS: (4.6, 0.15), STABLE_DEX: (3.0, 0.7), VAULT: (6.5, 0.7),
            DEX: (9.0, 1.1)}  # fmt: skip
# Day-to-day noise of the observed base APY (log units): fee APYs are noisy, lending is smooth.
KIND_NOISE = {LENDING: 0.04, LST: 0.03, SAVINGS: 0.01, STABLE_DEX: 0.18, VAULT: 0.10, DEX: 0.30}
KIND_REWARD_SHARE = {LENDING: 0.30, DEX: 0.45, STABLE_DEX: 0.50, VAULT: 0.30, LST: 0.05,
                     SAVINGS: 0.0}  # fmt: skip
KIND_TVL_BONUS = {LENDING: 0.5, LST: 1.5, SAVINGS: 1.2, STABLE_DEX: 0.2, VAULT: 0.0, DEX: -0.2}
FEE_TIERS = ("0.01%", "0.05%", "0.3%", "1%")


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


# ------------------------------------------------------------------ the universe


@dataclass
class _Chunk:
    """One chunk of generated days: arrays of shape (days, pools), NaN where absent or null."""

    tvl: np.ndarray
    base: np.ndarray
    reward: np.ndarray
    apy: np.ndarray
    mean30: np.ndarray


@dataclass
class _State:
    """The processes' state at the start of a chunk."""

    x: np.ndarray  # OU deviation of log base APY
    g: np.ndarray  # TVL growth (momentum)
    u: np.ndarray  # TVL deviation from the pool's level
    amp: np.ndarray  # current reward campaign amplitude (APY %)
    cage: np.ndarray  # days since the current campaign started
    tail: np.ndarray  # last MEAN_WINDOW - 1 days of apy, for apyMean30d


def _uuid4(raw: bytes) -> str:
    """A version-4 UUID string from 16 bytes (DefiLlama's pool id format)."""
    h = bytearray(raw)
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _uuid(seed: int, *parts: object) -> str:
    return _uuid4(hashlib.sha256(repr((seed, *parts)).encode()).digest()[:16])


class SampleUniverse:
    """A deterministic universe of `n_pools` pools with daily history from `start` on."""

    def __init__(self, seed: int = 7, n_pools: int = 1200, start: date = date(2025, 1, 1)) -> None:
        if n_pools < 1:
            raise ValueError(f"n_pools must be at least 1, got {n_pools}")
        self.seed = int(seed)
        self.n_pools = int(n_pools)
        self.start = start
        self._build_static()
        self._states: list[_State] = [self._initial_state()]
        self._chunks: OrderedDict[int, _Chunk] = OrderedDict()
        self._history_blocks: OrderedDict[int, tuple[pd.DataFrame, np.ndarray]] = OrderedDict()
        chunk_bytes = 5 * 8 * CHUNK_DAYS * self.n_pools
        self._max_chunks = max(2, CACHE_BYTES // chunk_bytes)

    # .............................................................. static attributes

    def _build_static(self) -> None:
        n = self.n_pools
        rng = np.random.default_rng([self.seed, 0])
        weights = np.array([p.weight for p in PROTOCOLS])
        proto_idx = rng.choice(len(PROTOCOLS), size=n, p=weights / weights.sum())
        u = rng.random((n, 8))
        normals = rng.standard_normal((n, 6))

        chain_cum = [
            np.cumsum([CHAIN_WEIGHT[c] for c in p.chains]) / sum(CHAIN_WEIGHT[c] for c in p.chains)
            for p in PROTOCOLS
        ]
        id_bytes = rng.bytes(16 * n)
        pools, chains, projects, symbols, tokens, metas = [], [], [], [], [], []
        kinds, classes, stable = [], [], []
        for i in range(n):
            proto = PROTOCOLS[proto_idx[i]]
            cum = chain_cum[proto_idx[i]]
            chain = proto.chains[min(bisect.bisect_left(cum, u[i, 0]), len(cum) - 1)]
            parts = _pick_tokens(proto, chain, u[i, 1], u[i, 2], u[i, 3])
            pool_id = _uuid4(id_bytes[16 * i : 16 * i + 16])
            if proto.kind == DEX and CHAIN_STYLE[chain] == "evm" and u[i, 5] < 0.15:
                # Some DEX pools are keyed by their pair address, like DefiLlama's.
                pool_id = f"0x{hashlib.sha256(pool_id.encode()).hexdigest()[:40]}-{chain.lower()}"
            pools.append(pool_id)
            chains.append(chain)
            projects.append(proto.slug)
            symbols.append("-".join(parts))
            # DefiLlama leaves underlyingTokens null for some pools.
            tokens.append(None if u[i, 6] < 0.04 else tuple(_address(chain, t) for t in parts))
            metas.append(_pool_meta(proto, parts, u[i, 4]))
            kinds.append(proto.kind)
            cls = {TOKEN_CLASS[t] for t in parts}
            classes.append(cls.pop() if len(cls) == 1 else "mixed")
            stable.append(all(TOKEN_CLASS[t] == STABLE for t in parts))

        self.pool_ids = pools
        self._index = {p: i for i, p in enumerate(pools)}
        if len(self._index) != n:  # pragma: no cover - sha256 collisions
            raise RuntimeError("generated pool ids collide")
        self.chains = chains
        self.projects = projects
        self.symbols = symbols
        self.underlying = tokens
        self.pool_meta = metas
        self.kinds = kinds
        self.stablecoin = stable
        multi = np.array([len(s.split("-")) > 1 for s in symbols])
        kind_arr = np.array(kinds)
        stable_arr = np.array(stable)
        il = multi & ~stable_arr & np.isin(kind_arr, [DEX, STABLE_DEX, VAULT])
        self.exposure = ["multi" if m else "single" for m in multi]
        self.il_risk = ["yes" if flag else "no" for flag in il]

        # Listing and delisting, in days from `start` (delisted pools are gone from that day).
        old = u[:, 7] < 0.88
        listing = np.where(old, -rng.integers(30, 1500, n), rng.integers(0, 700, n))
        delisted = rng.random(n) < 0.10
        earliest = np.maximum(listing, 0) + 30
        delist_day = earliest + (rng.random(n) * np.maximum(900 - earliest, 1)).astype(np.int64)
        self.listing = listing.astype(np.int64)
        self.delisting = np.where(delisted, delist_day, np.iinfo(np.int64).max // 4)

        # Base APY process: mu * exp(x), x mean-reverting (OU), plus observation noise.
        mu = np.empty(n)
        spread = np.empty(n)
        for i, (kind, cls) in enumerate(zip(kinds, classes, strict=True)):
            if kind == LENDING:
                mu[i], spread[i] = LENDING_APY.get(cls, LENDING_APY[GOV])
            elif kind == LST and cls == SOL:
                mu[i], spread[i] = 7.0, 0.15
            elif kind == DEX and stable[i]:
                mu[i], spread[i] = 2.5, 0.8
            else:
                mu[i], spread[i] = KIND_APY[kind]
        self.mu = mu * np.exp(spread * normals[:, 0])
        self.kappa = 0.02 + 0.13 * rng.random(n)
        self.sigma = (0.03 + 0.09 * rng.random(n)) * np.where(kind_arr == SAVINGS, 0.3, 1.0)
        self.noise = np.array([KIND_NOISE[k] for k in kinds]) * (0.5 + rng.random(n))
        self.base_null = rng.random(n) < 0.03  # reward-only farms: apyBase is null

        # Rewards: campaigns that start at launch (or later) and decay exponentially.
        share = np.array([KIND_REWARD_SHARE[k] for k in kinds])
        self.has_reward = rng.random(n) < share
        self.base_null &= self.has_reward
        self.half_life = 15.0 + 185.0 * rng.random(n)
        self.amp0 = np.exp(np.log(0.5) + np.log(80.0) * rng.random(n))

        # TVL: a level (log-uniform-ish over 1e5..1e10), momentum around it, ramp-up at launch.
        bonus = np.array([KIND_TVL_BONUS[k] for k in kinds])
        log10_level = np.clip(5.0 + 5.0 * rng.beta(1.3, 2.2, n) + bonus, 5.0, 10.2)
        self.log_level = log10_level * math.log(10.0)
        self.tau = 5.0 + 35.0 * rng.random(n)
        self.sig_g = 0.003 + 0.012 * rng.random(n)
        self.phi = 0.6 + 0.3 * rng.random(n)

    # .............................................................. dynamics

    def _initial_state(self) -> _State:
        rng = np.random.default_rng([self.seed, 1])
        n = self.n_pools
        stationary = self.sigma / np.sqrt(1.0 - (1.0 - self.kappa) ** 2)
        x = stationary * rng.standard_normal(n)
        u = 0.3 * rng.standard_normal(n)
        # Old pools are met mid-campaign; new pools start theirs at launch.
        cage = np.where(self.listing < 0, rng.integers(0, 240, n), -self.listing).astype(float)
        tail = np.full((MEAN_WINDOW - 1, n), np.nan)
        return _State(x=x, g=np.zeros(n), u=u, amp=self.amp0.copy(), cage=cage, tail=tail)

    def _generate(self, k: int, state: _State) -> tuple[_Chunk, _State]:
        """Days [k*CHUNK_DAYS, (k+1)*CHUNK_DAYS) from the state at the chunk's start."""
        n, days = self.n_pools, CHUNK_DAYS
        rng = np.random.default_rng([self.seed, 2, k])
        # Four noises per pool-day (float32 is plenty for noise and twice as fast to draw)...
        eps = rng.standard_normal((days, 4, n), dtype=np.float32).astype(np.float64)
        # ...and one uniform that decides the rare events, which exclude each other:
        # [0, P_SPIKE) an APY spike, then a TVL jump, then the start of a reward campaign.
        events = rng.random((days, n))
        spike = events < P_SPIKE
        jump_at = events - P_SPIKE
        jump = (jump_at >= 0) & (jump_at < P_JUMP)
        campaign_at = jump_at - P_JUMP
        campaign = (campaign_at >= 0) & (campaign_at < P_CAMPAIGN)
        jumps = np.where(jump, 0.6 * jump_at / P_JUMP - 0.3, 0.0)  # log TVL jump in +-0.3
        # The recursive parts (OU deviation, TVL momentum) step day by day; the rest is
        # computed for the whole chunk at once.
        x, g, u = state.x.copy(), state.g.copy(), state.u.copy()
        xs = np.empty((days, n))
        us = np.empty((days, n))
        one_minus_kappa, sigma, phi, sig_g = 1.0 - self.kappa, self.sigma, self.phi, self.sig_g
        for j in range(days):
            x = one_minus_kappa * x + sigma * eps[j, 0]
            g = phi * g + sig_g * eps[j, 1]
            u = 0.99 * u + g + jumps[j]
            xs[j] = x
            us[j] = u

        day = (k * days + np.arange(days))[:, None]
        age = day - self.listing
        to_delist = self.delisting - day
        active = (age >= 0) & (to_delist > 0)
        ramp = np.log1p(-0.95 * np.exp(-np.maximum(age, 0) / self.tau))
        wind_down = np.where(to_delist <= 45, -3.0 * (45 - to_delist) / 45.0, 0.0)
        log_tvl = self.log_level + ramp + us + wind_down

        base = self.mu * np.exp(xs + self.noise * eps[:, 2])
        base = np.where(spike, base * (3.0 + 20.0 * events / P_SPIKE), base)

        # Reward campaigns: a new one may start on any day after the first month; the reward
        # then decays from its amplitude with the pool's half-life.
        new = self.has_reward & (age > 30) & campaign
        rows = np.broadcast_to(np.arange(days)[:, None], (days, n))
        last_new = np.maximum.accumulate(np.where(new, rows, -1), axis=0)
        started = last_new >= 0
        new_amp = np.exp(np.log(0.5) + np.log(60.0) * campaign_at / P_CAMPAIGN)
        amp_now = np.where(
            started, np.take_along_axis(new_amp, np.maximum(last_new, 0), axis=0), state.amp
        )
        cage_now = np.where(started, rows - last_new, state.cage + rows + 1)
        decay = math.log(2.0) / self.half_life
        reward = amp_now * np.exp(-decay * cage_now + 0.08 * eps[:, 3])
        amp, cage = amp_now[-1].copy(), cage_now[-1].astype(float)

        tvl = np.where(active, np.round(np.exp(log_tvl)), np.nan)
        base_r = np.round(base, 5)
        reward_r = np.where(self.has_reward, np.round(reward, 5), 0.0)
        base_r = np.where(self.base_null, 0.0, base_r)
        apy = np.where(active, np.round(base_r + reward_r, 5), np.nan)
        base_out = np.where(active & ~self.base_null, base_r, np.nan)
        reward_out = np.where(active & self.has_reward, reward_r, np.nan)

        window = np.concatenate([state.tail, apy])
        filled = np.nan_to_num(window)
        counts = np.concatenate([np.zeros((1, n)), np.cumsum(~np.isnan(window), axis=0)])
        sums = np.concatenate([np.zeros((1, n)), np.cumsum(filled, axis=0)])
        w = MEAN_WINDOW
        lo = np.arange(days)
        hi = lo + w
        with np.errstate(invalid="ignore", divide="ignore"):
            mean30 = (sums[hi] - sums[lo]) / (counts[hi] - counts[lo])
        mean30 = np.where(active, np.round(mean30, 5), np.nan)

        chunk = _Chunk(tvl=tvl, base=base_out, reward=reward_out, apy=apy, mean30=mean30)
        new_state = _State(x=x, g=g, u=u, amp=amp, cage=cage, tail=window[-(w - 1) :].copy())
        return chunk, new_state

    def _chunk(self, k: int) -> _Chunk:
        cached = self._chunks.get(k)
        if cached is not None:
            self._chunks.move_to_end(k)
            return cached
        while len(self._states) <= k:  # states are tiny: keep every chunk boundary
            i = len(self._states) - 1
            chunk, state = self._generate(i, self._states[i])
            self._states.append(state)
            self._remember(i, chunk)
        chunk, _ = self._generate(k, self._states[k])
        self._remember(k, chunk)
        return chunk

    def _remember(self, k: int, chunk: _Chunk) -> None:
        self._chunks[k] = chunk
        self._chunks.move_to_end(k)
        while len(self._chunks) > self._max_chunks:
            self._chunks.popitem(last=False)

    def _offset(self, day: date) -> int:
        if not isinstance(day, date):
            raise TypeError(f"day must be a datetime.date, got {day!r}")
        offset = (day - self.start).days
        if offset < 0:
            raise ValueError(f"the sample universe starts on {self.start}; no data for {day}")
        return offset

    def _day_arrays(self, offset: int) -> tuple[np.ndarray, ...]:
        k, j = divmod(offset, CHUNK_DAYS)
        c = self._chunk(k)
        return c.tvl[j], c.apy[j], c.base[j], c.reward[j], c.mean30[j]

    # .............................................................. public API

    def active_mask(self, day: date) -> np.ndarray:
        """Which pools are listed on `day` (listed on or before it, not yet delisted)."""
        offset = self._offset(day)
        return (self.listing <= offset) & (self.delisting > offset)

    def records_for(self, day: date) -> list[dict[str, Any]]:
        """The `/pools` response's `data` for `day`: each listed pool, plus a few bad records."""
        offset = self._offset(day)
        tvl, apy, base, reward, mean30 = self._day_arrays(offset)
        idx = np.flatnonzero(~np.isnan(tvl))
        tvl_l = tvl[idx].astype(np.int64).tolist()
        apy_l = apy[idx].tolist()
        base_l = _nullable(base[idx])
        reward_l = _nullable(reward[idx])
        mean_l = _nullable(mean30[idx])
        pools, chains, projects, symbols = self.pool_ids, self.chains, self.projects, self.symbols
        stable, il, exposure, meta, under = (
            self.stablecoin, self.il_risk, self.exposure, self.pool_meta, self.underlying
        )  # fmt: skip
        out = []
        for pos, i in enumerate(idx.tolist()):
            tokens = under[i]
            out.append(
                {
                    "chain": chains[i],
                    "project": projects[i],
                    "symbol": symbols[i],
                    "tvlUsd": tvl_l[pos],
                    "apyBase": base_l[pos],
                    "apyReward": reward_l[pos],
                    "apy": apy_l[pos],
                    "pool": pools[i],
                    "stablecoin": stable[i],
                    "ilRisk": il[i],
                    "exposure": exposure[i],
                    "poolMeta": meta[i],
                    "apyMean30d": mean_l[pos],
                    "underlyingTokens": None if tokens is None else list(tokens),
                }
            )
        out.extend(self._bad_records(offset, out))
        return out

    def _bad_records(self, offset: int, good: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """0-3 broken records and sometimes a duplicate id: what validation must catch."""
        if not good:
            return []
        rng = np.random.default_rng([self.seed, 3, offset])
        count = int(rng.integers(0, 4))
        bad = []
        for k in range(count):
            record = dict(good[int(rng.integers(0, len(good)))])
            record["pool"] = _uuid(self.seed, "bad", offset, k)
            flaw = int(rng.integers(0, 5))
            if flaw == 0:
                record["tvlUsd"] = math.nan
            elif flaw == 1:
                record["tvlUsd"] = -abs(record["tvlUsd"]) - 1
            elif flaw == 2:
                del record["chain"]
            elif flaw == 3:
                record["symbol"] = None
            else:
                record["apyBase"] = math.inf
            bad.append(record)
        if rng.random() < 0.2:
            duplicate = dict(good[int(rng.integers(0, len(good)))])
            duplicate["tvlUsd"] = int(duplicate["tvlUsd"] * 2 + 1)
            bad.append(duplicate)
        return bad

    def universe_for(self, day: date) -> tuple[pd.DataFrame, list[Rejection]]:
        """`records_for(day)` validated: the universe the pipeline would see for `day`."""
        return validate_pool_records(self.records_for(day), source="sample")

    def chart(self, pool_id: str, until: date) -> list[dict[str, Any]]:
        """The `/chart/{pool}` response's `data`: a row per listed day up to `until` (inclusive)."""
        if pool_id not in self._index:
            raise KeyError(f"unknown sample pool {pool_id!r}")
        i = self._index[pool_id]
        last = self._offset(until)
        first = max(int(self.listing[i]), 0)
        last = min(last, int(self.delisting[i]) - 1)
        rows: list[dict[str, Any]] = []
        for k in range(first // CHUNK_DAYS, last // CHUNK_DAYS + 1):
            c = self._chunk(k)
            lo, hi = max(first - k * CHUNK_DAYS, 0), min(last - k * CHUNK_DAYS, CHUNK_DAYS - 1)
            for j in range(lo, hi + 1):
                day = self.start + timedelta(days=k * CHUNK_DAYS + j)
                rows.append(
                    {
                        "timestamp": f"{day.isoformat()}T00:00:00.000Z",
                        "tvlUsd": int(c.tvl[j, i]),
                        "apy": float(c.apy[j, i]),
                        "apyBase": _nullable(c.base[j, i : i + 1])[0],
                        "apyReward": _nullable(c.reward[j, i : i + 1])[0],
                        "il7d": None,
                        "apyBase7d": None,
                    }
                )
        return rows

    def history(self, start: date, end: date) -> pd.DataFrame:
        """Daily (date, pool, tvlUsd, apy, apyBase, apyReward) of listed pools, start..end.

        Values are those validation keeps (a null part of the APY counts as 0), so this frame
        equals what storing `records_for` each day and reading it back would give.
        """
        first, last = self._offset(start), self._offset(end)
        if last < first:
            raise ValueError(f"end {end} is before start {start}")
        parts = []
        for k in range(first // CHUNK_DAYS, last // CHUNK_DAYS + 1):
            block, offsets = self._history_block(k)
            lo = np.searchsorted(offsets, first, side="left")
            hi = np.searchsorted(offsets, last, side="right")
            parts.append(block.iloc[lo:hi])
        return (
            pd.concat(parts, ignore_index=True)
            if len(parts) > 1
            else parts[0].reset_index(drop=True)
        )

    def _history_block(self, k: int) -> tuple[pd.DataFrame, np.ndarray]:
        """The history rows of chunk k, sorted by (date, pool), and each row's day offset.

        Kept for the last few chunks: consecutive days (a backfill) slice the same blocks
        instead of building and sorting their 60-day window again.
        """
        cached = self._history_blocks.get(k)
        if cached is not None:
            self._history_blocks.move_to_end(k)
            return cached
        c = self._chunk(k)
        rows, cols = np.nonzero(~np.isnan(c.tvl))
        offsets = k * CHUNK_DAYS + rows
        frame = pd.DataFrame(
            {
                "date": np.datetime64(self.start, "D") + offsets.astype("timedelta64[D]"),
                "pool": np.array(self.pool_ids, dtype=object)[cols],
                "tvlUsd": c.tvl[rows, cols],
                "apy": c.apy[rows, cols],
                "apyBase": np.nan_to_num(c.base[rows, cols], nan=0.0),
                "apyReward": np.nan_to_num(c.reward[rows, cols], nan=0.0),
            }
        )
        frame["date"] = frame["date"].astype("datetime64[ns]")
        frame["pool"] = frame["pool"].astype("str")
        order = frame.sort_values(["date", "pool"], kind="stable").index.to_numpy()
        block = (frame.take(order).reset_index(drop=True), offsets[order])
        self._history_blocks[k] = block
        while len(self._history_blocks) > HISTORY_BLOCKS:
            self._history_blocks.popitem(last=False)
        return block

    @property
    def token_addresses(self) -> dict[tuple[str, str], str]:
        """(chain, symbol) -> address, for every token the sample uses on every chain."""
        return {
            (chain, symbol): token_address(chain, symbol)
            for chain, symbols in CHAIN_TOKENS.items()
            for symbol in symbols
        } | {
            (chain, symbol): token_address(chain, symbol)
            for proto in PROTOCOLS
            for chain in proto.chains
            for symbol in proto.tokens
        }

    def default_lists(self) -> DynamicLists:
        """The treasury's starting lists: main stablecoins and majors, the blue-chip protocols."""
        return DynamicLists(
            approved_tokens=DEFAULT_APPROVED_TOKENS,
            approved_protocols=tuple(p.slug for p in PROTOCOLS if p.approved),
            blacklisted_tokens=(),
            icebox_tokens=(),
        )


DEFAULT_APPROVED_TOKENS: tuple[str, ...] = tuple(
    [
        "USDC",
        "USDT",
        "DAI",
        "USDS",
        "USDE",
        "PYUSD",
        "GHO",
        "CRVUSD",
        "FRAX",
        "LUSD",
        "FDUSD",
        "USDC.E",
        "EURC",
        "SUSDS",
        "SUSDC",
        "WETH",
        "ETH",
        "WSTETH",
        "STETH",
        "RETH",
        "WEETH",
        "CBETH",
        "WBTC",
        "CBBTC",
        "BTCB",
        "SOL",
        "JITOSOL",
        "MSOL",
        "WBNB",
        "WAVAX",
    ]
)


def _nullable(values: np.ndarray) -> list[float | None]:
    """Floats with NaN as None (JSON null), as the API sends absent values."""
    return [None if v != v else v for v in values.tolist()]
