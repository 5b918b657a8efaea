"""`allocator lists`: add, show and remove entries, with clear refusals."""

from __future__ import annotations

from click.testing import CliRunner

from allocator_dagster.cli import main as cli


def test_lists_cli(database_url: str) -> None:
    runner = CliRunner()
    args = ["--database-url", database_url]
    added = runner.invoke(
        cli, ["lists", "add", "icebox-tokens", "usde", "--reason", "depeg", "--by", "ops", *args]
    )
    assert added.exit_code == 0, added.output
    assert "USDE added to icebox-tokens" in added.output
    shown = runner.invoke(cli, ["lists", "show", "icebox-tokens", *args])
    assert "USDE" in shown.output and "ops: depeg" in shown.output
    bad = runner.invoke(
        cli,
        ["lists", "add", "approved-protocols", "Not A Slug", "--reason", "r", "--by", "x", *args],
    )
    assert bad.exit_code == 2 and "not a protocol slug" in bad.output
    missing = runner.invoke(cli, ["lists", "remove", "icebox-tokens", "USDE", "--by", "x", *args])
    assert missing.exit_code != 0 and "--reason" in missing.output
