"""Money in cents: the one place that says how a USD amount becomes cents and how it is rounded.

Ledger money is `Decimal` in exact cents (`to_cents`, `cents_down`, `whole_cents`); the solvers
work in floats, and meet the cent grid through `to_cent_grid`, `int_cents` and
`round_to_cent`. The float helpers round differently on purpose, each says why.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import numpy as np

CENT = Decimal("0.01")
CENTS_PER_USD = 100
HALF_CENT_USD = 0.005  # float amounts closer than this are the same number of cents
# The largest capital or holding accepted (one trillion USD): its cents (1e14) stay exact in a
# float64 (exact integers up to 2**53, about 9e15) and far inside CP-SAT's int64 cents, so both
# solvers keep cent precision; above it the cvxpy backend fails and Decimal's 28 digits overflow.
MAX_USD = Decimal(10) ** 12


class AmountTooLargeError(ValueError):
    """A USD amount above MAX_USD; the message names the amount and the limit."""


def check_usd(amount: Decimal | float, what: str) -> None:
    """Refuse an amount no treasury holds before any arithmetic on it can overflow."""
    value = Decimal(str(amount))
    if value.is_finite() and abs(value) > MAX_USD:
        raise AmountTooLargeError(
            f"{what} is {value:.6E} USD; at most {MAX_USD:,} USD is accepted "
            "(the solvers keep cent precision up to that)"
        )


def to_cents(value: float | Decimal | str) -> Decimal:
    """`value` to the nearest cent, ties to even, read from its shortest decimal form.

    A float is read as it prints (0.285 stays 0.285, not its binary expansion 0.28499...), so
    the cents are the ones a person reading the number would expect.
    """
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def cents_down(amount: Decimal) -> Decimal:
    """`amount` cut to the cent towards zero: the floor that a largest-remainder split tops up."""
    return amount.quantize(CENT, rounding=ROUND_DOWN)


def whole_cents(amount: Decimal) -> int:
    """`amount` as an integer number of cents; refuses fractions of a cent instead of rounding money."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"amount must be a finite Decimal, got {amount!r}")
    scaled = amount * CENTS_PER_USD
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {amount} is not a whole number of cents")
    return int(scaled)


def from_whole_cents(count: int) -> Decimal:
    """An integer number of cents as USD with two decimals (1234 -> 12.34)."""
    return Decimal(count) * CENT


def to_cent_grid(limits: np.ndarray) -> np.ndarray:
    """Limits on the cent grid, rounded up: money moves in cents, so a limit of 20,000.006 USD
    admits 20,000.01 (and a holding rounded to the cent never breaks the limit it was placed at).
    The scaled limit is first rounded to 1e-6 cent, so float noise in the product never adds a
    cent."""
    return np.ceil(np.round(limits * 100.0, 6)) / 100.0


def int_cents(usd: float) -> int:
    """A float USD amount as integer cents, nearest, ties to even on the binary value (a solver's
    integer unit; the amounts it returns are turned back into exact cents by the caller)."""
    return int(round(usd * 100.0))


def int_cents_array(usd: np.ndarray) -> np.ndarray:
    """`int_cents` of every element, as int64."""
    return np.rint(usd * 100.0).astype(np.int64)


def round_to_cent(usd: np.ndarray) -> np.ndarray:
    """Float amounts rounded to the cent the way numpy does (scale by 100, round half to even,
    scale back): fast on arrays, and enough to tell whether two amounts differ by a cent."""
    return np.round(usd, 2)


def round_usd(value: float) -> float:
    """A float USD amount rounded to the cent for a report: Python's `round`, correctly rounded
    on the float's exact binary value, where `round_to_cent` first scales by 100 and may land on
    the other side of a near tie; reports keep the figures they have always printed."""
    return round(value, 2)
