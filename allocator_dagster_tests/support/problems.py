"""Small allocation problems from pool rows: the lists, parameters and holdings tests vary."""

from __future__ import annotations

from allocator_dagster.model import (
    Holdings,
    build_problem,
)
from allocator_dagster.parameters import DynamicLists
from allocator_dagster_tests.support.instances import (
    idle,
    params,
    universe_of,
)


def lists(
    tokens=("USDC", "USDT", "DAI"),
    protocols=("aave-v3",),
    blacklisted=(),
    icebox=(),
) -> DynamicLists:
    return DynamicLists(
        approved_tokens=list(tokens),
        approved_protocols=list(protocols),
        blacklisted_tokens=list(blacklisted),
        icebox_tokens=list(icebox),
    )


def build(rows, holdings: Holdings | None = None, lst: DynamicLists | None = None, **overrides):
    universe = universe_of(rows)
    return build_problem(
        universe,
        holdings or idle(1_000_000),
        params(**overrides),
        lst if lst is not None else lists(),
    )


def eligible_ids(rows, lst=None, **overrides) -> list[str]:
    problem, _ = build(rows, lst=lst, **overrides)
    return list(problem.pool_ids)
