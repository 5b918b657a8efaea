"""solve: for each size, the sample universe's day with held positions from the day before; wall
time of both backends on the same `Problem`, and, in the same run on the same instance, a direct
HiGHS solve of the linear model (`scipy.optimize.milp`, no presolve) as the reference. Each size
runs in its own process so that its peak memory is its own.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import time

import click
import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from allocator_dagster.bench.common import BENCH_DAY, BENCH_PARAMS
from allocator_dagster.model import DAYS_PER_YEAR_PCT, Holdings, Problem, build_problem, evaluate
from allocator_dagster.solvers import Backend


def highs_reference(problem: Problem) -> tuple[str, np.ndarray | None]:
    """MODEL.md's linear problem as one MILP for HiGHS, written directly from the Problem arrays.

    Variables: x (USD), z (selected), t (traded, held pools), u (positive move, held pools).
    """
    n, total, horizon = problem.n, problem.total_usd, problem.horizon_days
    held = np.flatnonzero(problem.is_held)
    k = len(held)
    free = ~problem.is_held
    # objective (minimise the negative): yield - costs / H
    c_x = -problem.apy / DAYS_PER_YEAR_PCT + np.where(free, problem.conversion_rate / horizon, 0.0)
    c_z = np.where(free, problem.gas / horizon, 0.0)
    c = np.concatenate(
        [c_x, c_z, problem.gas[held] / horizon, problem.conversion_rate[held] / horizon]
    )
    eye = sp.identity(n, format="csr")
    sel = sp.csr_matrix((np.ones(k), (np.arange(k), held)), shape=(k, n))
    zeros = lambda r, m: sp.csr_matrix((r, m))  # noqa: E731
    blocks, lo, hi = [], [], []

    def add(row_blocks, low, high):
        block = sp.hstack(row_blocks, format="csr")
        blocks.append(block)
        lo.append(np.broadcast_to(np.asarray(low, dtype=float), (block.shape[0],)))
        hi.append(np.broadcast_to(np.asarray(high, dtype=float), (block.shape[0],)))

    add([sp.csr_matrix(np.ones((1, n))), zeros(1, n), zeros(1, k), zeros(1, k)], total, total)
    add([eye, -sp.diags(problem.upper), zeros(n, k), zeros(n, k)], -np.inf, 0.0)  # x <= U z
    add(
        [-eye, sp.diags(np.full(n, problem.min_position_usd)), zeros(n, k), zeros(n, k)],
        -np.inf,
        0.0,
    )
    add(
        [zeros(1, n), sp.csr_matrix(np.ones((1, n))), zeros(1, k), zeros(1, k)],
        problem.min_pools,
        np.inf,
    )
    groups = sp.csr_matrix((np.ones(n), (problem.group - 1, np.arange(n))), shape=(3, n))
    add([groups, zeros(3, n), zeros(3, k), zeros(3, k)], -np.inf, np.array(problem.group_caps_usd))
    if k:
        big = np.maximum(problem.upper[held], problem.held[held]) + 1.0
        h = problem.held[held]
        add([sel, zeros(k, n), -sp.diags(big), zeros(k, k)], -np.inf, h)  # x - h <= M t
        add([-sel, zeros(k, n), -sp.diags(big), zeros(k, k)], -np.inf, -h)  # h - x <= M t
        add([sel, zeros(k, n), zeros(k, k), -sp.identity(k)], -np.inf, h)  # u >= x - h
    a = sp.vstack(blocks, format="csr")
    ub = np.concatenate([problem.upper, np.ones(n), np.ones(k), np.full(k, np.inf)])
    lb = np.concatenate([problem.lower, np.zeros(n + 2 * k)])
    integrality = np.concatenate([np.zeros(n), np.ones(n + k), np.zeros(k)])
    res = milp(
        c,
        constraints=LinearConstraint(a, np.concatenate(lo), np.concatenate(hi)),
        integrality=integrality,
        bounds=Bounds(lb, ub),
        options={"mip_rel_gap": 1e-9, "disp": False},
    )
    if res.x is None:
        return ("infeasible" if res.status == 2 else f"status {res.status}", None)
    return "optimal", np.clip(res.x[:n], 0, None)


def _instance(n_pools: int) -> tuple[Problem, float]:
    from allocator_dagster.pool_ingestion import sample_universe
    from allocator_dagster.rebalance import decide

    source = sample_universe(7, n_pools)
    lists = source.default_lists()
    yesterday, _ = source.universe_for(BENCH_DAY - dt.timedelta(days=1))
    start = decide(yesterday, Holdings.idle(10_000_000), BENCH_PARAMS, lists, Backend.CONVEX)
    positions = {line.pool: line.amount_usd for line in start.lines if line.amount_usd > 0}
    holdings = Holdings(
        positions=positions, idle_usd=start.total_usd - sum(positions.values()) + 12_345
    )
    universe, _ = source.universe_for(BENCH_DAY)
    t0 = time.perf_counter()
    problem, _ = build_problem(universe, holdings, BENCH_PARAMS, lists)
    return problem, time.perf_counter() - t0


def measure_solve(n_pools: int) -> dict:
    """One size, in this process: the three solves on one instance."""
    from allocator_dagster.solvers import solve

    problem, build_s = _instance(n_pools)
    row: dict = {
        "pools": n_pools,
        "eligible": problem.n,
        "held": int(problem.is_held.sum()),
        "build_s": build_s,
    }
    t0 = time.perf_counter()
    status, x_ref = highs_reference(problem)
    row["highs_s"] = time.perf_counter() - t0
    row["highs_obj"] = evaluate(problem, x_ref).objective_usd_per_day if x_ref is not None else None
    for backend in ("convex", "milp"):
        t0 = time.perf_counter()
        outcome = solve(problem, backend)
        row[f"{backend}_s"] = time.perf_counter() - t0
        row[f"{backend}_status"] = outcome.status
        row[f"{backend}_obj"] = (
            evaluate(problem, outcome.x).objective_usd_per_day if outcome.x is not None else None
        )
    row["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["reference_status"] = status
    return row


def _print_solve_table(rows: list[dict]) -> None:
    header = (
        "| pools | eligible | held | HiGHS direct s | convex s | convex/HiGHS | milp (CP-SAT) s | milp status "
        "| objective HiGHS | objective convex | objective milp | peak MiB |"
    )
    print(header)
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['pools']:,} | {r['eligible']:,} | {r['held']} | {r['highs_s']:.3f} | {r['convex_s']:.3f} "
            f"| {r['convex_s'] / r['highs_s']:.2f}x | {r['milp_s']:.3f} | {r['milp_status']} "
            f"| {r['highs_obj']:.4f} | {r['convex_obj']:.4f} | {r['milp_obj']:.4f} | {r['peak_mib']:.0f} |"
        )


@click.command("solve")
@click.option("--sizes", default="1000,5000,20000", show_default=True)
@click.option("--one", type=int, default=None, hidden=True)
def solve_command(sizes: str, one: int | None) -> None:
    """Both backends vs a direct HiGHS solve of the linear model, on the same instance."""
    if one is not None:
        print(json.dumps(measure_solve(one)))
        return
    rows = []
    for size in [int(s) for s in sizes.split(",")]:
        out = subprocess.run(
            [sys.executable, "-m", "allocator_dagster.bench", "solve", "--one", str(size)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"measured {size} pools", file=sys.stderr)
    _print_solve_table(rows)
