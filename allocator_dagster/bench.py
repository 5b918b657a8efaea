"""Benchmarks that print tables: `python -m allocator_dagster.bench solve|backfill`.

solve: for each size, the sample universe's day with held positions from the day before; wall
time of both backends on the same `Problem`, and, in the same run on the same instance, a direct
HiGHS solve of the linear model (`scipy.optimize.milp`, no presolve) as the reference. Each size
runs in its own process so that its peak memory is its own.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from allocator_dagster.model import DAYS_PER_YEAR_PCT, Holdings, Problem, build_problem, evaluate
from allocator_dagster.parameters import AllocationParameters
from allocator_dagster.solvers import Backend

BENCH_DAY = dt.date(2026, 6, 1)
BENCH_PARAMS = AllocationParameters(min_pools=10, min_position_usd=10_000.0)


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


@click.group()
def main() -> None:
    """Benchmarks (tables, not tests)."""


@main.command("solve")
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


PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DAY_MARK = re.compile(r"^(\d{4}-\d{2}-\d{2}): (pool day stored|allocation day stored|day checked)$")


@contextmanager
def _scratch_database(kind: str, workdir: str, name: str, pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database of `kind` (sqlite | postgresql) for one run; dropped afterwards."""
    from pathlib import Path

    import sqlalchemy as sa

    if kind == "sqlite":
        db = Path(workdir) / f"{name}.sqlite"
        db.unlink(missing_ok=True)
        yield f"sqlite:///{db}"
        db.unlink(missing_ok=True)
        return
    if kind != "postgresql":
        raise click.BadParameter(f"database must be sqlite or postgresql, got {kind!r}")
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield (
            sa.engine.make_url(pg_admin_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _day_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds each day took in the run, summed over the steps (pool day, allocation, checks),
    from the per-day log lines each step writes and the step's start."""
    from dagster import DagsterEventType

    last: dict[str, float] = {}
    per_day: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        step = entry.step_key or ""
        if entry.is_dagster_event and entry.dagster_event_type == DagsterEventType.STEP_START:
            last[step] = entry.timestamp
            continue
        match = DAY_MARK.match(entry.user_message or "") if not entry.is_dagster_event else None
        if match and step in last:
            day = match.group(1)
            per_day[day] = per_day.get(day, 0.0) + entry.timestamp - last[step]
            last[step] = entry.timestamp
    return per_day


def _backfill_run(
    days: int,
    n_pools: int,
    single: bool,
    database: str,
    workdir: str,
    pg_admin_url: str,
    chart_days: int | None = None,
) -> dict:
    """Materialise the whole allocation graph, checks included, for `days` days on a fresh
    database, in this process; its figures as a dict. `chart_days`: the days of the run that
    draw charts (None: the resource's default, the last 30)."""
    import os

    from dagster import DagsterInstance, materialize

    from allocator_dagster.defs.allocation.assets import allocation_chain, pool_daily_metrics
    from allocator_dagster.defs.allocation.checks import ALLOCATION_CHECKS, POOL_CHECKS
    from allocator_dagster.defs.resources import (
        AllocationResource,
        DatabaseResource,
        PoolSourceResource,
    )
    from allocator_dagster.pool_ingestion import sample_universe
    from allocator_dagster.storage import get_engine

    end = BENCH_DAY
    start = end - dt.timedelta(days=days - 1)
    # the sample's history up to the range, generated before the clock starts (real data is
    # fetched, not generated: the generator is not part of the pipeline's cost)
    sample_universe(7, n_pools).universe_for(start)
    os.environ.setdefault("DAGSTER_HOME", workdir)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    assets = [pool_daily_metrics, allocation_chain, *POOL_CHECKS, *ALLOCATION_CHECKS]
    name = f"bench_{'single' if single else 'multi'}_{os.getpid()}"
    with _scratch_database(database, workdir, name, pg_admin_url) as url:
        get_engine(url)
        resources = {
            "database": DatabaseResource(database_url=url),
            "pool_source": PoolSourceResource(sample_pools=n_pools),
            "allocation": AllocationResource()
            if chart_days is None
            else AllocationResource(chart_days=chart_days),
        }
        with DagsterInstance.ephemeral() as instance:
            t0, c0 = time.perf_counter(), time.process_time()
            per_day: dict[str, float] = {}
            if single:
                tags = {
                    "dagster/asset_partition_range_start": start.isoformat(),
                    "dagster/asset_partition_range_end": end.isoformat(),
                }
                result = materialize(
                    assets, instance=instance, resources=resources, tags=tags, run_config=quiet
                )
                ok, runs = result.success, 1
                per_day = _day_seconds(instance, result.run_id)
            else:
                ok, runs, day = True, 0, start
                while day <= end:
                    d0 = time.perf_counter()
                    ok &= materialize(
                        assets,
                        instance=instance,
                        resources=resources,
                        partition_key=day.isoformat(),
                        run_config=quiet,
                    ).success
                    per_day[day.isoformat()] = time.perf_counter() - d0
                    runs += 1
                    day += dt.timedelta(days=1)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    window = min(30, days)
    timed = [per_day[k] for k in sorted(per_day)]
    return {
        "mode": "one run" if single else "one run per partition",
        "database": database,
        "pools": n_pools,
        "runs": runs,
        "days": days,
        "seconds": seconds,
        "cpu": cpu,
        "first_s_per_day": sum(timed[:window]) / window if len(timed) >= window else None,
        "last_s_per_day": sum(timed[-window:]) / window if len(timed) >= window else None,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ok": ok,
    }


def _in_child(*args: str) -> dict:
    """Run one measurement in its own process (its peak memory is its own); its JSON line."""
    out = subprocess.run(
        [sys.executable, "-m", "allocator_dagster.bench", *args],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise click.ClickException(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@main.command("backfill")
@click.option("--days", default=365, show_default=True)
@click.option("--pools", "n_pools", default=20_000, show_default=True)
@click.option("--modes", default="single", show_default=True, help="single,multi")
@click.option("--databases", default="sqlite,postgresql", show_default=True)
@click.option("--pg-admin-url", default=PG_ADMIN_URL, show_default=True)
@click.option(
    "--chart-days",
    type=int,
    default=None,
    help="days of the run that draw charts (default: the resource's, the last 30); 0 makes "
    "the first and the last 30 days comparable",
)
@click.option("--one", default=None, hidden=True, help="mode:database, in this process")
def backfill_command(
    days: int,
    n_pools: int,
    modes: str,
    databases: str,
    pg_admin_url: str,
    chart_days: int | None,
    one: str | None,
) -> None:
    """Backfill the whole chain, checks included, on the sample data: one run (and one run per
    partition), on each database, each in its own process."""
    import tempfile

    if one is not None:
        mode, database = one.split(":")
        with tempfile.TemporaryDirectory() as workdir:
            row = _backfill_run(
                days, n_pools, mode == "single", database, workdir, pg_admin_url, chart_days
            )
        print(json.dumps(row))
        return
    charts = [] if chart_days is None else ["--chart-days", str(chart_days)]
    rows = []
    for database in databases.split(","):
        for mode in modes.split(","):
            rows.append(
                _in_child(
                    "backfill",
                    "--days",
                    str(days),
                    "--pools",
                    str(n_pools),
                    "--pg-admin-url",
                    pg_admin_url,
                    *charts,
                    "--one",
                    f"{mode}:{database}",
                )
            )
            print(f"measured {mode} on {database}", file=sys.stderr)
    target = 90.0 * days / 365
    print(
        f"Targets for {days} days (90 s per 365 days): under {target:.1f} s wall, peak memory "
        "under 1024 MiB, the last 30 days' s/day about the first 30 days'."
    )
    print(
        "| backfill of the whole chain | database | pools | runs | days | wall s | CPU s | s/day "
        "| first 30 days s/day | last 30 days s/day | peak MiB | succeeded |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['database']} | {r['pools']:,} | {r['runs']} | {r['days']} "
            f"| {r['seconds']:.1f} | {r['cpu']:.1f} | {r['seconds'] / r['days']:.3f} "
            f"| {_seconds(r['first_s_per_day'])} | {_seconds(r['last_s_per_day'])} "
            f"| {r['peak_mib']:.0f} | {r['ok']} |"
        )


# ------------------------------------------------------------------ `allocator solve` end to end

# The reference: a plain script that reads the same POOLS.csv with the csv module and solves the
# linear allocation (yield, capital and per-pool caps) with HiGHS through scipy.optimize.milp.
PLAIN_SCRIPT = """
import csv, sys
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

total = 10_000_000.0
tvl, apy = [], []
with open(sys.argv[1], newline="", encoding="utf-8") as handle:
    for row in csv.DictReader(handle):
        parts = [float(row[k]) for k in ("apyBase", "apyReward") if row[k]]
        value = float(row["apy"]) if row["apy"] else sum(parts) if parts else None
        if value is None or not row["tvlUsd"]:
            continue
        tvl.append(float(row["tvlUsd"]))
        apy.append(value)
tvl, apy = np.array(tvl), np.array(apy)
upper = np.minimum(0.05 * tvl, 0.25 * total)
res = milp(
    -apy / 36500.0,
    constraints=LinearConstraint(np.ones((1, len(apy))), total, total),
    integrality=np.zeros(len(apy)),
    bounds=Bounds(np.zeros(len(apy)), upper),
)
order = np.argsort(-res.x)[:20]
for i in order:
    print(f"{i:>6} {res.x[i]:>16,.2f} {apy[i]:>8.2f}")
print(f"objective {-res.fun:,.2f} USD/day")
"""


# Where `allocator solve`'s CPU goes: the same steps as the command, in one process, each step's
# CPU seconds (user + sys). What cvxpy imports from scipy is taken on its own first (cvxpy imports
# it whatever else it needs), then the rest of cvxpy.
PHASES_SCRIPT = """
import json, os, sys
from decimal import Decimal

def cpu():
    t = os.times()
    return t.user + t.system

marks = [("Python start", 0.0, cpu())]
def mark(name, what):
    marks.append((name, what, cpu()))

pools, params_path, backend = sys.argv[1:4]
import allocator_dagster.cli.solve as cli
from allocator_dagster.parameters import load_parameters_file
mark("import allocator_dagster.cli.solve", "numpy, pandas, pydantic, the model; no solver")
params, lists = load_parameters_file(params_path)
universe = cli.read_pools_csv(pools)
mark("read PARAMS.yaml and POOLS.csv", "csv, DefiLlama record validation, the frame")
if backend == "convex":
    import scipy.optimize
    mark("import scipy.optimize", "cvxpy needs it (the plain script imports it too)")
    import scipy.stats
    mark("import scipy.stats", "only because cvxpy.atoms.quantum_rel_entr imports it")
    import allocator_dagster.solvers.convex
    mark("import cvxpy (the rest)", "cvxpy, osqp, clarabel, scs, highspy")
else:
    import allocator_dagster.solvers.milp
    mark("import OR-Tools CP-SAT", "ortools, protobuf")
holdings = cli.Holdings.idle(Decimal("10000000.0"))
report = cli.decide(universe, holdings, params, lists, cli.Backend(backend))
mark("decide", "eligibility, problem, presolve, solve, binding limits")
cli.render_table(report, cli.report_labels(report, universe), None)
mark("the report", "labels and the table")
out = [[marks[0][0], "", marks[0][2]]]
out += [[name, what, t - marks[i][2]] for i, (name, what, t) in enumerate(marks[1:])]
print(json.dumps(out))
"""


def measure_solve_phases(pools: str, params: str, backend: str, repeats: int) -> list[dict]:
    """Each step of `allocator solve` (PHASES_SCRIPT), median CPU seconds of `repeats` runs."""
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", PHASES_SCRIPT, pools, params, backend],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return [
        {"step": step, "what": what, "cpu_s": float(np.median([r[i][2] for r in runs]))}
        for i, (step, what, _) in enumerate(runs[0])
    ]


def write_solve_inputs(directory: str, n_pools: int) -> tuple[str, str]:
    """POOLS.csv (the sample universe's bench day, DefiLlama's columns) and PARAMS.yaml."""
    import csv
    from pathlib import Path

    import yaml

    from allocator_dagster.pool_ingestion import sample_universe
    from allocator_dagster.sources.records import POOL_COLUMNS

    source = sample_universe(7, n_pools)
    universe, _ = source.universe_for(BENCH_DAY)
    pools = Path(directory) / "POOLS.csv"
    with pools.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(POOL_COLUMNS)
        for row in universe.itertuples(index=False):
            cells = []
            for name, value in zip(POOL_COLUMNS, row, strict=True):
                if name == "underlyingTokens":
                    value = ";".join(value)
                elif value is None or (isinstance(value, float) and value != value):
                    value = ""
                elif isinstance(value, bool):
                    value = "true" if value else "false"
                cells.append(value)
            writer.writerow(cells)
    params = Path(directory) / "PARAMS.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                **BENCH_PARAMS.model_dump(mode="json"),
                **source.default_lists().model_dump(mode="json"),
            }
        ),
        encoding="utf-8",
    )
    return str(pools), str(params)


def _child_run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys) of one child process, run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure_solve_cli(n_pools: int, repeats: int) -> tuple[dict, dict[str, list[dict]]]:
    """`allocator solve` and the plain script on the same CSV, each the best of `repeats`; and
    the steps of a solve with each backend."""
    import shutil
    import tempfile
    from pathlib import Path

    allocator = shutil.which("allocator") or str(Path(sys.executable).parent / "allocator")
    with tempfile.TemporaryDirectory() as directory:
        pools, params = write_solve_inputs(directory, n_pools)
        script = Path(directory) / "plain_highs.py"
        script.write_text(PLAIN_SCRIPT, encoding="utf-8")
        solve = [allocator, "solve", "--pools", pools, "--params", params]
        commands = {
            "allocator solve": solve,
            "allocator solve --solver milp": [*solve, "--solver", "milp"],
            "plain scipy.optimize.milp": [sys.executable, str(script), pools],
            # what the convex backend cannot do without: its import, in a process of its own
            "python -c 'import cvxpy'": [sys.executable, "-c", "import cvxpy"],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(repeats):  # interleaved, so that a busy moment hits both alike
            for name, argv in commands.items():
                runs[name].append(_child_run(argv))
        phases = {b: measure_solve_phases(pools, params, b, repeats) for b in ("convex", "milp")}
    best = {
        name: {"wall_s": min(w for w, _ in r), "cpu_s": min(c for _, c in r)}
        for name, r in runs.items()
    }
    return best, phases


@main.command("solve-cli")
@click.option("--pools", "n_pools", default=20_000, show_default=True)
@click.option("--repeats", default=5, show_default=True)
def solve_cli_command(n_pools: int, repeats: int) -> None:
    """`allocator solve` end to end against a plain script solving the CSV with scipy's HiGHS."""
    rows, phases = measure_solve_cli(n_pools, repeats)
    ref = rows["plain scipy.optimize.milp"]
    print(f"{n_pools:,} pools, best of {repeats} runs each (process start to exit)")
    print("| command | wall s | CPU s (user+sys) | wall / plain | CPU / plain |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {r['wall_s'] / ref['wall_s']:.2f}x | {r['cpu_s'] / ref['cpu_s']:.2f}x |"
        )
    for backend, steps in phases.items():
        total = sum(p["cpu_s"] for p in steps)
        print(
            f"\nallocator solve --solver {backend}, step by step (median CPU s of {repeats} runs)"
        )
        print("| step | what | CPU s | share |")
        print("|---|---|---:|---:|")
        for p in steps:
            print(f"| {p['step']} | {p['what']} | {p['cpu_s']:.3f} | {p['cpu_s'] / total:.0%} |")
        print(f"| total | | {total:.3f} | |")


# ------------------------------------------------------------------ one live day, end to end


@contextmanager
def _pools_server(records: list) -> Iterator[str]:
    """A local HTTP server speaking DefiLlama's `/pools` (the API's envelope); its base URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps({"status": "success", "data": records}).encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.rstrip("/") != "/pools":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _live_run(n_pools: int, database: str, workdir: str, pg_admin_url: str) -> dict:
    """Today's partition of the whole graph with the live source, against a local `/pools`
    server holding the sample's records of today, on a database holding the 60 days before."""
    import os

    from dagster import DagsterInstance, materialize

    from allocator_dagster.defs.allocation.assets import allocation_chain, pool_daily_metrics
    from allocator_dagster.defs.allocation.checks import ALLOCATION_CHECKS, POOL_CHECKS
    from allocator_dagster.defs.resources import (
        AllocationResource,
        DatabaseResource,
        PoolSourceResource,
    )
    from allocator_dagster.forecast import LOOKBACK_DAYS
    from allocator_dagster.pool_ingestion import sample_universe
    from allocator_dagster.sources.records import PoolSource
    from allocator_dagster.storage import get_engine
    from allocator_dagster.storage.pools import replace_pool_day

    today = dt.datetime.now(dt.UTC).date()
    source = sample_universe(7, n_pools)
    os.environ.setdefault("DAGSTER_HOME", workdir)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with _scratch_database(database, workdir, f"bench_live_{os.getpid()}", pg_admin_url) as url:
        engine = get_engine(url)
        for back in range(LOOKBACK_DAYS, 0, -1):  # the stored history the forecast reads
            day = today - dt.timedelta(days=back)
            universe, rejections = source.universe_for(day)
            replace_pool_day(engine, day, universe, rejections, source=PoolSource.DEFILLAMA)
        PoolSourceResource(sample_pools=n_pools).seed_lists(engine)
        records = source.records_for(today)
        with _pools_server(records) as base_url, DagsterInstance.ephemeral() as instance:
            resources = {
                "database": DatabaseResource(database_url=url),
                "pool_source": PoolSourceResource(
                    source="defillama", defillama_base_url=base_url, retries=0
                ),
                "allocation": AllocationResource(),
            }
            t0, c0 = time.perf_counter(), time.process_time()
            ok = materialize(
                [pool_daily_metrics, allocation_chain, *POOL_CHECKS, *ALLOCATION_CHECKS],
                instance=instance,
                resources=resources,
                partition_key=today.isoformat(),
                run_config=quiet,
            ).success
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "database": database,
        "pools": n_pools,
        "records": len(records),
        "seconds": seconds,
        "cpu": cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ok": ok,
    }


@main.command("live")
@click.option("--pools", "n_pools", default=20_000, show_default=True)
@click.option("--databases", default="sqlite,postgresql", show_default=True)
@click.option("--pg-admin-url", default=PG_ADMIN_URL, show_default=True)
@click.option("--one", default=None, hidden=True, help="database, in this process")
def live_command(n_pools: int, databases: str, pg_admin_url: str, one: str | None) -> None:
    """One day of the live path in Dagster: fetch `/pools` from a local server, validate, store,
    forecast from 60 stored days, solve, store, checks; on each database."""
    import tempfile

    if one is not None:
        with tempfile.TemporaryDirectory() as workdir:
            print(json.dumps(_live_run(n_pools, one, workdir, pg_admin_url)))
        return
    rows = []
    for database in databases.split(","):
        rows.append(
            _in_child(
                "live", "--pools", str(n_pools), "--pg-admin-url", pg_admin_url, "--one", database
            )
        )
        print(f"measured the live day on {database}", file=sys.stderr)
    print("Target: under 3 s end to end in Dagster.")
    print("| live day | database | records | wall s | CPU s | peak MiB | succeeded |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| fetch .. checks | {r['database']} | {r['records']:,} | {r['seconds']:.2f} "
            f"| {r['cpu']:.2f} | {r['peak_mib']:.0f} | {r['ok']} |"
        )


if __name__ == "__main__":
    main()
