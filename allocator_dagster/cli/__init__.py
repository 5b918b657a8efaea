"""`allocator`: the command line of allocator-dagster (click)."""

from __future__ import annotations

import click

from allocator_dagster.cli import (
    activity,
    backtest,
    backup,
    balances,
    lists,
    metrics,
    plan,
    pools,
    proposals,
    run,
    solve,
)


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


for _module in (
    solve,
    pools,
    lists,
    proposals,
    run,
    activity,
    metrics,
    backup,
    balances,
    plan,
    backtest,
):
    main.add_command(_module.command)
