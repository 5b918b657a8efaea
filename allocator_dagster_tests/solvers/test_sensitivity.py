"""Shadow prices of the binding limits (`solvers/sensitivity.py`).

The linear model's prices come from HiGHS through highspy, in the rows cvxpy gives HiGHS for the
same problem. The reference is that cvxpy problem (`_cvxpy_duals`: it prices diluted days, and
the linear prices came from it before), solved by the same HiGHS. Where a day's duals are not
unique, another layout of the same LP (limits as variable bounds, say) reports other, equally
valid prices: on the seeds in `DEGENERATE` it does, and stored reports must not change with it.
"""

from __future__ import annotations

import numpy as np
import pytest

from allocator_dagster.model import DAYS_PER_YEAR_PCT, BindingLimit, Problem, build_problem
from allocator_dagster.model.eligibility import GROUP_LABELS
from allocator_dagster.solvers import sensitivity, solve
from allocator_dagster_tests.support.instances import idle, params, pool_row, universe_of
from allocator_dagster_tests.support.problems import lists
from allocator_dagster_tests.support.references import linear_instance

# (seed, with holdings): random instances whose prices a bounds layout of the LP reports
# differently (a full group or capital whose members all sit at a limit)
DEGENERATE = [(441, False), (447, True), (458, True), (459, False), (487, True), (539, False)]
DEGENERATE += [(551, False), (555, True), (597, True)]
SEEDS = [(0, False), (0, True), (1, False), (3, True), (4, False), (5, True), (6, False), (6, True)]
SEEDS += [(7, False), (8, True), (9, False), (9, True), (29, True)]


def assert_same_limits(got: list[BindingLimit], want: list[BindingLimit]) -> None:
    assert [(b.limit, b.scope) for b in got] == [(b.limit, b.scope) for b in want]
    for g, w in zip(got, want, strict=True):
        assert g.value_usd == pytest.approx(w.value_usd, rel=1e-9)
        assert g.shadow_price_usd_per_day_per_usd == pytest.approx(
            w.shadow_price_usd_per_day_per_usd, rel=1e-6
        )
        if w.shadow_price_usd_per_day_per_pct is None:
            assert g.shadow_price_usd_per_day_per_pct is None
        else:
            assert g.shadow_price_usd_per_day_per_pct == pytest.approx(
                w.shadow_price_usd_per_day_per_pct, rel=1e-6
            )


@pytest.mark.parametrize(("seed", "held"), SEEDS + DEGENERATE)
def test_linear_prices_are_those_of_the_cvxpy_problem(seed: int, held: bool) -> None:
    problem = linear_instance(seed, 5 + seed % 36, held, False)
    checked = 0
    for day in [problem, problem.yield_only()] if problem.is_held.any() else [problem]:
        x = solve(day, "milp").x
        if x is None:
            continue
        around = sensitivity._around(day, x)
        assert around is not None
        want = sensitivity._priced(day, x, around, sensitivity._cvxpy_duals(day, around))
        assert_same_limits(sensitivity.binding_limits(day, x), want)
        checked += 1
    assert checked


def _day(**overrides: object) -> Problem:
    """a 6 %, b 5 %, c 4.5 % fill their 30 % caps; d (4 %) takes the rest; e (3 %) nothing."""
    rows = [
        pool_row(pool, symbol=symbol, apy=apy, tvl=1e8)
        for pool, symbol, apy in [
            ("a", "USDC", 6.0),
            ("b", "USDT", 5.0),
            ("c", "DAI", 4.5),
            ("d", "USDC", 4.0),
            ("e", "USDT", 3.0),
        ]
    ]
    values = {"position_max_pct_total_assets": 0.3, "max_alloc_percentage": 0.4}
    values |= {"conversion_penalty_bps": 0.0, **overrides}
    problem, _ = build_problem(universe_of(rows), idle(1_000_000), params(**values), lists())
    return problem


def test_a_cap_price_is_what_one_more_usd_earns() -> None:
    """One more USD in a capped pool comes out of d: the difference of their yields."""
    problem = _day()
    x = solve(problem, "milp").x
    assert x is not None
    caps = {b.scope: b for b in sensitivity.binding_limits(problem, x)}
    assert set(caps) == {"pool a", "pool b", "pool c"}
    for pool, apy in [("a", 6.0), ("b", 5.0), ("c", 4.5)]:
        price = caps[f"pool {pool}"]
        assert price.limit == "position_max_pct_total_assets"
        assert price.value_usd == pytest.approx(300_000)
        assert price.shadow_price_usd_per_day_per_usd == pytest.approx(
            (apy - 4.0) / DAYS_PER_YEAR_PCT
        )


def test_a_diluted_day_is_priced_too() -> None:
    problem = _day(yield_model="diluted")
    x = solve(problem, "convex").x
    assert x is not None
    # (Clarabel's interior point may split the budget's price with the full group 1's cap)
    caps = {b.scope: b for b in sensitivity.binding_limits(problem, x)}
    assert {"pool a", "pool b", "pool c"} <= set(caps)
    assert "pool d" not in caps
    assert caps["pool a"].shadow_price_usd_per_day_per_usd == pytest.approx(
        2.0 / DAYS_PER_YEAR_PCT, rel=1e-5
    )


def test_nothing_selected_has_no_limits() -> None:
    problem = _day()
    assert sensitivity.binding_limits(problem, np.zeros(problem.n)) == []


def test_a_group_cap_says_which_pools_it_holds() -> None:
    """'the group 3 cap' means nothing to an operator who does not know the numbering: the
    description names what the group holds (MODEL.md, "Tokens and groups")."""
    groups = []
    for seed, held in SEEDS + DEGENERATE:
        problem = linear_instance(seed, 5 + seed % 36, held, False)
        x = solve(problem, "milp").x
        if x is not None:
            groups += [
                b for b in sensitivity.binding_limits(problem, x) if b.scope.startswith("group")
            ]
    assert groups, "no instance has a binding group cap: the test would check nothing"
    for limit in groups:
        k = int(limit.scope.split()[1])
        assert f"the group {k} cap ({GROUP_LABELS[k]}: " in limit.description
