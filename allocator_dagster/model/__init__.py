"""The daily allocation problem of MODEL.md, specified once; one module per concept.

`holdings` (what is held), `eligibility` (which pools may hold money), `problem` (the day's
problem every backend consumes), `evaluation` (scoring and constraint checks on the model's own
scale), `diagnosis` (why a day is infeasible), `presolve` (dominated pools, polishing a solver's
answer) and `results` (what a backend returns). Import from here.
"""

from allocator_dagster.model.diagnosis import diagnose
from allocator_dagster.model.eligibility import (
    ListIndex,
    effective_apy,
    ineligibility_reason,
    pool_group,
    pool_tokens,
)
from allocator_dagster.model.evaluation import (
    Evaluation,
    Violation,
    ViolationKind,
    daily_yield,
    evaluate,
    moved,
    violations,
)
from allocator_dagster.model.holdings import IDLE, Holdings
from allocator_dagster.model.presolve import polish, presolve_dominated
from allocator_dagster.model.problem import (
    CAP_NAMES,
    DAYS_PER_YEAR_PCT,
    ForcedExit,
    ModelInputError,
    Problem,
    build_problem,
)
from allocator_dagster.model.results import BindingLimit, ExactnessNote, SolveOutcome, SolveStatus

__all__ = [
    "CAP_NAMES",
    "DAYS_PER_YEAR_PCT",
    "IDLE",
    "BindingLimit",
    "Evaluation",
    "ExactnessNote",
    "ForcedExit",
    "Holdings",
    "ListIndex",
    "ModelInputError",
    "Problem",
    "SolveOutcome",
    "SolveStatus",
    "Violation",
    "ViolationKind",
    "build_problem",
    "daily_yield",
    "diagnose",
    "effective_apy",
    "evaluate",
    "ineligibility_reason",
    "moved",
    "pool_group",
    "pool_tokens",
    "polish",
    "presolve_dominated",
    "violations",
]
