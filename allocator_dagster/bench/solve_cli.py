"""solve-cli: `allocator solve` end to end (process start, imports, CSV, solve, report) against
a plain script that reads the same CSV and solves the LP with HiGHS through scipy.optimize.milp."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import click
import numpy as np

from allocator_dagster.bench.common import BENCH_DAY, BENCH_PARAMS

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


@click.command("solve-cli")
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
