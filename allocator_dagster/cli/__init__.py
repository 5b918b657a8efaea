"""`allocator`: the command line of allocator-dagster (click)."""

from __future__ import annotations

import importlib

import click

# Each sub-command lives in its own module next to this one and exposes `command` (or `group`).
_SUBCOMMANDS = ("solve", "pools", "lists", "proposals", "run", "activity", "metrics")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Daily DeFi capital allocation and profit-split governance."""


for _name in _SUBCOMMANDS:
    try:
        _module = importlib.import_module(f"allocator_dagster.cli.{_name}")
    except ModuleNotFoundError as exc:  # a sub-command not written yet
        if exc.name != f"allocator_dagster.cli.{_name}":
            raise
        continue
    main.add_command(_module.command)
