"""Input files of `allocator solve`: POOLS.csv (DefiLlama's columns) and HOLDINGS.csv.

Rows become DefiLlama records and pass the same validation as the API's data
(`sources.records.validate_pool_records`); here a rejected row is an error, named by file, line
and field, because a half-read universe must never be solved.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from allocator_dagster.model import IDLE, Holdings
from allocator_dagster.money import AmountTooLargeError, check_usd, to_cents
from allocator_dagster.sources.records import (
    FORECAST_COLUMNS,
    NO_LIMITS,
    POOL_COLUMNS,
    validate_pool_records,
)

REQUIRED_POOL_COLUMNS = ("pool", "chain", "project", "symbol", "tvlUsd")
NUMERIC_POOL_COLUMNS = ("tvlUsd", "apy", "apyBase", "apyReward", "apyMean30d")
# how each column's cells are read (a column not named here is text)
_TEXT, _NUMBER, _FORECAST, _TOKENS, _FLAG = "text", "number", "forecast", "tokens", "flag"
_KINDS = {
    **dict.fromkeys(NUMERIC_POOL_COLUMNS, _NUMBER),
    **dict.fromkeys(FORECAST_COLUMNS, _FORECAST),
    "underlyingTokens": _TOKENS,
    "stablecoin": _FLAG,
}
MAX_REPORTED_ERRORS = 20


class InputFileError(ValueError):
    """A bad input file; the message names the file, the line and the field."""


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of each row; blank lines are skipped."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            rows = []
            line = reader.line_num + 1  # where the next row starts (a quoted cell may span lines)
            for cells in reader:
                if cells:
                    rows.append((line, cells))
                line = reader.line_num + 1
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"{path}: cannot read CSV: {exc}") from None
    if not header:
        raise InputFileError(f"{path}: empty file (expected a header line)")
    return header, rows


def _raise(path: Path, errors: list[str]) -> None:
    if not errors:
        return
    shown = errors[:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    text = "\n".join(f"{path}: {e}" for e in shown)
    if more:
        text += f"\n{path}: ... and {more} more errors"
    raise InputFileError(text)


def read_pools_csv(path: str | Path) -> pd.DataFrame:
    """The pool universe of POOLS.csv, with optional forecast columns (NaN: use current values)."""
    path = Path(path)
    header, rows = _read_rows(path)
    allowed = set(POOL_COLUMNS) | set(FORECAST_COLUMNS)
    errors = [f"line 1: unknown column {c!r}" for c in header if c not in allowed]
    errors += [
        f"line 1: required column {c!r} is missing"
        for c in REQUIRED_POOL_COLUMNS
        if c not in header
    ]
    seen = {}
    for c in header:
        if c in seen:
            errors.append(f"line 1: column {c!r} appears twice")
        seen[c] = True
    if not errors and not rows:  # a day without pools is the file's error, not an infeasible day
        errors.append("no pool rows after the header line")
    _raise(path, errors)

    records: list[dict[str, Any]] = []
    forecasts: list[dict[str, float]] = []
    lines: list[int] = []
    errors_by_line: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    duplicates: set[int] = set()  # reported here once, so not validated again below
    at = header.index("pool")
    for line, cells in rows:
        pool = cells[at].strip() if at < len(cells) else ""
        if pool and pool in first_line:
            duplicates.add(line)
            errors_by_line.append(
                (
                    line,
                    f"line {line}: duplicate pool id {pool!r} (first on line {first_line[pool]})",
                )
            )
        first_line.setdefault(pool, line)
    kinds = [(column, _KINDS.get(column, _TEXT)) for column in header]
    for line, cells in rows:
        pool = cells[at].strip() if at < len(cells) else ""
        where = f"line {line}" + (f" (pool {pool})" if pool else "")
        if len(cells) > len(header):
            errors_by_line.append((line, f"{where}: more values than columns"))
            continue
        record: dict[str, Any] = {}
        forecast: dict[str, float] = {}
        bad = len(errors_by_line)
        if len(cells) < len(header):  # a short row's missing cells are empty (null)
            cells = cells + [""] * (len(header) - len(cells))
        for (column, kind), raw in zip(kinds, cells, strict=True):
            text = raw.strip()
            if kind is _TEXT:
                record[column] = text or None
            elif kind is _NUMBER or kind is _FORECAST:
                # '' is null (DefiLlama's null); anything else must parse (NaN parses and is
                # rejected later)
                try:
                    value = float(text) if text else None
                except ValueError:
                    errors_by_line.append(
                        (line, f"{where}: field {column!r} is not a number: {raw!r}")
                    )
                    continue
                if kind is _NUMBER:
                    record[column] = value
                elif value is None:
                    forecast[column] = math.nan
                elif not math.isfinite(value):
                    errors_by_line.append(
                        (line, f"{where}: field {column!r} is {text} (must be finite)")
                    )
                elif column == "tvl_forecast" and value <= 0:
                    errors_by_line.append(
                        (line, f"{where}: field {column!r} must be positive, got {value}")
                    )
                else:
                    forecast[column] = value
            elif kind is _TOKENS:
                record[column] = [t.strip() for t in raw.split(";") if t.strip()] or None
            else:  # _FLAG
                flag = text.lower()
                if flag in ("", "false", "0", "no"):
                    record[column] = False if flag else None
                elif flag in ("true", "1", "yes"):
                    record[column] = True
                else:
                    errors_by_line.append(
                        (line, f"{where}: field 'stablecoin' must be true or false, got {raw!r}")
                    )
        if len(errors_by_line) > bad or line in duplicates:  # reported, not validated further
            continue
        records.append(record)
        forecasts.append(forecast)
        lines.append(line)

    # The operator's own what-if file: its values are chosen (a diluted model scales TVLs far
    # beyond any real pool), so the fetched-data ceilings do not apply; money limits still do.
    universe, rejections = validate_pool_records(records, source=str(path), limits=NO_LIMITS)
    for rejection in rejections:
        line = lines[rejection.row_number]
        pool = f" (pool {rejection.pool_id})" if rejection.pool_id else ""
        errors_by_line.append((line, f"line {line}{pool}: {rejection.reason}"))
    _raise(path, [e for _, e in sorted(errors_by_line, key=lambda item: item[0])])

    if any(forecasts):
        frame = pd.DataFrame(
            [{"pool": r["pool"].strip(), **f} for r, f in zip(records, forecasts, strict=True)]
        )
        frame = frame.reindex(columns=["pool", *FORECAST_COLUMNS])
        universe = universe.merge(frame, on="pool", how="left")
    return universe


def read_holdings_csv(path: str | Path) -> Holdings:
    """HOLDINGS.csv: `pool,amount_usd` rows plus one row whose pool is `idle_usd`."""
    return read_holdings_file(path).holdings


@dataclass(frozen=True)
class HoldingsFile:
    """Holdings read from a file, with where each pool (and the idle row) was found."""

    holdings: Holdings
    # pool id (or IDLE) -> "line N", for errors found after parsing (e.g. an unknown pool)
    lines: dict[str, str]


def read_holdings_file(path: str | Path) -> HoldingsFile:
    """HOLDINGS in CSV (`pool,amount_usd` and one `idle_usd` row) or JSON (a list of
    `{"pool": ..., "amount_usd": ...}` objects, the same rows), chosen by the `.json` suffix."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return _holdings_from_rows(path, _json_holdings_rows(path))
    header, rows = _read_rows(path)
    if sorted(header) != ["amount_usd", "pool"]:
        _raise(path, [f"line 1: expected the columns pool,amount_usd, got {','.join(header)}"])
    pool, amount = header.index("pool"), header.index("amount_usd")
    return _holdings_from_rows(
        path,
        [
            (
                f"line {line}",
                cells[pool].strip() if pool < len(cells) else "",
                cells[amount].strip() if amount < len(cells) else "",
            )
            for line, cells in rows
        ],
    )


def _json_holdings_rows(path: Path) -> list[tuple[str, str, object]]:
    """The (where, pool, amount) rows of a JSON holdings file, each named by its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read JSON: {exc}") from None
    decoder = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal)
    index = _skip_space(text, 0)
    if not text.startswith("[", index):
        line = text.count("\n", 0, index) + 1
        raise InputFileError(
            f'{path}: line {line}: expected a JSON list of {{"pool", "amount_usd"}} objects'
        )
    out: list[tuple[str, str, object]] = []
    index = _skip_space(text, index + 1)
    while True:
        try:
            if text.startswith("]", index) and not out:
                break
            line = text.count("\n", 0, index) + 1
            item, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{path}: line {exc.lineno}: malformed JSON: {exc.msg}") from None
        where = f"line {line}"
        if not isinstance(item, dict) or sorted(item) != ["amount_usd", "pool"]:
            raise InputFileError(
                f"{path}: {where}: expected an object with the fields pool and amount_usd"
            )
        pool = item["pool"] if isinstance(item["pool"], str) else ""
        amount = item["amount_usd"]
        out.append(
            (where, pool.strip(), amount if isinstance(amount, Decimal | str) else repr(amount))
        )
        index = _skip_space(text, index)
        if text.startswith(",", index):
            index = _skip_space(text, index + 1)
            continue
        if text.startswith("]", index) and _skip_space(text, index + 1) == len(text):
            break
        line = text.count("\n", 0, index) + 1
        raise InputFileError(
            f"{path}: line {line}: malformed JSON: expected ',' or the closing ']'"
        )
    return out


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _holdings_from_rows(path: Path, rows: list[tuple[str, str, object]]) -> HoldingsFile:
    """One validation of holdings rows, whatever the file format: every error, or the holdings."""
    errors = []
    positions: dict[str, Decimal] = {}
    lines: dict[str, str] = {}
    idle: Decimal | None = None
    for where, pool, value in rows:
        raw = str(value).strip()
        if not pool:
            errors.append(f"{where}: field 'pool' is empty")
            continue
        try:
            amount = value if isinstance(value, Decimal) else Decimal(raw)
        except InvalidOperation:
            errors.append(f"{where} (pool {pool}): field 'amount_usd' is not a number: {raw!r}")
            continue
        if not amount.is_finite():
            errors.append(f"{where} (pool {pool}): field 'amount_usd' is {raw} (must be finite)")
            continue
        if amount < 0:
            errors.append(f"{where} (pool {pool}): field 'amount_usd' is negative: {raw}")
            continue
        try:
            check_usd(amount, "field 'amount_usd'")
        except AmountTooLargeError as exc:
            errors.append(f"{where} (pool {pool}): {exc}")
            continue
        if pool in lines:
            errors.append(f"{where}: field 'pool': {pool} appears twice (first on {lines[pool]})")
            continue
        lines[pool] = where
        if pool == IDLE:
            idle = to_cents(amount)
        else:
            positions[pool] = to_cents(amount)
    _raise(path, errors)
    holdings = Holdings(positions=positions, idle_usd=idle if idle is not None else Decimal("0.00"))
    return HoldingsFile(holdings=holdings, lines=lines)
