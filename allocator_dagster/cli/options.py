"""Options several commands share, defined once so every command reads them the same way."""

from __future__ import annotations

import math
import sys
from typing import Any, NoReturn

import click

from allocator_dagster.storage import DATABASE_URL_ENV
from allocator_dagster.terminal import shown

DAY = click.DateTime(formats=["%Y-%m-%d"])


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange, refusing NaN and infinities: every comparison with NaN is false, so
    `--capital nan` passed the range and failed later as a decimal.InvalidOperation traceback."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def fail(message: object) -> NoReturn:
    """A user's error on stderr, exit code 2, never a traceback: one escaped `error: ...` line
    per problem (a message of several lines is several problems, each said on its own)."""
    lines = [line for line in shown(message, lines=True).split("\n") if line.strip()]
    for line in lines or [""]:
        click.echo(f"error: {line}", err=True)
    sys.exit(2)


# Every command that reads or writes the application database takes it after its own name
# (`allocator lists show ... --database-url URL`); unset, the environment variable, else the
# embedded SQLite file.
database_url_option = click.option(
    "--database-url",
    envvar=DATABASE_URL_ENV,
    default=None,
    show_envvar=True,
    help=f"SQLAlchemy URL of the application database (default: ${DATABASE_URL_ENV}, else the "
    "embedded SQLite file .data/allocator.sqlite).",
)
