"""The convex backend: the same answer on every call, with and without presolve."""

from __future__ import annotations

import pytest

from allocator_dagster.solvers import solve
from allocator_dagster_tests.support.references import tie_instance


@pytest.mark.parametrize("seed", range(6))
def test_convex_is_deterministic(seed):
    problem = tie_instance(seed)
    for presolve in (True, False):
        first = solve(problem, "convex", presolve=presolve)
        second = solve(problem, "convex", presolve=presolve)
        assert first.status == "optimal"
        assert first.x.tobytes() == second.x.tobytes()
