"""The four dynamic lists: what a valid entry is, and which changes touch the holdings.

Token entries match a pool's token by symbol or by address (MODEL.md):
- an EVM address `0x` + 40 hex digits (stored lower-case);
- a chain-prefixed address `chain:0x…` or a `coingecko:id` (stored lower-case);
- a base58 mint (Solana and similar, 32-44 characters; stored as given);
- a symbol: 1-32 printable characters without spaces, `-` (it separates a pool's symbol parts),
  `,` or `;` (stored upper-case; non-ASCII letters such as `USD₮0` are fine).
Protocol entries are DefiLlama project slugs: lower-case letters and digits, joined by `-` or `.`
(`aave-v3`, `ether.fi-stake`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LIST_KINDS = {
    "approved-tokens": "approved_tokens",
    "blacklisted-tokens": "blacklisted_tokens",
    "approved-protocols": "approved_protocols",
    "icebox-tokens": "icebox_tokens",
}
TOKEN_LISTS = ("approved_tokens", "blacklisted_tokens", "icebox_tokens")

_EVM = re.compile(r"^0x[0-9a-fA-F]{40}$")
_PREFIXED = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}:[^\s:]{1,128}$", re.IGNORECASE)
_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_SLUG = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")
_SYMBOL_FORBIDDEN = set(" \t\r\n-,;")


class ListValueError(ValueError):
    """An entry that is not a valid token or protocol; the message says what is accepted."""


def normalise_token(value: str) -> str:
    text = value.strip()
    if not text:
        raise ListValueError("a token entry cannot be empty")
    if _EVM.match(text) or (":" in text and _PREFIXED.match(text)):
        return text.lower()
    if _BASE58.match(text) and not text.isupper():
        return text  # a base58 mint (mixed case); an all-capitals word is taken as a symbol
    if len(text) > 32:
        raise ListValueError(
            f"{text[:40]!r} is neither an address (0x + 40 hex, chain:0x…, coingecko:id, base58 mint) "
            "nor a symbol of at most 32 characters"
        )
    bad = sorted({c for c in text if c in _SYMBOL_FORBIDDEN or not c.isprintable()})
    if bad:
        raise ListValueError(
            f"symbol {text!r} contains {', '.join(repr(c) for c in bad)}; a symbol has no spaces, "
            "'-', ',' or ';' ('-' separates the tokens of a pool symbol such as USDC-USDT)"
        )
    return text.upper()


def normalise_protocol(value: str) -> str:
    text = value.strip()
    if not _SLUG.match(text) or len(text) > 128:
        raise ListValueError(
            f"{text[:40]!r} is not a protocol slug (lower-case letters and digits joined by '-' or '.', "
            "as DefiLlama's `project`, e.g. aave-v3)"
        )
    return text


def normalise(list_name: str, value: str) -> str:
    if list_name == "approved_protocols":
        return normalise_protocol(value)
    if list_name in TOKEN_LISTS:
        return normalise_token(value)
    raise ListValueError(f"unknown list {list_name!r}")


@dataclass(frozen=True)
class Change:
    change_id: int
    list_name: str
    action: str
    value: str
    reason: str
    changed_by: str


@dataclass(frozen=True)
class HeldPool:
    pool: str
    project: str
    symbols: tuple[str, ...]
    addresses: tuple[str, ...]


def _still_approved(pool: HeldPool, approved: frozenset[str] | None) -> bool:
    """MODEL.md: every symbol part approved, or every underlying address approved."""
    if approved is None:
        return False
    symbols = [s.upper() for s in pool.symbols]
    addresses = [a.lower() for a in pool.addresses]
    return (bool(symbols) and all(s in approved for s in symbols)) or (
        bool(addresses) and all(a in approved for a in addresses)
    )


def affected_pools(
    change: Change, held: Iterable[HeldPool], approved_now: frozenset[str] | None = None
) -> list[tuple[str, str]]:
    """(pool, reason) for every held pool that `change` makes ineligible.

    `approved_now`: the approved tokens after the changes (upper-case symbols and lower-case
    addresses); a pool that lost an approved token stays eligible if its other form is approved.
    """
    out = []
    value_upper, value_lower = change.value.upper(), change.value.lower()
    for pool in held:
        tokens = {t.upper() for t in pool.symbols} | {a.lower() for a in pool.addresses}
        hit = value_upper in tokens or value_lower in tokens
        if (
            change.list_name in ("blacklisted_tokens", "icebox_tokens")
            and change.action == "add"
            and hit
        ):
            kind = (
                "blacklisted" if change.list_name == "blacklisted_tokens" else "moved to the icebox"
            )
            out.append(
                (
                    pool.pool,
                    f"token {change.value} of pool {pool.pool} was {kind} by {change.changed_by}: {change.reason}",
                )
            )
        elif (
            change.list_name == "approved_tokens"
            and change.action == "remove"
            and hit
            and not _still_approved(pool, approved_now)
        ):
            out.append(
                (
                    pool.pool,
                    f"token {change.value} of pool {pool.pool} is no longer approved ({change.changed_by}: {change.reason})",
                )
            )
        elif (
            change.list_name == "approved_protocols"
            and change.action == "remove"
            and pool.project.lower() == value_lower
        ):
            out.append(
                (
                    pool.pool,
                    f"protocol {change.value} of pool {pool.pool} was removed from the approved protocols ({change.changed_by}: {change.reason})",
                )
            )
    return out


def forced_reasons(
    changes: Iterable[Change], held: Iterable[HeldPool], approved_tokens_now: Iterable[str] = ()
) -> list[str]:
    held = list(held)
    approved = frozenset(
        {t.upper() for t in approved_tokens_now} | {t.lower() for t in approved_tokens_now}
    )
    reasons: list[str] = []
    for change in changes:
        reasons += [reason for _pool, reason in affected_pools(change, held, approved)]
    return reasons


def held_pools_from_details(details: Iterable[Mapping]) -> list[HeldPool]:
    return [
        HeldPool(
            pool=str(d["pool_id"]),
            project=str(d["project"]),
            symbols=tuple(d["tokens"].get("symbols", ())),
            addresses=tuple(d["tokens"].get("addresses", ())),
        )
        for d in details
    ]
