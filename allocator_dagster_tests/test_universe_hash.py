"""The typed-column universe hash: its contract, its blindness to row order and to dtypes that
do not change a value, its sensitivity to any edit, and the JSON scheme's snapshots verifying.

`reference_hash` re-states the contract value by value, the slow and obvious way, so that the
column fast paths of `hash_universe` are checked against it on the sample and on random frames.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.universe_hash import (
    SCHEME,
    hash_universe,
    json_universe_hash,
    universe_matches,
)

DAY = date(2026, 2, 3)


def _null(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _kind(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "B"
    if isinstance(v, int | np.integer):
        return "I" if -(2**63) <= int(v) < 2**63 else "J"
    if isinstance(v, float | np.floating):
        return "F"
    if isinstance(v, str):
        return "S"
    if isinstance(v, tuple | list) and all(isinstance(t, str) and type(t) is str for t in v):
        return "T"
    return "J"


def _p(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


def _lengths_and_bytes(texts: list[str]) -> list[bytes]:
    encoded = [t.encode("utf-8") for t in texts]
    return [b"".join(struct.pack("<Q", len(e)) for e in encoded), b"".join(encoded)]


def reference_hash(universe: pd.DataFrame) -> str:
    """The contract of `hash_universe`, one value at a time."""
    columns = sorted(universe.columns)
    frame = universe.sort_values("pool", kind="stable")
    out = SCHEME + _p(str(len(columns)).encode()) + _p(str(len(frame)).encode())
    for name in columns:
        values = list(frame[name])
        null = [_null(v) for v in values]
        kinds = {_kind(v) for v, n in zip(values, null, strict=True) if not n}
        kind = "N" if not kinds else kinds.pop() if len(kinds) == 1 else "J"
        mask = bytes(null)
        if kind == "N":
            buffers = []
        elif kind == "F":
            data = [0.0 if n else float(v) + 0.0 for v, n in zip(values, null, strict=True)]
            buffers = [mask, b"".join(struct.pack("<d", x) for x in data)]
        elif kind == "I":
            data = [0 if n else int(v) for v, n in zip(values, null, strict=True)]
            buffers = [mask, b"".join(struct.pack("<q", x) for x in data)]
        elif kind == "B":
            buffers = [
                mask,
                bytes(False if n else bool(v) for v, n in zip(values, null, strict=True)),
            ]
        elif kind == "S":
            buffers = [
                mask,
                *_lengths_and_bytes(["" if n else v for v, n in zip(values, null, strict=True)]),
            ]
        elif kind == "T":
            lists = [() if n else tuple(v) for v, n in zip(values, null, strict=True)]
            counts = b"".join(struct.pack("<Q", len(t)) for t in lists)
            buffers = [mask, counts, *_lengths_and_bytes([t for t in sum(lists, ())])]
        else:
            texts = [
                "" if n else json.dumps(_json_value(v), **_CANONICAL)
                for v, n in zip(values, null, strict=True)
            ]
            buffers = [mask, *_lengths_and_bytes(texts)]
        out += (
            _p(json.dumps(name, **_CANONICAL).encode())
            + _p(kind.encode())
            + _p(str(len(buffers)).encode())
        )
        out += b"".join(_p(b) for b in buffers)
    return hashlib.sha256(out).hexdigest()


_CANONICAL = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False, "default": str}


def _json_value(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, tuple | list):
        return [_json_value(x) for x in v]
    return v


@pytest.fixture(scope="module")
def universe() -> pd.DataFrame:
    frame, _ = SampleUniverse(n_pools=80).universe_for(DAY)
    return frame


def test_hash_universe_matches_its_contract_on_the_sample(universe: pd.DataFrame) -> None:
    assert hash_universe(universe) == reference_hash(universe)
    with_nan = universe.copy()
    with_nan.loc[with_nan.index[::7], "apyMean30d"] = math.nan
    with_nan.loc[with_nan.index[::5], "poolMeta"] = None
    assert hash_universe(with_nan) == reference_hash(with_nan)
    assert hash_universe(with_nan) != hash_universe(universe)


def test_hash_universe_matches_its_contract_on_other_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "pool": ["b", "a", "c"],
            "count": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "name": pd.array(["Ünïcode €", None, 'quote " and \\'], dtype="string"),
            "seen": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
            "tokens": [("USDC", "0xab"), (), ("DAI",)],
            "mixed": [None, 1.5, "x"],
            "floats": [None, 1.5, float("nan")],
            "ints": np.array([3, -2, 0], dtype=np.int64),
            "big": np.array([2**64 - 1, 0, 1], dtype=np.uint64),
            "bools": [True, False, True],
            "empty": [None, None, None],
            "numbers": [(1, 2), (), None],
        }
    )
    assert hash_universe(frame) == reference_hash(frame)


def test_hash_universe_is_pinned() -> None:
    """A stored day's metrics_hash must not change with the code: this digest is frozen."""
    frame = pd.DataFrame(
        {
            "pool": ["p2", "p1"],
            "apy": [4.25, float("nan")],
            "symbol": ["USDC", "DAI"],
            "tokens": [("USDC",), ("DAI", "0xab")],
        }
    )
    assert hash_universe(frame) == reference_hash(frame)
    assert (
        hash_universe(frame) == "82067cda872a4faed6bbb534a5961b3e73a98c6e9c9e2fd77a2e8a7a8663a54a"
    )


def test_equal_values_in_other_dtypes_hash_the_same() -> None:
    base = pd.DataFrame(
        {
            "pool": pd.Series(["a", "b", "c"], dtype="str"),
            "apy": np.array([1.5, math.nan, -0.0]),
            "n": np.array([1, 2, 3], dtype=np.int64),
            "meta": pd.Series(["x", None, "y"], dtype=object),
            "tokens": [("A", "B"), (), ("C",)],
            "none": np.array([math.nan] * 3),
            "flag": np.array([True, False, True]),
        }
    )
    same = pd.DataFrame(
        {
            "pool": pd.Series(["a", "b", "c"], dtype=object),
            "apy": pd.array([1.5, None, 0.0], dtype="Float64"),
            "n": pd.array([1, 2, 3], dtype="Int32"),
            "meta": pd.array(["x", None, "y"], dtype="string"),
            "tokens": [["A", "B"], [], ["C"]],
            "none": pd.Series([None, None, None], dtype=object),
            "flag": pd.Series([True, False, True], dtype=object),
        }
    )
    assert hash_universe(same) == hash_universe(base)
    as_float32 = base.assign(apy=base["apy"].astype(np.float32), n=base["n"].astype(np.uint8))
    assert hash_universe(as_float32) == hash_universe(base)
    assert hash_universe(base.astype({"apy": object})) == hash_universe(base)


def test_values_that_differ_hash_differently() -> None:
    base = pd.DataFrame({"pool": ["a", "b"], "x": [1.0, 2.0], "t": [("A", "B"), ()]})
    h = hash_universe(base)
    assert hash_universe(base.assign(x=[1, 2])) != h  # 1 is not 1.0 (as in the JSON scheme)
    assert hash_universe(base.assign(x=[1.0, math.nan])) != h
    assert hash_universe(base.assign(x=["1.0", "2.0"])) != h
    assert hash_universe(base.assign(t=[("A",), ("B",)])) != h  # tokens move between rows
    assert hash_universe(base.assign(t=[("AB",), ()])) != h
    assert hash_universe(base.assign(pool=["a", "c"])) != h
    assert hash_universe(base.rename(columns={"x": "y"})) != h
    texts = pd.DataFrame({"pool": ["ab", ""], "s": ["x", None]})
    assert hash_universe(texts) != hash_universe(texts.assign(pool=["a", "b"]))
    assert hash_universe(texts) != hash_universe(texts.assign(s=["x", ""]))  # null is not ""
    assert hash_universe(texts) != hash_universe(texts.assign(s=["x", "None"]))


def test_any_edit_changes_the_hash(universe: pd.DataFrame) -> None:
    base = hash_universe(universe)
    last_bit = universe.copy()
    i = last_bit.index[5]
    last_bit.loc[i, "tvlUsd"] = np.nextafter(last_bit.loc[i, "tvlUsd"], math.inf)
    assert hash_universe(last_bit) != base
    renamed = universe.copy()
    renamed.loc[renamed.index[0], "symbol"] = renamed["symbol"].iloc[0] + "x"
    assert hash_universe(renamed) != base
    assert hash_universe(universe.iloc[1:]) != base  # a row removed
    added = pd.concat([universe, universe.iloc[[3]].assign(pool="zzz-added")])
    assert hash_universe(added) != base
    assert hash_universe(universe.assign(extra=0.0)) != base
    zero_to_nan = universe.copy()
    zero_to_nan.loc[zero_to_nan["apyReward"] == 0.0, "apyReward"] = math.nan
    assert hash_universe(zero_to_nan) != base
    flipped = universe.assign(stablecoin=~universe["stablecoin"])
    assert hash_universe(flipped) != base


def test_old_snapshots_verify_and_edits_match_neither_scheme(universe: pd.DataFrame) -> None:
    typed, old = hash_universe(universe), json_universe_hash(universe)
    assert typed != old
    assert universe_matches(universe, typed) and universe_matches(universe, old)
    assert universe_matches(universe, old, computed=typed)
    edited = universe.copy()
    edited.loc[edited.index[2], "apy"] = np.nextafter(edited.loc[edited.index[2], "apy"], 0.0)
    assert not universe_matches(edited, typed) and not universe_matches(edited, old)


_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
_TEXT = st.text(max_size=6)


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=12))
    pools = draw(st.lists(_TEXT, min_size=n, max_size=n, unique=True))
    return pd.DataFrame(
        {
            "pool": pd.Series(pools, dtype="str"),
            "apy": np.array(draw(st.lists(_FLOATS, min_size=n, max_size=n)), dtype=float),
            "meta": pd.Series(
                draw(st.lists(st.none() | _TEXT, min_size=n, max_size=n)), dtype=object
            ),
            "tokens": pd.Series(
                draw(st.lists(st.lists(_TEXT, max_size=3).map(tuple), min_size=n, max_size=n)),
                dtype=object,
            ),
            "n": np.array(
                draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)),
                dtype=np.int64,
            ),
        }
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(), st.randoms(use_true_random=False))
def test_random_frames_follow_the_contract_whatever_the_order(frame, rnd) -> None:
    h = hash_universe(frame)
    assert h == reference_hash(frame)
    rows = list(range(len(frame)))
    rnd.shuffle(rows)
    columns = list(frame.columns)
    rnd.shuffle(columns)
    assert hash_universe(frame.iloc[rows][columns].reset_index(drop=True)) == h
    equivalent = frame.astype({"pool": object, "apy": object, "meta": "string", "n": "Int64"})
    assert hash_universe(equivalent) == h
