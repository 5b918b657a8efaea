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


def test_fail_says_each_problem_on_its_own_error_line() -> None:
    """A message of several problems (a parameters file with two bad fields) is one `error:`
    line per problem: a second line without the prefix read as unrelated output."""
    from allocator_dagster.cli.options import fail

    @click.command()
    def failing() -> None:
        fail("params.yaml: field 'a': bad\nparams.yaml: field 'b': worse\x1b[2J\n")

    result = CliRunner().invoke(failing, [])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: params.yaml: field 'a': bad",
        "error: params.yaml: field 'b': worse\\x1b[2J",
    ]


def test_a_usage_error_is_one_line_naming_the_argument_and_the_help(tmp_path) -> None:
    """click's own report of a bad argument is four lines (usage, hint, blank, error); the
    command line's rule is one `error:` line, exit code 2."""
    folder = tmp_path / "metrics.json"
    folder.mkdir()
    for args, needle in [
        (
            ["metrics", "import", "--day", "2025-06-01", str(folder)],
            f"File '{folder}' is a directory",
        ),
        (["metrics", "import", "--day", "June", str(folder)], "Invalid value for '--day'"),
        (["lists", "add", "bogus", "USDC", "--reason", "r", "--by", "b"], "'bogus' is not one of"),
        (["nonsense"], "No such command 'nonsense'"),
    ]:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        [line] = result.output.splitlines()
        assert line.startswith("error: ") and needle in line, line
        assert line.endswith(" --help`)"), line
