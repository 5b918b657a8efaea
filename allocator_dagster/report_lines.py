"""The per-pool lines (`PoolLine`) of a day's report: those of a solved day, from its problem
and cent amounts, and those of a held day, from its holdings.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pandas as pd

from allocator_dagster.allocation_report import PoolLine
from allocator_dagster.model import Evaluation, Holdings, Problem, pool_group, pool_tokens
from allocator_dagster.money import to_cents


class _RowLookup:
    """Rows of a universe by pool id, as `universe.set_index("pool").loc[pool]` gives their
    values, without building an indexed copy of the frame for a few lines."""

    def __init__(self, universe: pd.DataFrame):
        self._position = {p: k for k, p in enumerate(universe["pool"].tolist())}
        self._columns = {c: universe[c].to_numpy() for c in universe.columns}

    def __contains__(self, pool: object) -> bool:
        return pool in self._position

    def row(self, pool: str) -> dict[str, object]:
        k = self._position[pool]
        return {c: values[k] for c, values in self._columns.items()}


def solved_lines(
    problem: Problem,
    amounts: list[Decimal],
    evaluation: Evaluation,
    universe: pd.DataFrame,
    total: Decimal,
    overrides: Mapping[str, int],
) -> list[PoolLine]:
    """The lines of a solved day: each pool it holds or places (at its cent amount), and each
    forced exit at zero; largest first."""
    lookup = _RowLookup(universe)
    lines = []
    for i in range(problem.n):
        if amounts[i] <= 0 and problem.held[i] <= 0:
            continue
        pool = str(problem.pool_ids[i])
        row = lookup.row(pool)
        parts, addresses = pool_tokens(str(row["symbol"]), row.get("underlyingTokens"))
        held = to_cents(problem.held[i])
        lines.append(
            PoolLine(
                pool=pool,
                chain=str(problem.chain[i]),
                project=str(problem.project[i]),
                symbol=str(problem.symbol[i]),
                group=int(problem.group[i]),
                tokens={"symbols": list(parts), "addresses": list(addresses)},
                amount_usd=amounts[i],
                weight=float(amounts[i] / total) if total else 0.0,
                delta_usd=amounts[i] - held,
                apy_used=float(problem.apy[i]),
                daily_yield_usd=float(evaluation.yield_per_pool[i]),
                gas_usd=float(evaluation.gas_per_pool[i]),
                conversion_usd=float(evaluation.conversion_per_pool[i]),
            )
        )
    for exit_ in problem.forced_exits:
        exit_row = lookup.row(exit_.pool) if exit_.pool in lookup else None
        group = pool_group(exit_row, overrides) if exit_row is not None else None
        held = to_cents(exit_.amount_usd)
        symbol = str(exit_row["symbol"]) if exit_row is not None else "?"
        parts, addresses = pool_tokens(
            symbol, exit_row.get("underlyingTokens") if exit_row is not None else ()
        )
        lines.append(
            PoolLine(
                pool=exit_.pool,
                chain=str(exit_row["chain"]) if exit_row is not None else "?",
                project=str(exit_row["project"]) if exit_row is not None else "?",
                symbol=symbol,
                group=group,
                tokens={"symbols": list(parts), "addresses": list(addresses)},
                amount_usd=Decimal("0.00"),
                weight=0.0,
                delta_usd=-held,
                apy_used=0.0,
                daily_yield_usd=0.0,
                gas_usd=exit_.gas_usd,
                conversion_usd=0.0,
            )
        )
    lines.sort(key=lambda line: (-line.amount_usd, line.pool))
    return lines


def held_lines(
    holdings: Holdings, universe: pd.DataFrame, overrides: Mapping[str, int]
) -> list[PoolLine]:
    """The lines of a held day: each held pool at its amount, no trade and no forecast yield."""
    held = holdings.held()
    lines = []
    lookup = universe.set_index("pool", drop=False)
    total = holdings.total_usd
    for pool, amount in held.items():
        row = lookup.loc[pool] if pool in lookup.index else None
        symbol = str(row["symbol"]) if row is not None else "?"
        parts, addresses = pool_tokens(
            symbol, row.get("underlyingTokens") if row is not None else ()
        )
        lines.append(
            PoolLine(
                pool=pool,
                chain=str(row["chain"]) if row is not None else "?",
                project=str(row["project"]) if row is not None else "?",
                symbol=symbol,
                group=pool_group(row, overrides) if row is not None else None,
                tokens={"symbols": list(parts), "addresses": list(addresses)},
                amount_usd=amount,
                weight=float(amount / total) if total else 0.0,
                delta_usd=Decimal("0.00"),
                apy_used=0.0,
                daily_yield_usd=0.0,
                gas_usd=0.0,
                conversion_usd=0.0,
            )
        )
    return lines
