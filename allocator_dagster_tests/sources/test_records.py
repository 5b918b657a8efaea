"""Validation of /pools records: what is kept, what is rejected and why, and how fast."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from allocator_dagster.sources.records import (
    POOL_COLUMNS,
    POOL_DTYPES,
    Rejection,
    empty_universe,
    validate_pool_records,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "defillama" / "pools.json"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "defillama" / "pools_2026-07-31.json"


def record(**overrides) -> dict:
    base = {
        "pool": "p-1",
        "chain": "Ethereum",
        "project": "aave-v3",
        "symbol": "USDC",
        "tvlUsd": 1_000_000,
        "apy": 4.0,
        "apyBase": 3.5,
        "apyReward": 0.5,
        "apyMean30d": 3.9,
        "stablecoin": True,
        "ilRisk": "no",
        "exposure": "single",
        "poolMeta": None,
        "underlyingTokens": ["0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"],
    }
    base.update(overrides)
    return base


def reasons(rejections: list[Rejection]) -> list[str]:
    return [r.reason for r in rejections]


@pytest.mark.parametrize(
    "path",
    [
        FIXTURE,
        pytest.param(SHARED, marks=pytest.mark.skipif(not SHARED.exists(), reason="no shared/")),
    ],
    ids=["fixture", "shared"],
)
def test_real_records_parse(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    frame, rejections = validate_pool_records(data, source="defillama")
    assert rejections == []
    assert len(frame) == len(data)
    assert list(frame.columns) == list(POOL_COLUMNS)
    assert frame["pool"].is_monotonic_increasing
    by_id = frame.set_index("pool")
    for raw in data:
        row = by_id.loc[raw["pool"]]
        # Non-ASCII symbols and non-EVM token ids are kept exactly.
        assert row["symbol"] == raw["symbol"].strip()
        assert row["underlyingTokens"] == tuple(raw["underlyingTokens"] or ())
        assert row["tvlUsd"] == float(raw["tvlUsd"])
        assert bool(row["stablecoin"]) is bool(raw.get("stablecoin") or False)
        base, reward = raw.get("apyBase"), raw.get("apyReward")
        if base is not None or reward is not None:
            assert row["apy"] == pytest.approx((base or 0) + (reward or 0))
    symbols = set(frame["symbol"])
    assert any(not s.isascii() for s in symbols)
    tokens = {t for ts in frame["underlyingTokens"] for t in ts}
    assert any(t.startswith("coingecko:") for t in tokens)
    assert "So11111111111111111111111111111111111111112" in tokens  # a Solana mint
    assert any(t.startswith("T") and len(t) == 34 for t in tokens)  # a Tron address


def test_null_rules_of_the_model() -> None:
    frame, rejections = validate_pool_records(
        [
            record(pool="a", apy=None, apyBase=None, apyReward=2.0),
            record(pool="b", apy=None, apyBase=3.0, apyReward=None),
            record(pool="c", apy=None, apyBase=None, apyReward=None),
            record(pool="d", apy=7.0, apyBase=None, apyReward=None),
            record(pool="e", apy=None),
        ],
        source="test",
    )
    assert rejections == []
    rows = frame.set_index("pool")
    assert (rows.loc["a", "apy"], rows.loc["a", "apyBase"], rows.loc["a", "apyReward"]) == (2, 0, 2)
    assert (rows.loc["b", "apy"], rows.loc["b", "apyBase"], rows.loc["b", "apyReward"]) == (3, 3, 0)
    assert math.isnan(rows.loc["c", "apy"])  # kept: ineligible by the model, not broken data
    assert rows.loc["d", "apy"] == 7.0 and math.isnan(rows.loc["d", "apyBase"])
    assert rows.loc["e", "apy"] == 4.0  # the sum of base 3.5 and reward 0.5


def test_absent_optional_fields_get_defaults() -> None:
    minimal = {
        "pool": "m",
        "chain": "Solana",
        "project": "kamino-lend",
        "symbol": "SOL",
        "tvlUsd": 5,
    }
    frame, rejections = validate_pool_records([minimal], source="test")
    assert rejections == []
    row = frame.iloc[0]
    assert row["underlyingTokens"] == ()
    assert not row["stablecoin"]
    assert row["ilRisk"] is None and row["exposure"] is None and row["poolMeta"] is None
    assert math.isnan(row["apy"]) and math.isnan(row["apyMean30d"])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"tvlUsd": float("nan")}, "field 'tvlUsd' is not finite: nan"),
        ({"tvlUsd": float("inf")}, "field 'tvlUsd' is not finite: inf"),
        ({"tvlUsd": -5}, "field 'tvlUsd' is negative: -5.0"),
        ({"tvlUsd": "1000"}, "field 'tvlUsd' must be a number, got '1000'"),
        ({"tvlUsd": True}, "field 'tvlUsd' must be a number, got True"),
        ({"tvlUsd": None}, "required field 'tvlUsd' is null"),
        ({"chain": None}, "required field 'chain' is null"),
        ({"symbol": 42}, "required field 'symbol' must be a string, got 42"),
        ({"project": "  "}, "required field 'project' is empty"),
        ({"apy": float("nan")}, "field 'apy' is not finite: nan"),
        ({"apyBase": float("inf")}, "field 'apyBase' is not finite: inf"),
        ({"apyReward": float("-inf")}, "field 'apyReward' is not finite: -inf"),
        ({"apyReward": "3"}, "field 'apyReward' must be a number or null, got '3'"),
        ({"underlyingTokens": "0xabc"}, "field 'underlyingTokens' must be a list, got '0xabc'"),
        ({"underlyingTokens": ["0xabc", 5]}, "field 'underlyingTokens' holds a non-string 5"),
        ({"stablecoin": "yes"}, "field 'stablecoin' must be true/false, got 'yes'"),
        ({"ilRisk": 1}, "field 'ilRisk' must be a string or null, got 1"),
        ({"pool": "x" * 129}, "field 'pool' is longer than 128 characters"),
    ],
)
def test_rejections_name_field_and_value(overrides: dict, expected: str) -> None:
    frame, rejections = validate_pool_records([record(pool="ok"), record(**overrides)], source="t")
    assert list(frame["pool"]) == ["ok"]
    assert reasons(rejections) == [expected]
    assert rejections[0].row_number == 1


def test_missing_required_field_and_non_object() -> None:
    no_chain = record(pool="n")
    del no_chain["chain"]
    no_pool = record()
    del no_pool["pool"]
    frame, rejections = validate_pool_records([no_chain, no_pool, ["not", "a", "dict"]], source="t")
    assert frame.empty
    assert rejections == [
        Rejection(0, "n", "required field 'chain' is missing"),
        Rejection(1, None, "required field 'pool' is missing"),
        Rejection(2, None, "record is a list, not an object"),
    ]


def test_duplicates_keep_the_first_valid_record() -> None:
    frame, rejections = validate_pool_records(
        [
            record(pool="d", tvlUsd=float("nan")),
            record(pool="d", tvlUsd=10),
            record(pool="d", tvlUsd=20),
        ],
        source="t",
    )
    assert frame["tvlUsd"].tolist() == [10.0]
    assert reasons(rejections) == [
        "field 'tvlUsd' is not finite: nan",
        "duplicate pool id 'd' (first kept at row 1)",
    ]


def test_output_is_sorted_typed_and_deterministic() -> None:
    records = [record(pool=p, tvlUsd=i) for i, p in enumerate(["c", "a", "b"])]
    first, _ = validate_pool_records(records, source="t")
    second, _ = validate_pool_records(list(reversed(records)), source="t")
    assert first["pool"].tolist() == ["a", "b", "c"]
    assert first.to_json() == second.to_json()
    assert {c: str(t) for c, t in first.dtypes.items()} == {
        c: str(t) for c, t in empty_universe().dtypes.items()
    }
    assert str(first.dtypes["tvlUsd"]) == "float64" and POOL_DTYPES["stablecoin"] == "bool"
    assert first.attrs["source"] == "t"


def test_twenty_thousand_records() -> None:
    records = [record(pool=f"pool-{i:05d}", tvlUsd=1000 + i) for i in range(20_000)]
    records[5] = record(pool="bad", tvlUsd=float("nan"))
    frame, rejections = validate_pool_records(records, source="t")
    assert len(frame) == 19_999 and len(rejections) == 1
    assert rejections[0].row_number == 5


def test_the_ceilings_are_configurable() -> None:
    from allocator_dagster.sources.records import RecordLimits

    base = {"pool": "p", "chain": "c", "project": "x", "symbol": "USDC", "tvlUsd": 2e6}
    spiky = [dict(base, apyBase=350.0), dict(base, pool="q", apyReward=-2000.0)]
    kept, rejected = validate_pool_records(spiky, source="t")
    assert kept["pool"].tolist() == ["p"]
    assert rejected[0].reason == "field 'apyReward' is beyond the ceiling of ±1000 %: -2000.0"
    strict = RecordLimits(max_apy_pct=300.0, max_tvl_usd=1e6)
    kept, rejected = validate_pool_records(spiky, source="t", limits=strict)
    assert kept.empty
    assert [r.reason for r in rejected] == [
        "field 'tvlUsd' is above the ceiling of 1e+06 USD: 2000000.0",
        "field 'tvlUsd' is above the ceiling of 1e+06 USD: 2000000.0",
    ]
