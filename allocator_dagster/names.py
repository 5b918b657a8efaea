"""People's names (who changed a list, proposed or reviewed a split): one normal form.

A name typed at a terminal or sent in run config is outside input. Two spellings that look the
same to a person must be the same actor, or a proposer can approve their own proposal as
"Alice\u200b" or "ＡＬＩＣＥ". So every actor field is cleaned the same way before it is stored
or compared: Unicode NFKC, zero-width, format and control characters removed, runs of white
space collapsed to one space; comparisons also case-fold. A name longer than its column is
refused here, before the database (PostgreSQL would raise a DataError, SQLite would store it).
"""

from __future__ import annotations

import re
import unicodedata

# the width of every *_by column (storage/schema.py)
MAX_NAME_LENGTH = 128
_SPACES = re.compile(r"\s+")


class ActorNameError(ValueError):
    """A name that is empty or too long once cleaned; the message says which field."""


def _visible(char: str) -> bool:
    """False for control (Cc), format (Cf: zero-width, bidi overrides), surrogate and
    unassigned characters; white space is kept here and collapsed afterwards."""
    if char.isspace():
        return True
    return unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn")


def normal_form(value: str) -> str:
    """NFKC, invisible characters removed, white space collapsed; may be empty or long."""
    text = unicodedata.normalize("NFKC", str(value))
    return _SPACES.sub(" ", "".join(c for c in text if _visible(c))).strip()


def clean_name(value: str, field: str = "name") -> str:
    """The stored form of a name (`normal_form`), checked.

    Raises ActorNameError when nothing is left or the result exceeds MAX_NAME_LENGTH.
    """
    text = normal_form(value)
    if not text:
        raise ActorNameError(f"{field} is empty (after removing invisible characters)")
    if len(text) > MAX_NAME_LENGTH:
        raise ActorNameError(
            f"{field} is {len(text)} characters long; at most {MAX_NAME_LENGTH} are allowed"
        )
    return text


def name_key(value: str) -> str:
    """The comparison form: the normal form, case-folded (and NFKC again, as casefold can
    produce characters that NFKC would change). Never raises: stored names of any age compare."""
    return unicodedata.normalize("NFKC", normal_form(value).casefold())


def same_actor(a: str, b: str) -> bool:
    """Whether two names denote the same person."""
    return name_key(a) == name_key(b)
