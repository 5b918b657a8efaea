"""Printing outside text on a terminal: control sequences are shown, never executed.

A list reason, a reviewer's name, a pool's symbol or an error message can come from anyone
(the command line, run config, an API). Printed raw, `\\x1b[2J` clears the screen, `\\r` or
`\\x1b[1A` overwrites an earlier line (an approval can be made to look like a rejection) and a
bidi override (U+202E) reverses what follows. Every printer passes such fields through `shown`.
"""

from __future__ import annotations

import unicodedata

# C0 and C1 controls, DEL, format characters (bidi overrides, zero-width), line and paragraph
# separators, surrogates, private use, unassigned code points
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(value: object, *, lines: bool = False) -> str:
    """`str(value)` with every control or invisible formatting character written as an escape
    (`\\x1b`, a newline as `\\x0a`, `\\u202e`), so one field stays one visible run of text.

    `lines=True` keeps newlines, for messages the program itself writes over several lines
    (each line's outside content is still escaped); a line a library continues on a
    tab-indented one (psycopg2's "Connection refused\n\tIs the server running ...") stays one.
    """
    text = str(value)
    if lines:
        return "\n".join(shown(line) for line in text.replace("\n\t", " ").split("\n"))
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(
        _escape(c) if unicodedata.category(c) in _ESCAPED_CATEGORIES else c for c in text
    )
