"""Reconciliation: the observed holdings of a day against what the previous day's plan expected.

The expected holdings are the paper ledger of yesterday's allocation (`paper_trading.roll_forward`
of yesterday's start, plan and observed APYs). A drift means the plan was not (fully) executed,
or something happened to the money (a hack, a depeg, fees the model does not know). The day's
decision always starts from the observed holdings; the drift is information, never an input.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from allocator_dagster.model import IDLE, Holdings


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
