"""`allocator`: the command line of allocator-dagster (click)."""

from __future__ import annotations

import importlib

import click

# Each sub-command lives in its own module next to this one and exposes `command` (or `group`).
_SUBCOMMANDS = ("solve", "pools", "lists", "proposals", "run", "backup")


class _Main(click.Group):
    """The `allocator` group: a database that cannot be used (unreachable, read-only file) is a
    one-line error with exit code 2 in every sub-command, never a traceback."""

    def invoke(self, ctx: click.Context):
        from allocator_dagster.storage import StorageError
        from allocator_dagster.terminal import shown

        try:
            return super().invoke(ctx)
        except StorageError as exc:
            click.echo(f"error: {shown(exc, lines=True)}", err=True)
            ctx.exit(2)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
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
