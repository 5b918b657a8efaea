"""What a solver backend returns: the outcome, how exact each part is, and the binding limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from allocator_dagster.money import round_usd


@dataclass
class BindingLimit:
    """A limit that binds at the optimum, with its shadow price from the continuous solve."""

    limit: str
    scope: str
    value_usd: float
    shadow_price_usd_per_day_per_usd: float
    shadow_price_usd_per_day_per_pct: float | None = None
    description: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "limit": self.limit,
            "scope": self.scope,
            "value_usd": round_usd(self.value_usd),
            "shadow_price_usd_per_day_per_usd": self.shadow_price_usd_per_day_per_usd,
            "shadow_price_usd_per_day_per_pct": self.shadow_price_usd_per_day_per_pct,
            "description": self.description,
        }


@dataclass
class ExactnessNote:
    part: str
    treatment: str
    exact: bool

    def as_dict(self) -> dict[str, object]:
        return {"part": self.part, "treatment": self.treatment, "exact": self.exact}


class SolveStatus(StrEnum):
    """How a solve ended; also the stored status of a day's allocation (`asset_allocations`).

    `feasible`: a time limit stopped the search with a usable, not proven optimal, answer.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    FAILED = "failed"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass
class SolveOutcome:
    """What a backend returns for one problem: amounts in USD for `problem.pool_ids`."""

    status: SolveStatus
    x: np.ndarray | None
    backend: str
    solve_seconds: float
    exactness: list[ExactnessNote] = field(default_factory=list)
    message: str = ""
    bound_usd_per_day: float | None = None
