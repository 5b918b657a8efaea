"""What one day's allocation reports (MODEL.md's "What every solve reports"), and its result hash.

`Decision` is what the day does with the portfolio, `PoolLine` one pool of the allocation and
`AllocationReport` the whole day; `result_hash` covers the deterministic part of the report (no
timings) and `stored_result_hash` recomputes it from a stored report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from allocator_dagster.model import BindingLimit, ExactnessNote, SolveStatus
from allocator_dagster.parameters import sha256_of
from allocator_dagster.solvers import Backend


class Decision(StrEnum):
    """What a day does with the portfolio (MODEL.md's rebalance decision), as stored."""

    FULL = "full"  # reallocate everything
    YIELD_ONLY = "yield-only"  # place only the idle cash
    FORCED = "forced"  # a full reallocation a forced exit (or a sensor) demands
    HOLD = "hold"  # infeasible or failed: the holdings stay as they are


@dataclass(frozen=True)
class PoolLine:
    """One pool of the allocation: the amount, its move from the holdings and what it costs."""

    pool: str
    chain: str
    project: str
    symbol: str
    group: int | None  # None: a vanished pool's exit (its group is unknown)
    tokens: dict[str, list[str]]
    amount_usd: Decimal
    weight: float
    delta_usd: Decimal
    apy_used: float
    daily_yield_usd: float
    gas_usd: float
    conversion_usd: float

    def as_dict(self) -> dict[str, object]:
        return {
            "pool": self.pool,
            "chain": self.chain,
            "project": self.project,
            "symbol": self.symbol,
            "group": self.group,
            "tokens": self.tokens,
            "amount_usd": str(self.amount_usd),
            "weight": round(self.weight, 10),
            "delta_usd": str(self.delta_usd),
            "apy_used": round(self.apy_used, 8),
            "daily_yield_usd": round(self.daily_yield_usd, 6),
            "gas_usd": round(self.gas_usd, 6),
            "conversion_usd": round(self.conversion_usd, 6),
        }


@dataclass
class AllocationReport:
    """Everything MODEL.md's "What every solve reports" asks for, for one day."""

    status: SolveStatus
    decision: Decision
    reasons: list[str]
    backend: Backend
    total_usd: Decimal
    lines: list[PoolLine]
    daily_yield_usd: float
    gas_usd: float
    conversion_usd: float
    objective_usd_per_day: float
    binding_limits: list[BindingLimit]
    exactness: list[ExactnessNote]
    solve_seconds: float
    alternatives: dict[str, dict[str, float | str]] = field(default_factory=dict)
    eligible_pools: int = 0
    ineligible_pools: int = 0
    ineligible_summary: dict[str, int] = field(default_factory=dict)
    # held pools missing from the day's data, set aside (held, not solved): pool -> why
    held_missing: dict[str, str] = field(default_factory=dict)

    @property
    def costs_usd(self) -> float:
        return self.gas_usd + self.conversion_usd

    @property
    def is_new_allocation(self) -> bool:
        return self.status.has_solution and self.decision != Decision.HOLD

    def result_payload(self) -> dict[str, object]:
        """The deterministic part of the report (no timings): what `result_hash` covers."""
        return {
            "status": self.status,
            "decision": self.decision,
            "reasons": self.reasons,
            "backend": self.backend,
            "total_usd": str(self.total_usd),
            "allocations": [line.as_dict() for line in self.lines],
            "objective_usd_per_day": round(self.objective_usd_per_day, 6),
            "daily_yield_usd": round(self.daily_yield_usd, 6),
            "costs_usd": {
                "gas": round(self.gas_usd, 6),
                "conversion": round(self.conversion_usd, 6),
                "total": round(self.costs_usd, 6),
            },
        }

    @property
    def result_hash(self) -> str:
        return sha256_of(self.result_payload())

    def as_dict(self) -> dict[str, object]:
        out = self.result_payload()
        out.update(
            {
                "result_hash": self.result_hash,
                "binding_limits": [b.as_dict() for b in self.binding_limits],
                "exactness": [e.as_dict() for e in self.exactness],
                "solve_seconds": round(self.solve_seconds, 4),
                "alternatives": self.alternatives,
                "eligible_pools": self.eligible_pools,
                "ineligible_pools": self.ineligible_pools,
                "ineligible_summary": self.ineligible_summary,
            }
        )
        if self.held_missing:
            out["held_missing"] = dict(self.held_missing)
        return out


# The part of a stored report that its `result_hash` covers (the keys of `result_payload`).
RESULT_FIELDS = (
    "status",
    "decision",
    "reasons",
    "backend",
    "total_usd",
    "allocations",
    "objective_usd_per_day",
    "daily_yield_usd",
    "costs_usd",
)


def stored_result_hash(report: Mapping[str, object]) -> str:
    """The result hash of a stored report (`as_dict`), recomputed from its own content."""
    return sha256_of({name: report.get(name) for name in RESULT_FIELDS})
