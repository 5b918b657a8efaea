"""The command line is consistent: one --database-url, taken after the command's own name, and
help text where an operator needs it (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.cli.options import database_url_option


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    """Every sub-command, through click's own look-up: the top-level group loads its commands
    lazily, so `group.commands` is empty until one runs."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield " ".join((*path, name)), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def _option(command: click.Command, name: str) -> click.Option | None:
    return next((p for p in command.params if isinstance(p, click.Option) and p.name == name), None)


def test_database_url_is_one_option_of_every_command_that_uses_the_database() -> None:
    @database_url_option
    @click.command()
    def reference(database_url: str | None) -> None: ...

    expected = _option(reference, "database_url")
    assert expected is not None
    with_url = []
    for path, command in _commands(main):
        option = _option(command, "database_url")
        if isinstance(command, click.Group):
            assert option is None, f"`allocator {path}` takes --database-url at the group level"
        elif option is not None:
            assert (option.opts, option.envvar, option.help) == (
                expected.opts,
                expected.envvar,
                expected.help,
            ), path
            with_url.append(path)
    assert {"proposals list", "proposals review", "lists add", "pools fetch", "activity"} <= set(
        with_url
    )


def test_the_commands_an_operator_types_have_help() -> None:
    runner = CliRunner()
    for args in (["lists", "add"], ["lists", "remove"]):
        shown = runner.invoke(main, [*args, "--help"])
        assert "VALUE is a token" in shown.output and "DefiLlama project slug" in shown.output
    listed = runner.invoke(main, ["lists", "--help"]).output
    assert "Add VALUE to a list" in listed and "Remove VALUE from a list." in listed
    propose = {name: command for name, command in _commands(main)}["proposals propose"]
    for name in ("reinvestment", "dao", "lucky", "creator", "confidence", "day"):
        option = _option(propose, name)
        assert option is not None and option.help, name


def test_the_old_group_level_spelling_is_refused_clearly() -> None:
    result = CliRunner().invoke(main, ["proposals", "--database-url", "sqlite://", "list"])
    assert result.exit_code == 2 and "No such option '--database-url'" in result.output
