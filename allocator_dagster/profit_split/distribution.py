"""What each wallet receives: a profit in exact cents split by percentages, adding up to the cent.

Rounding each share on its own can lose or invent a cent (3 x 33.33 % of 1.00 is 0.99), so the
shares are floored to the cent and the missing cents go to the largest remainders; ties go to the
category listed first, so the same inputs always give the same cents.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from allocator_dagster.money import from_whole_cents, whole_cents
from allocator_dagster.profit_split.split import Split

WHOLE_IN_BASIS_POINTS = 10_000  # 100.00 % in hundredths of a percent


def largest_remainder(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split the integer `total` in proportion to integer `weights`, exactly (Hamilton's method).

    Ties between equal remainders go to the key that comes first in `weights`, which keeps the
    result deterministic; used for cents here and for basis points by the rules proposer.
    """
    if total < 0:
        raise ValueError(f"cannot split a negative total ({total})")
    if any(weight < 0 for weight in weights.values()):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights.values())
    if weight_sum == 0:
        if total:
            raise ValueError("cannot split a positive total over zero weights")
        return dict.fromkeys(weights, 0)
    floors: dict[str, int] = {}
    remainders: list[tuple[int, int, str]] = []
    for order, (key, weight) in enumerate(weights.items()):
        quotient, remainder = divmod(total * weight, weight_sum)
        floors[key] = quotient
        remainders.append((-remainder, order, key))
    missing = total - sum(floors.values())
    for _, _, key in sorted(remainders)[:missing]:
        floors[key] += 1
    return floors


def split_basis_points(split: Split) -> dict[str, int]:
    """The split in hundredths of a percent (80.00 % -> 8000), refusing anything not exact."""
    points: dict[str, int] = {}
    for category, pct in split.as_dict().items():
        if not pct.is_finite() or pct < 0:
            raise ValueError(f"{category} percentage {pct} is not a non-negative number")
        scaled = pct * 100
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{category} percentage {pct} has more than two decimals")
        points[category] = int(scaled)
    if sum(points.values()) != WHOLE_IN_BASIS_POINTS:
        raise ValueError(f"split {split.label()} does not sum to 100")
    return points


def distribute(profit_usd: Decimal, split: Split) -> dict[str, Decimal]:
    """The amount per category in exact cents; the amounts always add up to `profit_usd`."""
    total = whole_cents(profit_usd)
    if total < 0:
        raise ValueError(f"cannot distribute a negative profit ({profit_usd})")
    shares = largest_remainder(total, split_basis_points(split))
    return {category: from_whole_cents(share) for category, share in shares.items()}


def distribution_moment(day: date, now: datetime) -> datetime:
    """The moment whose split in force applies to the profit of `day`.

    Day D's profit is realised at the end of D and paid out during D+1, under the split in force
    then: for a recent day that is now (a split approved today applies), and once D+1 is over it
    is the end of D+1, so re-running an old day reproduces what was paid.
    """
    end_of_next_day = datetime.combine(day + timedelta(days=2), time(), tzinfo=UTC)
    return min(now.astimezone(UTC), end_of_next_day)
