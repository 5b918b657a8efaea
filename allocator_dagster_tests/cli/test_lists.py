"""`allocator lists`: add, show and remove entries with clear refusals; concurrent changes,
hostile names and reasons, unwritable databases."""

from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.schema import approved_tokens, dynamic_list_changes
from allocator_dagster_tests.support.processes import at_once


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _history(url: str) -> list[tuple[str, str]]:
    with get_engine(url).connect() as conn:
        return [
            (r.action, r.value)
            for r in conn.execute(
                sa.select(dynamic_list_changes).order_by(dynamic_list_changes.c.change_id)
            )
        ]


def test_twenty_concurrent_adds_of_one_value(database_url: str) -> None:
    calls = [
        ("lists", "add", "approved-tokens", "usdc", "--reason", "stable", "--by", f"p{i}",
         "--database-url", database_url)
        for i in range(20)
    ]  # fmt: skip
    results = at_once(_cli, calls)
    assert [code for code, _ in results].count(0) == 1, results
    for code, output in results:
        if code != 0:
            assert code == 2 and "'USDC' is already in approved_tokens" in output, output
            assert "Traceback" not in output
    assert _history(database_url) == [("add", "USDC")]


def test_twenty_concurrent_removes_of_one_entry(database_url: str) -> None:
    assert _cli(
        "lists", "add", "approved-tokens", "USDC", "--reason", "r", "--by", "a",
        "--database-url", database_url,
    )[0] == 0  # fmt: skip
    calls = [
        ("lists", "remove", "approved-tokens", "USDC", "--reason", "depeg", "--by", f"p{i}",
         "--database-url", database_url)
        for i in range(20)
    ]  # fmt: skip
    results = at_once(_cli, calls)
    assert [code for code, _ in results].count(0) == 1, results
    assert all(
        code == 2 and "'USDC' is not in approved_tokens" in out for code, out in results if code
    ), results
    assert _history(database_url) == [("add", "USDC"), ("remove", "USDC")]


def test_a_name_longer_than_the_column_is_refused_before_the_database(database_url: str) -> None:
    code, output = _cli(
        "lists", "add", "approved-tokens", "USDC", "--reason", "r", "--by", "x" * 129,
        "--database-url", database_url,
    )  # fmt: skip
    assert code == 2, output
    assert "--by (who makes the change) is 129 characters long; at most 128" in output
    assert _history(database_url) == []
    with get_engine(database_url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(approved_tokens)).scalar() == 0


def test_names_are_stored_cleaned(database_url: str) -> None:
    code, output = _cli(
        "lists", "add", "approved-tokens", "USDC", "--reason", "r", "--by", " Ａlice\u200b \t Smith\x07",
        "--database-url", database_url,
    )  # fmt: skip
    assert code == 0, output
    assert "by Alice Smith)" in output
    with get_engine(database_url).connect() as conn:
        assert conn.execute(sa.select(dynamic_list_changes.c.changed_by)).scalar() == "Alice Smith"


def test_control_sequences_are_shown_escaped(database_url: str) -> None:
    reason = "\x1b[2J\x1b[1Ainjected\rapproved\u202e"
    code, output = _cli(
        "lists", "add", "approved-tokens", "USDC", "--reason", reason, "--by", "alice",
        "--database-url", database_url,
    )  # fmt: skip
    assert code == 0, output
    code, output = _cli("lists", "show", "approved-tokens", "--database-url", database_url)
    assert code == 0, output
    assert "\x1b" not in output and "\r" not in output and "\u202e" not in output
    assert "\\x1b[2J\\x1b[1Ainjected\\x0dapproved\\u202e" in output


def test_a_read_only_sqlite_file_is_named(tmp_path) -> None:
    path = tmp_path / "allocator.sqlite"
    get_engine(f"sqlite:///{path}")  # the schema exists; the file is then opened read-only
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    code, output = _cli(
        "lists", "add", "approved-tokens", "USDC", "--reason", "r", "--by", "a",
        "--database-url", read_only,
    )  # fmt: skip
    assert code == 2, output
    assert (
        f"error: cannot write the SQLite database file {path}: attempt to write a readonly"
        in output
    )
    assert "Traceback" not in output


def test_lists_cli(database_url: str) -> None:
    runner = CliRunner()
    args = ["--database-url", database_url]
    added = runner.invoke(
        main, ["lists", "add", "icebox-tokens", "usde", "--reason", "depeg", "--by", "ops", *args]
    )
    assert added.exit_code == 0, added.output
    assert "USDE added to icebox-tokens" in added.output
    shown = runner.invoke(main, ["lists", "show", "icebox-tokens", *args])
    assert "USDE" in shown.output and "ops: depeg" in shown.output
    bad = runner.invoke(
        main,
        ["lists", "add", "approved-protocols", "Not A Slug", "--reason", "r", "--by", "x", *args],
    )
    assert bad.exit_code == 2 and "not a protocol slug" in bad.output
    missing = runner.invoke(main, ["lists", "remove", "icebox-tokens", "USDE", "--by", "x", *args])
    assert missing.exit_code != 0 and "--reason" in missing.output
