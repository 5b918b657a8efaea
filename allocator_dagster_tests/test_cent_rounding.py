"""Rounding a solver's answer to cents (`cent_rounding`) never breaks a limit: it succeeds or
raises.

On sample seed 23 the convex full solve once returned 1.19 USD short of the capital with every
traded pool at its limit; the cent rounding then pushed 11 pools over their limits by about
0.11 USD and the day raised "the solver's allocation breaks the model".
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from allocator_dagster.cent_rounding import CentRoundingError, cents_exact
from allocator_dagster.model import build_problem
from allocator_dagster.money import CENT, cents_down, to_cents
from allocator_dagster_tests.support.instances import (
    default_lists_for,
    holdings_of,
    params,
    pool_row,
    random_holdings,
    random_params,
    random_universe,
    universe_of,
)

ROWS = [pool_row(p, symbol="USDC", apy=a, tvl=1e9) for p, a in (("a", 4.0), ("b", 6.0), ("c", 5.0))]


def _tight(held_a: float, total: str):
    """Pools b and c at a limit of 200,000 USD; a is held (or not) with a high limit."""
    universe = universe_of(ROWS)
    holdings = holdings_of({"a": held_a} if held_a else {}, float(Decimal(total)) - held_a)
    problem, _ = build_problem(universe, holdings, params(), default_lists_for(universe))
    order = list(problem.pool_ids)
    upper = np.array([5e6 if p == "a" else 200_000.0 for p in order])
    problem = replace(problem, upper=upper, group_caps_usd=(1e9, 1e9, 1e9), min_position_usd=0.0)
    x = np.array([held_a if p == "a" else 200_000.0 for p in order])  # 1.19 USD short
    return problem, x, order


def test_missing_cents_go_to_an_untouched_holding_with_room() -> None:
    problem, x, order = _tight(300_000.0, "700001.19")
    amounts = dict(zip(order, cents_exact(x, problem, Decimal("700001.19")), strict=True))
    assert amounts == {
        "a": Decimal("300001.19"),
        "b": Decimal("200000.00"),
        "c": Decimal("200000.00"),
    }


def test_cents_without_room_anywhere_are_an_error_not_a_breach() -> None:
    problem, x, _ = _tight(0.0, "400001.19")
    with pytest.raises(CentRoundingError, match="1.19 USD short of the capital of 400,001.19 USD"):
        cents_exact(x, problem, Decimal("400001.19"))


def test_surplus_cents_never_go_below_a_floor() -> None:
    problem, _, order = _tight(0.0, "400000.00")
    problem = replace(problem, min_position_usd=200_000.0)
    x = np.array([0.0 if p == "a" else 200_000.004 for p in order])
    # 0.008 USD over after flooring nothing: exactly the total, no cent moves
    assert sum(cents_exact(x, problem, Decimal("400000.00"))) == Decimal("400000.00")
    with pytest.raises(CentRoundingError, match="0.01 USD over"):
        cents_exact(x, problem, Decimal("399999.99"))


def _cents_exact_before(x: np.ndarray, problem, total: Decimal) -> list[Decimal]:
    """`cents_exact` as it stood before issue 16 (every pool's floor, bound and group sum
    computed one by one): the reference the faster one must equal, Decimal for Decimal."""
    amounts: list[Decimal] = []
    untouched = problem.untouched(x)
    remainders = []
    for i, value in enumerate(x.tolist()):
        if untouched[i]:
            amounts.append(to_cents(problem.held[i]))
            continue
        exact = Decimal(repr(max(value, 0.0)))
        floor = cents_down(exact)
        amounts.append(floor)
        if value > 0:
            remainders.append((exact - floor, problem.pool_ids[i], i))
    steps = int(((total - sum(amounts, Decimal("0"))) / CENT).to_integral_value())
    upper = [to_cents(float(u)) if np.isfinite(u) else None for u in problem.upper_given(x)]
    group_room = {
        k: to_cents(float(problem.group_caps_usd[k - 1]))
        - sum((amounts[i] for i in range(len(amounts)) if problem.group[i] == k), Decimal("0"))
        for k in (1, 2, 3)
    }
    remainders.sort(key=lambda r: (-r[0], r[1]))
    spare = sorted(
        (i for i in range(len(amounts)) if untouched[i] and amounts[i] > 0),
        key=lambda i: (-amounts[i], problem.pool_ids[i]),
    )

    def room(i: int) -> bool:
        cap = upper[i]
        pool_ok = cap is None or amounts[i] + CENT <= cap
        return pool_ok and group_room[int(problem.group[i])] >= CENT

    for tier in ([r[2] for r in remainders], spare):
        while steps > 0:
            candidates = [i for i in tier if room(i)]
            if not candidates:
                break
            for i in candidates:
                if steps == 0 or not room(i):
                    continue
                amounts[i] += CENT
                group_room[int(problem.group[i])] -= CENT
                steps -= 1
    floor_usd = [
        to_cents(max(float(problem.lower[i]), problem.min_position_usd)) for i in range(len(x))
    ]
    while steps < 0:
        order = [
            i
            for i in sorted(
                (i for i in range(len(amounts)) if amounts[i] > 0 and not untouched[i]),
                key=lambda i: (-amounts[i], problem.pool_ids[i]),
            )
            if amounts[i] - CENT >= floor_usd[i]
        ]
        if not order:
            break
        for i in order:
            if steps == 0:
                break
            amounts[i] -= CENT
            group_room[int(problem.group[i])] += CENT
            steps += 1
    if steps:
        raise CentRoundingError("no room")
    return amounts


def _outcome(function, x, problem, total) -> list[str] | str:
    try:
        return [str(a) for a in function(x, problem, total)]  # the exponent too
    except CentRoundingError:
        return "no room"


@pytest.mark.parametrize("block", range(4))
def test_cents_exact_equals_the_pool_by_pool_rounding(block: int) -> None:
    """Answers with zeros (and -0.0, tiny negatives), untouched holdings, noise around the
    limits, short and over the capital: the same Decimals (value and exponent) as before."""
    compared = 0
    for seed in range(block * 50, block * 50 + 50):
        rng = np.random.default_rng(9000 + seed)
        n = int(rng.integers(3, 40))
        universe = random_universe(rng, n)
        total = round(float(rng.uniform(1e5, 5e7)), 2)
        parameters = random_params(rng, total, n)
        holdings = random_holdings(rng, universe, total)
        problem, _ = build_problem(universe, holdings, parameters, default_lists_for(universe))
        if problem.n == 0:
            continue
        x = np.where(rng.random(problem.n) < 0.5, 0.0, rng.uniform(0, 1, problem.n))
        x *= total / max(x.sum(), 1.0)
        x[rng.random(problem.n) < 0.1] = -0.0
        x[rng.random(problem.n) < 0.1] = -1e-9
        keep = problem.is_held & (rng.random(problem.n) < 0.5)
        x[keep] = problem.held[keep]
        x = np.minimum(x, problem.upper) + rng.normal(0, 0.004, problem.n) * (x > 0)
        placed = float(np.maximum(x, 0.0).sum())  # the capital the answer places, +- cents
        for capital in (placed, placed + 0.37, placed - 0.51, placed + 25.0):
            money = Decimal(f"{capital:.2f}")
            assert _outcome(cents_exact, x, problem, money) == _outcome(
                _cents_exact_before, x, problem, money
            ), seed
            compared += 1
    assert compared > 100
