"""Whether a fetched pool day may replace what is stored: the row-count rule, pure.

A live answer can be partial (an API that glitches returns 60 % of the pools, or none) or
swollen (duplicated pages). Such a day is refused before it touches the stored day, so the last
good state stays in force. The reference is robust: the median row count of the last
`REFERENCE_DAYS` accepted full-snapshot days, so one odd day cannot move it, and days written
only by `allocator pools import-history` (a chosen subset of pools) never count: after an
import of the top 150 pools the first live fetch of 741 pools is the bootstrap, not an outlier.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence

REFERENCE_DAYS = 7  # accepted full days whose median row count is the reference
REFERENCE_WINDOW_DAYS = 30  # only days this recent count (an old universe is no reference)
MIN_ROW_RATIO = 0.8  # a day with under 80 % of the reference's pools looks like a partial answer
MAX_ROW_RATIO = 2.0  # over twice the reference looks like duplicated pages


def row_count_reference(counts: Sequence[tuple[dt.date, int]]) -> tuple[float, int] | None:
    """(median row count, days it is taken over) of the latest `REFERENCE_DAYS` (date, rows)
    pairs, or None when there is no accepted day yet (the bootstrap: any non-empty day)."""
    latest = sorted(counts)[-REFERENCE_DAYS:]
    if not latest:
        return None
    return float(statistics.median(rows for _, rows in latest)), len(latest)


def row_count_problem(day: dt.date, rows: int, counts: Sequence[tuple[dt.date, int]]) -> str | None:
    """Why `rows` pools are not a believable full day given earlier accepted days, or None."""
    if rows == 0:
        return f"{day}: no pools (an empty answer is never a day's universe)"
    reference = row_count_reference(counts)
    if reference is None:
        return None
    median, days = reference
    ratio = rows / median
    if MIN_ROW_RATIO <= ratio <= MAX_ROW_RATIO:
        return None
    return (
        f"{day}: {rows} pools against a median of {median:g} over the last {days} accepted "
        f"day(s) (ratio {ratio:.2f} outside [{MIN_ROW_RATIO}, {MAX_ROW_RATIO}])"
    )
