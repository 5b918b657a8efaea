"""The blocking check of the distribution: the stored cents add up, under a valid split.

It re-reads what was written to profit_distributions rather than trusting the asset's own
arithmetic, so a storage round-trip (SQLite REAL, a partial write) cannot slip through.
"""

# No `from __future__ import annotations`: Dagster checks the context annotation's object.
import warnings
from decimal import Decimal

import dagster as dg
from dagster import AssetCheckExecutionContext

from allocator_dagster.defs.partitions import partition_day
from allocator_dagster.defs.profit_split.assets import profit_distribution
from allocator_dagster.defs.profit_split.partitions import PARTITIONS
from allocator_dagster.defs.resources import DatabaseResource
from allocator_dagster.profit_split.distribution import distribute
from allocator_dagster.profit_split.split import CATEGORIES, Split
from allocator_dagster.storage import profit_split as store


def distribution_problems(rows: list[dict]) -> list[str]:
    """Everything wrong with one day's stored distribution rows (empty when it is exact)."""
    categories = [row["category"] for row in rows]
    if sorted(categories) != sorted(CATEGORIES):
        return [f"expected one row per category {list(CATEGORIES)}, found {categories}"]
    problems: list[str] = []
    profits = {row["profit_usd"] for row in rows}
    proposals = {row["proposal_id"] for row in rows}
    if len(profits) != 1:
        problems.append(f"rows disagree on the profit: {sorted(profits)}")
    if len(proposals) != 1:
        problems.append(f"rows disagree on the split's proposal: {sorted(proposals)}")
    profit = rows[0]["profit_usd"]
    total = sum((row["amount_usd"] for row in rows), Decimal(0))
    if total != profit:
        problems.append(f"amounts add up to {total}, not the profit {profit}")
    split = Split(**{row["category"]: row["pct"] for row in rows})
    if split.total != 100:
        problems.append(f"percentages add up to {split.total}, not 100")
    if not problems:
        expected = distribute(profit, split)
        for row in rows:
            if row["amount_usd"] != expected[row["category"]]:
                problems.append(
                    f"{row['category']} got {row['amount_usd']}, the split gives "
                    f"{expected[row['category']]}"
                )
    return problems


with warnings.catch_warnings():
    # Partitioned asset checks are a preview feature of Dagster 1.13; this is the supported way
    # to check each day's partition of the distribution.
    warnings.filterwarnings("ignore", message=".*partitions_def.*")

    @dg.asset_check(
        asset=profit_distribution,
        blocking=True,
        partitions_def=PARTITIONS,
        description="The stored amounts are exact cents that add up to the day's profit.",
    )
    def distribution_cents_add_up(
        context: AssetCheckExecutionContext, database: DatabaseResource
    ) -> dg.AssetCheckResult:
        rows = store.read_distribution(database.engine(), partition_day(context))
        problems = distribution_problems(rows)
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(problems) or "exact",
            metadata={
                "rows": len(rows),
                "total_usd": float(sum((r["amount_usd"] for r in rows), Decimal(0))),
                "problems": "; ".join(problems) or "none",
            },
        )
