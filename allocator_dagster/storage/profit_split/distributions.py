"""The day's profit distribution (one row per category) and the split each distributed day used."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from allocator_dagster.profit_split.governance import SYSTEM_ACTOR
from allocator_dagster.profit_split.split import CATEGORIES, Split
from allocator_dagster.storage.profit_split.proposal_log import as_decimal, record_event, utc_now
from allocator_dagster.storage.schema import profit_distributions


def write_distribution(
    engine: sa.Engine,
    day: date,
    *,
    proposal_id: uuid.UUID,
    profit_usd: Decimal,
    split: Split,
    amounts: Mapping[str, Decimal],
    profit_source: str,
    created_at: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
) -> None:
    """Replace the day's distribution (four rows) and record the event, in one transaction."""
    if set(amounts) != set(CATEGORIES):
        raise ValueError(f"amounts must cover exactly {CATEGORIES}")
    if sum(amounts.values(), Decimal(0)) != profit_usd:
        raise ValueError("the amounts do not add up to the profit")
    created_at = created_at or utc_now()
    rows = [
        {
            "distribution_date": day,
            "category": category,
            "proposal_id": proposal_id,
            "profit_usd": profit_usd,
            "pct": getattr(split, category),
            "amount_usd": amounts[category],
            "profit_source": profit_source,
            "created_at": created_at,
        }
        for category in CATEGORIES
    ]
    with engine.begin() as conn:
        conn.execute(
            profit_distributions.delete().where(profit_distributions.c.distribution_date == day)
        )
        conn.execute(profit_distributions.insert(), rows)
        record_event(
            conn,
            "distribution",
            actor=actor,
            subject=day,
            subject_type="distribution",
            payload={
                "split_id": proposal_id,
                "split": split.to_json(),
                "profit_usd": profit_usd,
                "profit_source": profit_source,
                "amounts": dict(amounts),
            },
            at=created_at,
        )


def read_distribution(engine: sa.Engine, day: date) -> list[dict[str, Any]]:
    """The day's distribution rows in category order (empty if none)."""
    order = sa.case({c: i for i, c in enumerate(CATEGORIES)}, value=profit_distributions.c.category)
    query = (
        sa.select(profit_distributions)
        .where(profit_distributions.c.distribution_date == day)
        .order_by(order)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def split_history(
    engine: sa.Engine, first: date, last: date
) -> list[tuple[date, dict[str, Decimal]]]:
    """The split used by each distributed day from `first` to `last` (category -> percent)."""
    query = sa.select(
        profit_distributions.c.distribution_date,
        profit_distributions.c.category,
        profit_distributions.c.pct,
    ).where(profit_distributions.c.distribution_date.between(first, last))
    days: dict[date, dict[str, Decimal]] = {}
    with engine.connect() as conn:
        for day, category, pct in conn.execute(query):
            days.setdefault(day, {})[category] = as_decimal(pct)
    return sorted(days.items())
