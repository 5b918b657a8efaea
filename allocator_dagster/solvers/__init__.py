"""Solver backends for the one problem of `allocator_dagster.model`.

`convex` (cvxpy) and `milp` (OR-Tools CP-SAT) consume the same `Problem`; `solve` dispatches
and applies the shared exact presolve first.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import cache

import numpy as np

from allocator_dagster.model import Problem, SolveOutcome, polish, presolve_dominated
from allocator_dagster.solvers import _compat  # noqa: F401  - must run before cvxpy is imported
from allocator_dagster.solvers._output import native_output_to_stderr


class Backend(StrEnum):
    """The solver backends; the name is stored with each allocation and its snapshot."""

    CONVEX = "convex"
    MILP = "milp"


BACKENDS: tuple[str, ...] = tuple(b.value for b in Backend)  # for messages and choices


def to_backend(name: str) -> Backend:
    """The backend called `name` (configuration is text); a clear error naming the choices."""
    if name not in BACKENDS:
        raise ValueError(f"solver backend must be one of {BACKENDS}, got {name!r}")
    return Backend(name)


def _backend(name: str) -> Callable[[Problem], SolveOutcome]:
    if name == Backend.CONVEX:
        from allocator_dagster.solvers import convex

        return convex.solve
    if name == Backend.MILP:
        from allocator_dagster.solvers import milp

        return milp.solve
    raise ValueError(f"unknown solver backend {name!r}; choose one of {', '.join(BACKENDS)}")


def solve(
    problem: Problem, backend: str = Backend.CONVEX, *, presolve: bool = True
) -> SolveOutcome:
    """Solve `problem`; the returned amounts are aligned with `problem.pool_ids` (all of them)."""
    run = _backend(backend)
    reduced, keep = presolve_dominated(problem) if presolve else (problem, None)
    with native_output_to_stderr():  # solver libraries print to descriptor 1 directly
        outcome = run(reduced)
    if outcome.x is not None:
        x = outcome.x
        if keep is not None and reduced is not problem:
            x = np.zeros(problem.n)
            x[keep] = outcome.x
        outcome.x = polish(problem, x)
    return outcome


def solver_versions() -> dict[str, str]:
    """Versions of the numerical libraries: part of what a snapshot records."""
    return dict(_solver_versions())


@cache
def _solver_versions() -> dict[str, str]:
    """Looked up once per process: the libraries a process has imported cannot change under it."""
    from importlib.metadata import version

    import cvxpy
    import highspy  # noqa: F401

    return {
        "cvxpy": cvxpy.__version__,
        "highspy": version("highspy"),
        "clarabel": version("clarabel"),
        "ortools": version("ortools"),
    }
