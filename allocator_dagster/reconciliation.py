"""Reconciliation: the observed holdings of a day against what the previous day's plan expected.

The expected holdings are the paper ledger of yesterday's allocation (`paper_trading.roll_forward`
of yesterday's start, plan and observed APYs). A drift means the plan was not (fully) executed,
or something happened to the money (a hack, a depeg, fees the model does not know). The day's
decision always starts from the observed holdings; the drift is information, never an input.
A drift beyond the operator's tolerance (`DriftTolerance`) is worth a warning: the pools beyond it
are named by `beyond`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from allocator_dagster.model import IDLE, Holdings
from allocator_dagster.money import to_cents


@dataclass(frozen=True)
class PoolDrift:
    pool: str
    expected_usd: Decimal
    observed_usd: Decimal

    @property
    def drift_usd(self) -> Decimal:
        return self.observed_usd - self.expected_usd


@dataclass(frozen=True)
class Reconciliation:
    """Observed minus expected, per pool (idle cash as `idle_usd`) and in total, exact cents."""

    expected: Holdings
    observed: Holdings
    pools: tuple[PoolDrift, ...]

    @property
    def total_drift_usd(self) -> Decimal:
        return self.observed.total_usd - self.expected.total_usd

    @property
    def drifted(self) -> tuple[PoolDrift, ...]:
        return tuple(p for p in self.pools if p.drift_usd != 0)

    def as_dict(self) -> dict[str, object]:
        """Plain data (amounts as strings) for metadata and reports."""
        return {
            "expected_total_usd": str(self.expected.total_usd),
            "observed_total_usd": str(self.observed.total_usd),
            "total_drift_usd": str(self.total_drift_usd),
            "pools": [
                {
                    "pool": p.pool,
                    "expected_usd": str(p.expected_usd),
                    "observed_usd": str(p.observed_usd),
                    "drift_usd": str(p.drift_usd),
                }
                for p in self.drifted
            ],
        }


def reconcile(expected: Holdings, observed: Holdings) -> Reconciliation:
    """Every pool either side holds, and the idle cash, in pool order (idle last)."""
    exp, obs = expected.held(), observed.held()
    rows = [
        PoolDrift(pool, exp.get(pool, Decimal("0.00")), obs.get(pool, Decimal("0.00")))
        for pool in sorted(set(exp) | set(obs))
    ]
    rows.append(PoolDrift(IDLE, expected.idle_usd, observed.idle_usd))
    return Reconciliation(expected=expected, observed=observed, pools=tuple(rows))


@dataclass(frozen=True)
class DriftTolerance:
    """How much drift is normal: an absolute amount in USD and/or a percentage of the expected
    capital (None: not used). A pool's drift, or the total drift, beyond the smallest limit that
    is set warns; with neither set every drift of a cent or more warns."""

    usd: Decimal | None = Decimal("100.00")
    pct_of_capital: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("usd", "pct_of_capital"):
            value = getattr(self, name)
            if value is not None and (not value.is_finite() or value < 0):
                raise ValueError(
                    f"drift tolerance {name} must be a non-negative number, got {value}"
                )

    @classmethod
    def parse(cls, usd: str, pct_of_capital: str) -> DriftTolerance:
        """From two settings, each a decimal number or empty (not used)."""

        def number(text: str, name: str) -> Decimal | None:
            if not text.strip():
                return None
            try:
                return Decimal(text.strip())
            except InvalidOperation:
                raise ValueError(f"drift tolerance {name} {text!r} is not a number") from None

        return cls(number(usd, "usd"), number(pct_of_capital, "pct_of_capital"))

    def allowed_usd(self, capital_usd: Decimal) -> Decimal:
        """The largest drift that does not warn, for a treasury of `capital_usd` (exact cents)."""
        limits = [to_cents(self.usd)] if self.usd is not None else []
        if self.pct_of_capital is not None:
            limits.append(to_cents(capital_usd * self.pct_of_capital / 100))
        return min(limits, default=Decimal("0.00"))

    def describe(self) -> str:
        parts = [f"{self.usd:,.2f} USD"] if self.usd is not None else []
        parts += [f"{self.pct_of_capital}% of capital"] if self.pct_of_capital is not None else []
        return " or ".join(parts) or "any drift"


def beyond(reconciliation: Reconciliation, tolerance: DriftTolerance) -> tuple[PoolDrift, ...]:
    """The pools (and idle cash) whose drift is beyond the tolerance; a total drift beyond it
    with no single pool beyond is reported as the pool `total`."""
    allowed = tolerance.allowed_usd(reconciliation.expected.total_usd)
    out = tuple(p for p in reconciliation.drifted if abs(p.drift_usd) > allowed)
    if not out and abs(reconciliation.total_drift_usd) > allowed:
        rec = reconciliation
        return (PoolDrift("total", rec.expected.total_usd, rec.observed.total_usd),)
    return out
