"""The `allocator` group: an unusable database is one line and exit code 2 in any sub-command."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.storage import get_engine
from allocator_dagster.storage import profit_split as store


def test_a_read_only_database_is_named_by_every_command(tmp_path: Path) -> None:
    path = tmp_path / "allocator.sqlite"
    engine = get_engine(f"sqlite:///{path}")
    store.ensure_active_split(engine)
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    result = CliRunner().invoke(
        main,
        ["proposals", "propose", "--database-url", read_only, "--reinvestment", "78",
         "--dao", "16", "--lucky", "3", "--creator", "3", "--by", "bob", "--reasoning", "r"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: cannot write the SQLite database file {path}: ")
    assert len(result.output.strip().splitlines()) == 1


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    """psycopg2's 'connection refused' goes on over an indented second line ('\\n\\tIs the server
    running ...'): the error is still one line, without an escaped tab."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg2://allocator:secret@127.0.0.1:{port}/allocator"
    result = CliRunner().invoke(main, ["lists", "show", "approved-tokens", "--database-url", url])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(
        f"error: cannot connect to database postgresql+psycopg2://allocator:***@127.0.0.1:{port}/"
    )
    assert len(result.output.strip().splitlines()) == 1 and "\\x09" not in result.output
    assert "secret" not in result.output
