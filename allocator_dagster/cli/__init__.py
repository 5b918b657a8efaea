"""`allocator`: the command line of allocator-dagster (click).

Each sub-command's module is imported only when that command runs (or when help lists them):
`allocator solve` then loads what a solve needs and not SQLAlchemy, Dagster or the profit split.
"""

from __future__ import annotations

import importlib
import sys

import click

# command name -> module of allocator_dagster.cli that defines it as `command`
COMMANDS = (
    "solve",
    "pools",
    "lists",
    "proposals",
    "run",
    "activity",
    "metrics",
    "backup",
    "balances",
    "plan",
    "backtest",
)


class _Main(click.Group):
    """The `allocator` group: sub-commands load lazily, and a database that cannot be used
    (unreachable, read-only file) or a usage error (a missing option, an invalid value, a folder
    given for a file) is a one-line error with exit code 2 in every sub-command, never a
    traceback or click's four-line usage report."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command = importlib.import_module(f"allocator_dagster.cli.{cmd_name}").command
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # click's own report is four lines (usage, a hint, a blank, the error): one line
            # like every other error, still naming the argument and where the help is
            from allocator_dagster.cli.options import fail

            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            fail(f"{exc.format_message()} (see `{where} --help`)")
        except Exception as exc:
            # only a command that loaded the storage can raise its error: do not load it here
            db = sys.modules.get("allocator_dagster.storage.db")
            if db is None or not isinstance(exc, db.StorageError):
                raise
            from allocator_dagster.cli.options import fail

            fail(exc)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Daily DeFi capital allocation and profit-split governance."""
