"""The MILP backend: whole-cent amounts, piecewise dilution, determinism across workers."""

from __future__ import annotations

import pytest

from allocator_dagster.model import build_problem, evaluate
from allocator_dagster.solvers import milp as milp_backend
from allocator_dagster.solvers import solve
from allocator_dagster_tests.support.instances import (
    default_lists_for,
    idle,
    params,
    pool_row,
    universe_of,
)
from allocator_dagster_tests.support.references import (
    BACKENDS,
    MILP_ABS,
    MILP_REL,
    check_against,
    diluted_instance,
    reference_linear,
    tie_instance,
    tie_problem,
    tolerance,
)


def _five_at_twenty_percent(n_pools: int, total: str):
    rows = [pool_row(f"a{i}", apy=8.0 - 0.1 * i, tvl=1e9) for i in range(n_pools)]
    universe = universe_of(rows)
    p = params(max_alloc_percentage=0.2, gas_usd={"default": 5.0}, min_position_usd=10_000.0)
    problem, _ = build_problem(universe, idle(total), p, default_lists_for(universe))
    return problem


def test_milp_is_exact_when_caps_are_whole_cents():
    problem = _five_at_twenty_percent(5, "100000.05")
    ref = reference_linear(problem)
    assert ref[0] == "optimal"
    for backend in BACKENDS:
        check_against(problem, ref, backend)


def test_milp_feasible_when_caps_are_fractional_cents():
    problem = _five_at_twenty_percent(5, "100000.03")
    ref = reference_linear(problem)
    assert ref[0] == "optimal"
    assert solve(problem, "convex").status == "optimal"
    out = solve(problem, "milp")
    assert out.status == "optimal", out.message


def test_milp_with_presolve_and_fractional_cent_caps():
    problem = _five_at_twenty_percent(6, "100000.03")
    ref = reference_linear(problem)
    assert ref[0] == "optimal"
    out = solve(problem, "milp")
    assert out.status == "optimal", out.message
    obj = evaluate(problem, out.x).objective_usd_per_day
    assert obj == pytest.approx(ref[2], abs=tolerance(ref[2], MILP_REL, MILP_ABS))


def test_milp_reports_dilution_as_approximated():
    problem = diluted_instance(1)
    out = solve(problem, "milp")
    notes = {n.part: n for n in out.exactness}
    assert notes["yield"].exact is False and "piecewise" in notes["yield"].treatment


# 12 pools in 4 tie classes, min_pools=3: found by a random search
SLOW_SINGLE_WORKER = (
    [(4.171613, 44_584_300.0, 2), (7.433452, 44_153_980.0, 2), (3.818548, 45_295_170.0, 4),
     (2.148138, 36_837_300.0, 4)],
    3,
)  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_milp_is_deterministic_across_worker_counts(seed):
    problem = tie_instance(seed)
    answers = set()
    for workers in (2, 3, 4):
        out = milp_backend.solve(problem, workers=workers)
        assert out.status == "optimal"
        answers.add(out.x.tobytes())
    assert len(answers) == 1


def test_milp_single_worker_matches_multi_worker():
    problem = tie_problem(*SLOW_SINGLE_WORKER)
    reference = milp_backend.solve(problem, workers=2)
    assert reference.status == "optimal"
    single = milp_backend.solve(problem, workers=1, time_limit_s=3.0)
    assert single.status == "optimal"
    assert single.x.tobytes() == reference.x.tobytes()
