"""The profit split: four percentages of the platform's profit, exact to the hundredth.

A value type only: whether a split is acceptable (sums to 100, within bounds) is for
`validation.py`, how it changes for `policy.py`, and what each wallet receives for
`distribution.py`; every one of them builds on this module, which imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

CATEGORIES: tuple[str, ...] = ("reinvestment", "dao", "lucky", "creator")
CATEGORY_LABELS = {
    "reinvestment": "reinvestment (system wallet)",
    "dao": "DAO treasury",
    "lucky": "lucky lottery",
    "creator": "creator rewards",
}
HUNDRED = Decimal(100)
PCT_QUANTUM = Decimal("0.01")


def to_decimal(value: Any) -> Decimal:
    """An exact Decimal from a Decimal, int or numeric string; floats are refused (0.1 is inexact)."""
    if isinstance(value, bool | float):
        raise TypeError(f"expected an exact number (Decimal, int or string), got {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    raise TypeError(f"expected an exact number (Decimal, int or string), got {value!r}")


def fmt_pct(value: Decimal) -> str:
    """A percentage with two decimals, the stored precision (80 -> '80.00')."""
    return f"{value.quantize(PCT_QUANTUM, rounding=ROUND_HALF_EVEN)}"


@dataclass(frozen=True)
class Split:
    """Percentages of the platform's profit per category; validity is checked by validation.py."""

    reinvestment: Decimal
    dao: Decimal
    lucky: Decimal
    creator: Decimal

    def __post_init__(self) -> None:
        for category in CATEGORIES:
            object.__setattr__(self, category, to_decimal(getattr(self, category)))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Split:
        """From {'reinvestment': ..., 'dao': ..., 'lucky': ..., 'creator': ...}; extra keys are errors."""
        missing = [c for c in CATEGORIES if c not in values]
        extra = sorted(set(values) - set(CATEGORIES))
        if missing or extra:
            raise ValueError(
                f"split needs exactly {list(CATEGORIES)}; missing {missing}, extra {extra}"
            )
        return cls(**{c: values[c] for c in CATEGORIES})

    def as_dict(self) -> dict[str, Decimal]:
        """Category -> percentage, always in CATEGORIES order (the tie-break order of cents)."""
        return {c: getattr(self, c) for c in CATEGORIES}

    def to_json(self) -> dict[str, str]:
        """Strings, not floats, so the stored audit trail keeps the exact values."""
        return {c: str(getattr(self, c)) for c in CATEGORIES}

    @property
    def total(self) -> Decimal:
        return sum(self.as_dict().values(), Decimal(0))

    def changes_from(self, other: Split) -> dict[str, Decimal]:
        """Percentage points gained (+) or lost (-) per category relative to `other`."""
        return {c: getattr(self, c) - getattr(other, c) for c in CATEGORIES}

    def max_change_from(self, other: Split) -> Decimal:
        """The largest move of any one category, in percentage points."""
        return max(abs(v) for v in self.changes_from(other).values())

    def label(self) -> str:
        """'80.00/15.00/3.00/2.00' in the order reinvestment/DAO/lucky/creator."""
        return "/".join(fmt_pct(getattr(self, c)) for c in CATEGORIES)


SEED_SPLIT = Split(Decimal(80), Decimal(15), Decimal(3), Decimal(2))
