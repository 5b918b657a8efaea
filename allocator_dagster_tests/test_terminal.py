"""Outside text is printed with its control sequences escaped."""

from __future__ import annotations

import pytest

from allocator_dagster.terminal import shown


@pytest.mark.parametrize(
    ("raw", "printed"),
    [
        ("plain text, USD₮0 and é", "plain text, USD₮0 and é"),
        ("\x1b[2Jclear", "\\x1b[2Jclear"),
        ("over\rwrite", "over\\x0dwrite"),
        ("two\nlines", "two\\x0alines"),
        ("\x9b31m", "\\x9b31m"),  # the 8-bit CSI
        ("\u202eevil", "\\u202eevil"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("bell\x07 del\x7f", "bell\\x07 del\\x7f"),
        ("para\u2029graph", "para\\u2029graph"),
    ],
)
def test_control_characters_are_escaped(raw: str, printed: str) -> None:
    assert shown(raw) == printed


def test_messages_keep_their_own_lines() -> None:
    assert shown("line 1: \x1b[31mbad\nline 2", lines=True) == "line 1: \\x1b[31mbad\nline 2"
    assert shown(ValueError("a\rb")) == "a\\x0db"


def test_a_line_a_library_continues_on_a_tab_indented_one_stays_one_line() -> None:
    """psycopg2: 'Connection refused\\n\\tIs the server running ...' (was printed as a second
    line starting with an escaped tab, '\\x09Is the server ...')."""
    refused = "port 5999 failed: Connection refused\n\tIs the server running on that host?"
    assert shown(refused, lines=True) == (
        "port 5999 failed: Connection refused Is the server running on that host?"
    )
    assert shown("a\n\tb\nc\td", lines=True) == "a b\nc\\x09d"  # any other tab is escaped
