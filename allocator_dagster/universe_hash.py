"""The hash of a day's pool universe: what a snapshot's `metrics_hash` holds.

Two schemes, both SHA-256 written as 64 hex digits (the stored column's width):

- typed columns (`hash_universe`, every snapshot taken since): each column (sorted by name) as
  typed buffers of its values, the rows sorted by pool id. Hashing is a few memory copies per
  column instead of JSON-encoding every value (float repr was most of a day's hashing).
- canonical JSON (`json_universe_hash`, the snapshots taken before): the SHA-256 of the JSON of
  {"columns": sorted names, "rows": the rows sorted by pool id}.

A stored hash carries no marker of its scheme, so `universe_matches` recomputes the typed hash
first and the JSON one only when that differs: a snapshot of either scheme verifies, and a
tampered universe matches neither (each scheme alone is collision resistant).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from functools import lru_cache
from itertools import chain
from json.encoder import encode_basestring
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype
from pandas.core.dtypes.cast import maybe_box_native

# ----------------------------------------------------------------------- typed columns (current)

# Every byte string fed to the digest is length-prefixed (8 bytes little endian), so that no two
# universes can give the same byte stream. A column is its name, its kind and its buffers:
#   N: every value null (or no rows): no buffer; F: floats, I: integers, B: booleans (each: the
#   null mask, then the values as float64 / int64 / uint8, null slots zero; -0.0 written as 0.0);
#   S: text (mask, UTF-8 byte lengths, the bytes); T: token lists (mask, tokens per row, each
#   token's UTF-8 length, the bytes); J: anything else, each value's canonical JSON as text.
# The kind comes from the values, not the dtype: float32, an object column of floats and a
# nullable Float64 column with the same values (NaN, None and pd.NA all null) hash the same.
SCHEME = b"allocator-dagster universe hash: typed columns v1\n"
_LENGTH = np.dtype("<u8")


def _prefixed(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(8, "little") + p for p in parts)


def _mask(null: np.ndarray) -> bytes:
    return np.ascontiguousarray(null, dtype=np.uint8).tobytes()


def _floats(values: np.ndarray, null: np.ndarray) -> tuple[bytes, list[bytes]]:
    # + 0.0 turns -0.0 into 0.0 (IEEE round to nearest); null slots (NaN) become 0.0
    data = np.where(null, 0.0, values.astype(np.float64, copy=False)) + 0.0
    return b"F", [_mask(null), data.astype("<f8", copy=False).tobytes()]


def _ints(values: np.ndarray, null: np.ndarray) -> tuple[bytes, list[bytes]]:
    data = np.where(null, 0, values).astype("<i8", copy=False)
    return b"I", [_mask(null), data.tobytes()]


def _bools(values: np.ndarray, null: np.ndarray) -> tuple[bytes, list[bytes]]:
    data = np.where(null, False, values).astype(np.uint8, copy=False)
    return b"B", [_mask(null), data.tobytes()]


def _utf8(texts: list[str]) -> tuple[bytes, bytes]:
    """(UTF-8 byte length of each text as uint64, the texts' bytes one after the other)."""
    joined = "".join(texts)
    data = joined.encode("utf-8")
    if len(data) == len(joined):  # ASCII: a character is a byte (the common case, all in C)
        lengths = np.fromiter(map(len, texts), dtype=_LENGTH, count=len(texts))
    else:
        encoded = [t.encode("utf-8") for t in texts]
        lengths = np.fromiter(map(len, encoded), dtype=_LENGTH, count=len(encoded))
    return lengths.tobytes(), data


def _texts(values: list[Any], null: np.ndarray) -> tuple[bytes, list[bytes]]:
    texts = values if not null.any() else _filled(values, null.tolist(), "", str)
    return b"S", [_mask(null), *_utf8(texts)]


def _token_lists(values: list[Any], null: np.ndarray) -> tuple[bytes, list[bytes]]:
    lists = values if not null.any() else _filled(values, null.tolist(), (), tuple)
    counts = np.fromiter(map(len, lists), dtype=_LENGTH, count=len(lists))
    return b"T", [_mask(null), counts.tobytes(), *_utf8(list(chain.from_iterable(lists)))]


def _json_values(values: list[Any], null: list[bool]) -> tuple[bytes, list[bytes]]:
    texts = _filled(values, null, "", lambda v: _ENCODE(_clean(maybe_box_native(v))))
    return b"J", _texts(texts, np.array(null, dtype=bool))[1]


def _filled(values: list[Any], null: list[bool], fill: Any, convert: Callable) -> list[Any]:
    """`convert` of each value, `fill` in the null slots."""
    return [fill if n else convert(v) for v, n in zip(values, null, strict=True)]


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


_INT_TYPES = (int, np.integer)


def _kind_of(value: Any) -> str:
    """The kind of one non-null value (see the table above)."""
    if isinstance(value, bool | np.bool_):
        return "B"
    if isinstance(value, _INT_TYPES):
        return "I" if -(2**63) <= int(value) < 2**63 else "J"
    if isinstance(value, float | np.floating):
        return "F"
    if isinstance(value, str):
        return "S"
    if isinstance(value, tuple | list) and all(type(t) is str for t in value):
        return "T"
    return "J"


def _object_column(values: list[Any]) -> tuple[bytes, list[bytes]]:
    """A column of Python values (object or extension dtype): its kind from the values."""
    types = set(map(type, values))
    none = type(None)
    # the universe's own columns, without a loop in Python: required text, optional text,
    # token lists (each the same bytes as the general path below)
    if types <= {str, none} and str in types:
        return _texts(values, np.fromiter(map(none.__instancecheck__, values), bool, len(values)))
    if types == {tuple} and set(map(type, chain.from_iterable(values))) <= {str}:
        return _token_lists(values, np.zeros(len(values), dtype=bool))
    null = [_is_null(v) for v in values]
    kinds = {_kind_of(v) for v, n in zip(values, null, strict=True) if not n}
    if not kinds:
        return b"N", []
    kind = kinds.pop() if len(kinds) == 1 else "J"
    mask = np.array(null, dtype=bool)
    if kind == "S":
        return _texts(values, mask)
    if kind == "T":
        return _token_lists(values, mask)
    if kind == "F":
        return _floats(np.array(_filled(values, null, 0.0, float)), mask)
    if kind == "I":
        return _ints(np.array(_filled(values, null, 0, int)), mask)
    if kind == "B":
        return _bools(np.array(_filled(values, null, False, bool)), mask)
    return _json_values(values, null)


def _column_buffers(column: pd.Series) -> tuple[bytes, list[bytes]]:
    """(kind, buffers) of one column; see the table above."""
    dtype = column.dtype
    if len(column) == 0:
        return b"N", []
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        values = column.to_numpy()
        if dtype.kind == "u" and values.max() >= 2**63:
            return _object_column(column.tolist())
        null = np.isnan(values) if dtype.kind == "f" else np.zeros(len(values), dtype=bool)
        if null.all():
            return b"N", []
        kind = {"f": _floats, "i": _ints, "u": _ints, "b": _bools}[dtype.kind]
        return kind(values, null)
    if dtype == np.dtype(object) or isinstance(dtype, ExtensionDtype):
        return _object_column(column.tolist())
    # e.g. datetimes: each value as a record holds it, in canonical JSON
    values = list(column)
    return _json_values(values, [_is_null(v) for v in values])


def hash_universe(universe: pd.DataFrame) -> str:
    """Hash of a pool universe, independent of row order and of dtype details that do not
    change a value (the typed-column scheme above)."""
    columns = sorted(universe.columns)
    frame = universe
    if not frame["pool"].is_monotonic_increasing:
        frame = frame.sort_values("pool", kind="stable")
    digest = hashlib.sha256(SCHEME)
    digest.update(_prefixed(str(len(columns)).encode(), str(len(frame)).encode()))
    for name in columns:
        kind, buffers = _column_buffers(frame[name])
        digest.update(_prefixed(_ENCODE(name).encode("utf-8"), kind, str(len(buffers)).encode()))
        for buffer in buffers:
            digest.update(len(buffer).to_bytes(8, "little"))
            digest.update(buffer)
    return digest.hexdigest()


# ---------------------------------------------------------------- canonical JSON (before 2026-12)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    return value


# `canonical_json`'s encoder: every value below is written exactly as it would be nested in the
# canonical JSON of the whole universe (the encoder writes a value the same wherever it sits).
_ENCODE: Callable[[Any], str] = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
).encode


@lru_cache(maxsize=65536)
def _json_of_tuple(value: tuple[str, ...]) -> str:
    """A token list as canonical JSON (pools repeat every day: each distinct list once)."""
    return _ENCODE(_clean(value))


def _column_json(column: pd.Series) -> list[str]:
    """Each value of a column as canonical JSON, as `DataFrame.to_dict("records")` gives it
    (boxed to Python scalars) after `_clean` (NaN as null, tuples as lists)."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        if len(column) == 0:
            return []
        values = column.tolist()
        if dtype.kind == "f":
            values = [None if v != v else v for v in values]
        # numbers, true/false and null hold no comma: split the encoded list
        return _ENCODE(values)[1:-1].split(",")
    if dtype == np.dtype(object) or isinstance(dtype, ExtensionDtype):
        # records box these columns' values to Python scalars (`maybe_box_native`)
        values = column.tolist()
        kinds = set(map(type, values))
        if kinds == {str}:  # text: the loop below, in C
            return list(map(encode_basestring, values))
        out = []
        for v in values:
            kind = type(v)
            if kind is str:
                out.append(encode_basestring(v))
            elif v is None or (kind is float and v != v):
                out.append("null")
            elif kind is tuple and all(type(x) is str for x in v):
                out.append(_json_of_tuple(v))  # (equal tuples of str encode equally)
            else:
                out.append(_ENCODE(_clean(maybe_box_native(v))))
        return out
    # e.g. datetimes: a record holds the Series' own values
    return [_ENCODE(_clean(v)) for v in column]


def json_universe_hash(universe: pd.DataFrame) -> str:
    """The scheme of the snapshots taken before the typed columns: the SHA-256 of the canonical
    JSON of {"columns": sorted names, "rows": the rows (values in column order) sorted by pool
    id}. Written column by column: the same bytes as encoding the records, faster."""
    columns = sorted(universe.columns)
    frame = universe
    if not frame["pool"].is_monotonic_increasing:
        frame = frame.sort_values("pool", kind="stable")
    encoded = [_column_json(frame[c]) for c in columns]
    if len(frame) and any(len(values) != len(frame) for values in encoded):
        raise ValueError("a column encodes to another number of values than the frame's rows")
    row = "[" + ",".join(["{}"] * len(columns)) + "]"  # one row's JSON array, by str.format
    rows = ",".join(map(row.format, *encoded))
    text = '{"columns":' + _ENCODE(columns) + ',"rows":[' + rows + "]}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------- verification


def universe_matches(universe: pd.DataFrame, stored: str, *, computed: str | None = None) -> bool:
    """Whether `universe` is the one a snapshot hashed as `stored`, under either scheme.

    `computed` is `hash_universe(universe)` when the caller has it already. The stored hash does
    not say its scheme: the typed one is tried first (every snapshot since), the JSON one only
    when it differs (a snapshot from before, or a changed universe, which matches neither).
    """
    typed = computed if computed is not None else hash_universe(universe)
    return typed == stored or json_universe_hash(universe) == stored
