"""The sample universe's catalogue: real chains, tokens, addresses and protocols, as data.

`sample_pools.py` draws pools from these tables and `sample.py` moves their APYs and TVLs; the
tables are kept apart so that adding a chain or a protocol is a data change only. Weights, APY
levels and reward shares are rough orders of magnitude of the real market, not measurements.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
        ["USDC", "USDT", "DAI", "USDS", "USDE", "FRAX", "PYUSD", "GHO", "CRVUSD", "LUSD",
         "FDUSD", "USDC.E", "USDD", "EURC", "WXDAI", "SUSDS", "SUSDC", "SUSDE", "USDY",
         "SYRUPUSDC", "BUIDL"],
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
        ["ARB", "OP", "LINK", "UNI", "AAVE", "CRV", "CVX", "PENDLE", "ENA", "LDO", "CAKE",
         "JUP", "RAY", "BONK", "GMX", "AERO", "VELO", "BAL", "COMP", "EIGEN", "PEPE", "WIF",
         "ONDO", "GNO", "JOE", "SUN", "CETUS", "MOE"],
        GOV,
    ),
}  # fmt: skip

_EVM_COMMON = ["USDC", "USDT", "WETH", "WBTC", "WSTETH", "LINK"]
CHAIN_TOKENS: dict[str, tuple[str, ...]] = {
    "Ethereum": tuple(
        ["USDC", "USDT", "DAI", "USDS", "USDE", "FRAX", "PYUSD", "GHO", "CRVUSD", "LUSD",
         "EURC", "WETH", "ETH", "WSTETH", "STETH", "RETH", "WEETH", "CBETH", "WBTC", "CBBTC",
         "TBTC", "LINK", "UNI", "AAVE", "CRV", "CVX", "PENDLE", "ENA", "LDO", "COMP", "EIGEN",
         "PEPE", "ONDO", "BAL"]
    ),
    "Arbitrum": (*_EVM_COMMON, "USDC.E", "DAI", "USDE", "WEETH", "ARB", "GMX", "PENDLE", "CRV"),
    "Base": ("USDC", "WETH", "CBBTC", "CBETH", "WSTETH", "WEETH", "USDE", "EURC", "AERO", "DAI"),
    "BSC": ("USDT", "USDC", "FDUSD", "WBNB", "BTCB", "ETH", "CAKE", "WBETH", "USDE"),
    "Solana": ("USDC", "USDT", "PYUSD", "SOL", "JITOSOL", "MSOL",
               "CBBTC", "JUP", "RAY", "BONK", "WIF"),
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
}  # fmt: skip

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

# The sample's APY levels against the real data's: the catalogue's medians are kept as the
# relative levels of kinds and classes, scaled so that the eligible pools' APY has a median of
# about 1.5 % and a 99th percentile of about 24 % (docs/forecast.md, "On the generated sample").
APY_LEVEL = 0.27
# Loading of each kind's log base APY on the market's common factor (fee APYs follow the
# market most, savings rates least); each pool's is this times a uniform in [0.5, 1.5).
KIND_BETA = {LENDING: 0.6, LST: 0.2, SAVINGS: 0.3, STABLE_DEX: 0.8, VAULT: 0.7, DEX: 1.0}
# Chance per pool and day of a principal-loss event: a depeg for stablecoin pools, else a hack.
P_DEPEG = 1.0 / 4000.0
KIND_HACK = {LENDING: 1.0 / 15000.0, LST: 1.0 / 20000.0, SAVINGS: 1.0 / 20000.0,
             STABLE_DEX: 1.0 / 6000.0, VAULT: 1.0 / 6000.0, DEX: 1.0 / 6000.0}  # fmt: skip


# The treasury's starting approved tokens: the main stablecoins and majors.
DEFAULT_APPROVED_TOKENS: tuple[str, ...] = tuple(
    ["USDC", "USDT", "DAI", "USDS", "USDE", "PYUSD", "GHO", "CRVUSD", "FRAX", "LUSD", "FDUSD",
     "USDC.E", "EURC", "SUSDS", "SUSDC", "WETH", "ETH", "WSTETH", "STETH", "RETH", "WEETH",
     "CBETH", "WBTC", "CBBTC", "BTCB", "SOL", "JITOSOL", "MSOL", "WBNB", "WAVAX"]
)  # fmt: skip
