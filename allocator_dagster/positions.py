"""The treasury's positions file: which wallets it owns and which token stands for each pool.

`ALLOCATOR_POSITIONS_FILE` (YAML) tells the `etherscan` balances source what to read on chain:

    wallets: [0x...]              # the treasury's addresses, on every chain listed
    positions:                    # pool id (DefiLlama) -> its receipt token
      <pool id>: {chain_id: 1, token: 0x..., decimals: 18, kind: erc4626,
                  underlying: 0x..., underlying_decimals: 6}
    idle:                         # idle cash: these tokens in the wallets, valued at their price
      - {chain_id: 1, token: 0x..., decimals: 6}      # (e.g. USDC); token: native for the coin
    chains: {8453: base}          # optional: DefiLlama chain names of ids not built in

A receipt token of kind `erc20` is redeemable 1:1 for the underlying (Aave's aTokens, Compound
v3); `erc4626` is a vault whose shares are worth `convertToAssets(shares)` of the underlying.
The file is checked whole before anything is read on chain: every error names the file, the
entry and the field.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
)

NATIVE = (
    "native"  # the idle entry of a chain's own coin (ETH on Ethereum), read with action=balance
)
# DefiLlama's coins API names the native coin by the zero address of its chain
NATIVE_PRICE_ADDRESS = "0x0000000000000000000000000000000000000000"
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
MAX_DECIMALS = 36
MAX_POOL_ID = 128  # daily_ledger.pool_id
# DefiLlama's chain names (the `{chain}:` of the coins API) of the usual EVM chain ids
CHAIN_NAMES: dict[int, str] = {
    1: "ethereum",
    10: "optimism",
    56: "bsc",
    100: "xdai",
    137: "polygon",
    324: "era",
    8453: "base",
    42161: "arbitrum",
    43114: "avax",
    59144: "linea",
    534352: "scroll",
}

# The same chains as DefiLlama's yields data names them (a pool's `chain`): a position on another
# chain than its pool is a wrong pool id or chain id
YIELDS_CHAIN_NAMES: dict[int, str] = {
    1: "Ethereum",
    10: "OP Mainnet",
    56: "BSC",
    100: "Gnosis",
    137: "Polygon",
    324: "zkSync Era",
    8453: "Base",
    42161: "Arbitrum",
    43114: "Avalanche",
    59144: "Linea",
    534352: "Scroll",
}

Decimals = Annotated[StrictInt, Field(ge=0, le=MAX_DECIMALS)]
ChainId = Annotated[StrictInt, Field(gt=0)]


class PositionsFileError(ValueError):
    """The positions file cannot be used; one line per problem, each naming file, entry, field."""


def _address(value: object) -> str:
    if not isinstance(value, str) or not ADDRESS.match(value):
        raise ValueError("must be a 0x address of 40 hex digits")
    return value.lower()  # one spelling: checksummed and lower-case forms are the same account


Address = Annotated[str, BeforeValidator(_address)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReceiptToken(_Strict):
    """What the treasury holds for one pool."""

    chain_id: ChainId
    token: Address
    decimals: Decimals
    kind: Literal["erc20", "erc4626"]
    underlying: Address
    underlying_decimals: Decimals | None = None

    @property
    def asset_decimals(self) -> int:
        """Decimals of what one unit is worth in the underlying (erc20: the token's own)."""
        if self.underlying_decimals is None:
            return self.decimals
        return self.underlying_decimals


class IdleToken(_Strict):
    """A token whose balance in the wallets counts as idle cash."""

    chain_id: ChainId
    token: str
    decimals: Decimals

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, value: object) -> str:
        return NATIVE if value == NATIVE else _address(value)

    @property
    def is_native(self) -> bool:
        return self.token == NATIVE


class _File(_Strict):
    wallets: list[Address] = Field(min_length=1)
    positions: dict[str, ReceiptToken] = Field(default_factory=dict)
    idle: list[IdleToken] = Field(default_factory=list)
    chains: dict[ChainId, Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")]] = Field(
        default_factory=dict
    )


@dataclass(frozen=True)
class Positions:
    """The checked positions file; `sha256` identifies the exact file a reading used."""

    wallets: tuple[str, ...]
    pools: dict[str, ReceiptToken]
    idle: tuple[IdleToken, ...]
    chain_names: dict[int, str]
    source_file: str
    sha256: str

    def chain_name(self, chain_id: int) -> str:
        return self.chain_names[chain_id]

    def price_key(self, chain_id: int, token: str) -> str:
        """The coins API's `{chain}:{address}` of a token (the zero address for the coin)."""
        address = NATIVE_PRICE_ADDRESS if token == NATIVE else token
        return f"{self.chain_name(chain_id)}:{address}"


def _where(loc: tuple[int | str, ...]) -> str:
    """`positions.<pool>` and `field 'decimals'` out of a pydantic location."""
    parts = [str(p) for p in loc]
    if not parts:
        return "the file"
    if parts[0] == "positions" and len(parts) >= 3:
        return f"positions.{parts[1]}: field {'.'.join(parts[2:])!r}"
    if parts[0] in ("idle", "wallets") and len(parts) >= 2:
        entry = f"{parts[0]}[{parts[1]}]"
        return entry if len(parts) == 2 else f"{entry}: field {'.'.join(parts[2:])!r}"
    return f"field {'.'.join(parts)!r}"


def _cross_checks(parsed: _File, chain_names: dict[int, str]) -> list[str]:
    """What each entry cannot see alone: duplicates, unknown chains, double counting."""
    errors = []
    seen_wallets: set[str] = set()
    for i, wallet in enumerate(parsed.wallets):
        if wallet in seen_wallets:
            errors.append(f"wallets[{i}]: {wallet} is listed twice (it would be counted twice)")
        seen_wallets.add(wallet)
    tokens: dict[tuple[int, str], str] = {}
    for pool, entry in parsed.positions.items():
        where = f"positions.{pool}"
        if not pool.strip() or len(pool) > MAX_POOL_ID or pool == "idle_usd":
            errors.append(
                f"{where}: the pool id must be 1 to {MAX_POOL_ID} characters, not idle_usd"
            )
        if entry.chain_id not in chain_names:
            errors.append(
                f"{where}: field 'chain_id': {entry.chain_id} has no DefiLlama chain name (add it under chains:)"
            )
        if entry.kind == "erc20" and entry.asset_decimals != entry.decimals:
            errors.append(
                f"{where}: field 'underlying_decimals': an erc20 receipt is redeemable 1:1, so its "
                f"underlying has its decimals ({entry.decimals}), not {entry.underlying_decimals}"
            )
        key = (entry.chain_id, entry.token)
        if key in tokens:
            errors.append(
                f"{where}: field 'token': {entry.token} on chain {entry.chain_id} is already the token of pool {tokens[key]}"
            )
        tokens.setdefault(key, pool)
    for i, idle in enumerate(parsed.idle):
        where = f"idle[{i}]"
        if idle.chain_id not in chain_names:
            errors.append(
                f"{where}: field 'chain_id': {idle.chain_id} has no DefiLlama chain name (add it under chains:)"
            )
        key = (idle.chain_id, idle.token)
        if key in tokens:
            errors.append(
                f"{where}: field 'token': {idle.token} on chain {idle.chain_id} is already counted ({tokens[key]})"
            )
        tokens.setdefault(key, where)
    if not parsed.positions and not parsed.idle:
        errors.append("the file lists no positions and no idle tokens: nothing to read")
    return errors


def parse_positions(text: str, source: str = "positions file") -> Positions:
    """The checked positions of a YAML text; `PositionsFileError` lists every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PositionsFileError(f"{source}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise PositionsFileError(f"{source}: expected a mapping with wallets, positions, idle")
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{source}: {_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise PositionsFileError("\n".join(lines)) from None
    chain_names = {**CHAIN_NAMES, **parsed.chains}
    errors = _cross_checks(parsed, chain_names)
    if errors:
        raise PositionsFileError("\n".join(f"{source}: {line}" for line in errors))
    return Positions(
        wallets=tuple(parsed.wallets),
        pools=dict(sorted(parsed.positions.items())),
        idle=tuple(parsed.idle),
        chain_names=chain_names,
        source_file=source,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def read_positions_file(path: str | Path) -> Positions:
    """The checked positions of FILE (ALLOCATOR_POSITIONS_FILE)."""
    path = Path(path)
    if not str(path).strip() or str(path) == ".":
        raise PositionsFileError(
            "no positions file: set ALLOCATOR_POSITIONS_FILE to the treasury's positions YAML "
            "(see examples/positions.yaml)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PositionsFileError(
            f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return parse_positions(text, source=path.name)
