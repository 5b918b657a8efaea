"""`python -m allocator_dagster.bench COMMAND`: the benchmark commands as one click group."""

from __future__ import annotations

import click

from allocator_dagster.bench.backfill import backfill_command
from allocator_dagster.bench.live import live_command
from allocator_dagster.bench.solve import solve_command
from allocator_dagster.bench.solve_cli import solve_cli_command


@click.group()
def main() -> None:
    """Benchmarks (tables, not tests)."""


for command in (solve_command, backfill_command, live_command, solve_cli_command):
    main.add_command(command)

if __name__ == "__main__":
    main()
