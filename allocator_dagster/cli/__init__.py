"""`allocator`: the command line of allocator-dagster (click)."""

from __future__ import annotations

import click

from allocator_dagster.cli import activity, lists, metrics, pools, proposals, run, solve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Daily DeFi capital allocation and profit-split governance."""


for _module in (solve, pools, lists, proposals, run, activity, metrics):
    main.add_command(_module.command)
