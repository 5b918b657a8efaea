"""The column screen of /pools validation gives exactly what the per-record path gives."""

from __future__ import annotations

import math
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from allocator_dagster.sources.record_columns import screen_records
from allocator_dagster.sources.records import (
    DEFAULT_LIMITS,
    NO_LIMITS,
    POOL_COLUMNS,
    RecordLimits,
    Rejection,
    _check_record,
    admit,
    universe_frame,
    validate_pool_records,
)
from allocator_dagster_tests.sources.test_records import record


def per_record(records: list[Any], limits: RecordLimits) -> tuple[pd.DataFrame, list[Rejection]]:
    """The validation as it was before the column screen: `_check_record` on every record."""
    rows, rejections, seen = [], [], {}
    for number, each in enumerate(records):
        pool_id, reason, row = _check_record(each, limits)
        rejection = admit(seen, number, pool_id, reason)
        if rejection is None:
            rows.append(row)
        else:
            rejections.append(rejection)
    rows.sort(key=lambda r: r[0])
    transposed = list(zip(*rows, strict=True)) if rows else [()] * len(POOL_COLUMNS)
    return universe_frame(dict(zip(POOL_COLUMNS, transposed, strict=True))), rejections


def good(i: int) -> dict[str, Any]:
    return record(pool=f"pool-{i:03d}", tvlUsd=1_000_000 + i, poolMeta=None)


MISSING = object()
TEXT = [None, MISSING, "", "   ", " padded ", "x" * 300, "nul\x00", "lone \ud800", "é€₮", 5, 4.5]
TEXT += [True, b"bytes", ["list"], "x" * 128, "x" * 129, "x" * 16, "x" * 17]
NUMBERS = [None, MISSING, 0, -0.0, 1, -1, 2.5, -2.5, 999.0, 1000, 1000.5, -1000.0, -1000.001]
NUMBERS += [1e12, 1e12 + 1, 1e300, math.nan, math.inf, -math.inf, True, False, "3", "nan"]
NUMBERS += [np.float64(3.5), np.int64(7), np.float32(1.5), np.nan, Decimal("2.5"), 2**62]
NUMBERS += [2**53 + 1, -(2**70), [1.0], {"v": 1}]
TOKENS = [None, MISSING, [], ["0xabc"], ("0xabc", "0xdef"), ["0xabc", ""], ["0xabc", None]]
TOKENS += [["0xabc", 5], "0xabc", ["nul\x00"], ["\ud800"], ["é"], [True], {"a": 1}, 7]
BOOLS = [None, MISSING, True, False, 0, 1, "true", 1.0, np.bool_(True)]
HOSTILE: dict[str, list[Any]] = {
    **dict.fromkeys(("pool", "chain", "project", "symbol"), TEXT),
    **dict.fromkeys(("ilRisk", "exposure", "poolMeta"), TEXT),
    **dict.fromkeys(("tvlUsd", "apy", "apyBase", "apyReward", "apyMean30d"), NUMBERS),
    "underlyingTokens": TOKENS,
    "stablecoin": BOOLS,
}


def hostile_records() -> list[Any]:
    """Every hostile value in every field, between plain records, with duplicates, records
    that are not objects and mappings that are not dicts."""
    records: list[Any] = []
    i = 0
    for name, values in HOSTILE.items():
        for value in values:
            records.append(good(i))
            i += 1
            record = good(i)
            i += 1
            if value is MISSING:
                del record[name]
            else:
                record[name] = value
            records.append(record)
    records += [
        None,
        ["not", "a", "dict"],
        "text",
        42,
        OrderedDict(good(i)),
        good(3),  # a duplicate of a plain record
        {**good(5), "pool": " pool-005 "},  # a duplicate once stripped
        {**good(i + 1), "tvlUsd": math.nan},
        {**good(i + 1), "tvlUsd": 10},  # first valid one of this id
        {**good(i + 1), "tvlUsd": 20},
        {**good(i + 2), "apy": None, "apyBase": None, "apyReward": 2.0},
        {**good(i + 3), "apy": None, "apyBase": -0.0, "apyReward": None},
        {**good(i + 4), "apy": 1.5, "apyBase": None, "apyReward": None},
        {**good(i + 5), "apy": None, "apyBase": None, "apyReward": None},
        {**good(i + 6), "extra": object()},
    ]
    return records


def assert_same(records: list[Any], limits: RecordLimits) -> None:
    frame, rejections = validate_pool_records(records, source="t", limits=limits)
    expected_frame, expected_rejections = per_record(records, limits)
    assert rejections == expected_rejections
    pd.testing.assert_frame_equal(frame, expected_frame, check_exact=True)
    for name in POOL_COLUMNS:  # the same Python objects, not only equal values
        got, want = frame[name].tolist(), expected_frame[name].tolist()
        assert [type(v) for v in got] == [type(v) for v in want], name
        assert [repr(v) for v in got] == [repr(v) for v in want], name


@pytest.mark.parametrize(
    "limits", [DEFAULT_LIMITS, NO_LIMITS, RecordLimits(max_apy_pct=3.0, max_tvl_usd=1e6)]
)
def test_hostile_records_give_the_per_record_answer(limits: RecordLimits) -> None:
    records = hostile_records()
    assert_same(records, limits)
    assert_same(list(reversed(records)), limits)


def test_the_screen_flags_every_hostile_value() -> None:
    """Each hostile value that `_check_record` rejects is flagged (it never passes unchecked)."""
    records = hostile_records()
    screen = screen_records(records, DEFAULT_LIMITS)
    for number, each in enumerate(records):
        _, reason, _ = _check_record(each, DEFAULT_LIMITS)
        if reason is not None:
            assert not screen.plain[number], (number, each, reason)


def test_plain_records_skip_the_per_record_path() -> None:
    records = [good(i) for i in range(200)]
    assert screen_records(records, DEFAULT_LIMITS).plain.all()
    assert_same(records, DEFAULT_LIMITS)


def test_no_records() -> None:
    assert_same([], DEFAULT_LIMITS)
    frame, rejections = validate_pool_records(iter([]), source="t")
    assert frame.empty and rejections == []


def test_numbers_too_large_for_a_float_are_rejected_not_raised() -> None:
    huge = 10**400
    records = [
        {**good(1), "tvlUsd": huge},
        {**good(2), "apyBase": -huge},
        {**good(3), "apyMean30d": huge},
    ]
    frame, rejections = validate_pool_records(records, source="t")
    assert [(r.row_number, r.reason.split(":")[0]) for r in rejections] == [
        (0, "field 'tvlUsd' is not finite"),
        (1, "field 'apyBase' is not finite"),
    ]
    assert frame["pool"].tolist() == ["pool-003"] and math.isnan(frame["apyMean30d"].iloc[0])
