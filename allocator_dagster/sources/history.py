"""Recorded pool history as a pool source (`ALLOCATOR_POOL_SOURCE=history`).

A treasurer replays their own recordings, or the real DefiLlama series in
`../shared/defillama/history/`, through the same pipeline as a live day. Two layouts:

* a CSV (or `.csv.gz`) with one row per pool and day: `date` (YYYY-MM-DD) and the `/pools`
  fields, as in `chart_2022-02-11_2025-07-31.csv.gz` (`underlyingTokens` joined with `;`,
  `stablecoin` `True`/`False`, an empty cell is null); `date`, `pool`, `chain`, `project`,
  `symbol` and `tvlUsd` are required columns, the other fields are optional;
* a folder of daily `/pools` saves, `{"status": "success", "data": [...]}`, one file per day
  with the date in its name (`2025-07-31.json`, `pools_2025-07-31.json.gz`).

Each day's records go through `validate_pool_records`, exactly as a live fetch: a record that
would be rejected live is rejected here, and the rejection names the file, the line (or the
position in `data`) and the field. A file that cannot be read as a whole (a missing column, a
date that is not a date, a day the recording does not hold) raises `HistoryError` naming the
file and, where there is one, the row and field. Nothing depends on the clock or on what is
stored: the same file gives the same universe for a day, every time.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator_dagster.sources.records import (
    HISTORY_COLUMNS,
    PoolSource,
    Rejection,
    validate_pool_records,
)

HISTORY_FILE_ENV = "ALLOCATOR_HISTORY_FILE"
SOURCE_NAME = PoolSource.HISTORY

REQUIRED_COLUMNS = ("date", "pool", "chain", "project", "symbol", "tvlUsd")
NUMBER_FIELDS = ("tvlUsd", "apy", "apyBase", "apyReward", "apyMean30d")
TEXT_FIELDS = ("pool", "chain", "project", "symbol", "ilRisk", "exposure", "poolMeta")
KNOWN_FIELDS = (*TEXT_FIELDS, *NUMBER_FIELDS, "stablecoin", "underlyingTokens")
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


class HistoryError(ValueError):
    """The recording cannot be used; the message names the file, and the row and field."""


@dataclass(frozen=True)
class _Day:
    """One day's raw records and where each came from (line in the CSV, index in a save)."""

    records: list[Any]
    where: list[int]
    file: str
    unit: str  # "line" or "record"


def _number(text: str) -> Any:
    """A CSV cell as the API would send it: null, a number, or the text (which validation
    then rejects with the field's name)."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _flag(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return text  # validation rejects it, naming 'stablecoin'


def _parse_date(text: str, file: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise HistoryError(
            f"{file}: {where}, field 'date': {text!r} is not a date (YYYY-MM-DD)"
        ) from None


def _csv_record(row: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, text in row.items():
        if name not in KNOWN_FIELDS or text is None:
            continue
        if name in NUMBER_FIELDS:
            record[name] = _number(text)
        elif name == "stablecoin":
            record[name] = _flag(text)
        elif name == "underlyingTokens":
            record[name] = [t.strip() for t in text.split(";") if t.strip()] or None
        else:
            record[name] = text if text.strip() else None
    return record


def _read_csv(path: Path) -> dict[date, _Day]:
    """The CSV's rows by day, as `/pools` records (line numbers counted from the header, 1)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    days: dict[date, _Day] = {}
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise HistoryError(
                    f"{path}: missing column(s) {', '.join(missing)} in the header "
                    f"(required: {', '.join(REQUIRED_COLUMNS)})"
                )
            for row in reader:
                line = reader.line_num
                if None in row:  # more cells than the header has names
                    raise HistoryError(f"{path}: line {line} has more cells than the header")
                day = _parse_date(row.get("date") or "", str(path), f"line {line}")
                entry = days.setdefault(day, _Day([], [], str(path), "line"))
                entry.records.append(_csv_record(row))
                entry.where.append(line)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile) as exc:
        raise HistoryError(f"{path}: cannot be read as CSV: {exc}") from None
    if not days:
        raise HistoryError(f"{path}: no rows")
    return days


def _read_save(path: Path) -> list[Any]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            payload = json.load(io.TextIOWrapper(handle, encoding="utf-8"))
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile, RecursionError) as exc:
        raise HistoryError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise HistoryError(f"{path}: not JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise HistoryError(f"{path}: not a /pools save (an object with a 'data' list)")
    if payload.get("status", "success") != "success":
        raise HistoryError(f"{path}: the save's status is {payload.get('status')!r}, not 'success'")
    return payload["data"]


def _save_files(folder: Path) -> dict[date, Path]:
    files: dict[date, Path] = {}
    for path in sorted(folder.iterdir()):
        if not (path.name.endswith(".json") or path.name.endswith(".json.gz")):
            continue
        found = _DATE_IN_NAME.search(path.name)
        if found is None:
            raise HistoryError(f"{path}: a /pools save must have its date (YYYY-MM-DD) in its name")
        day = _parse_date(found.group(1), str(path), "file name")
        if day in files:
            raise HistoryError(f"{path}: a second save for {day} (the first is {files[day].name})")
        files[day] = path
    if not files:
        raise HistoryError(f"{folder}: no daily /pools saves (*.json or *.json.gz named by date)")
    return files


class PoolHistory:
    """A recording, served one validated day at a time like the live API serves today."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            self._files = _save_files(self.path)
            self._csv: dict[date, _Day] | None = None
            self.days: tuple[date, ...] = tuple(sorted(self._files))
        elif self.path.is_file():
            self._files = {}
            self._csv = _read_csv(self.path)
            self.days = tuple(sorted(self._csv))
        else:
            raise HistoryError(f"{self.path}: no such file or folder ({HISTORY_FILE_ENV})")
        self._validated: dict[date, tuple[pd.DataFrame, list[Rejection]]] = {}
        self._history: pd.DataFrame | None = None

    @property
    def start(self) -> date:
        return self.days[0]

    @property
    def end(self) -> date:
        return self.days[-1]

    def _raw(self, day: date) -> _Day:
        if self._csv is not None:
            found = self._csv.get(day)
        else:
            path = self._files.get(day)
            found = None if path is None else self._day_of_save(path)
        if found is None:
            raise HistoryError(
                f"{self.path}: no records for {day} (the recording covers {self.start} .. "
                f"{self.end}, {len(self.days)} days)"
            )
        return found

    @staticmethod
    def _day_of_save(path: Path) -> _Day:
        data = _read_save(path)
        return _Day(data, list(range(len(data))), str(path), "record")

    def universe_for(self, day: date) -> tuple[pd.DataFrame, list[Rejection]]:
        """The validated universe of `day` and its rejections (each naming file, row, field)."""
        cached = self._validated.get(day)
        if cached is None:
            raw = self._raw(day)
            frame, rejected = validate_pool_records(raw.records, source=SOURCE_NAME)
            rejections = [
                Rejection(
                    raw.where[r.row_number],
                    r.pool_id,
                    f"{raw.file} {raw.unit} {raw.where[r.row_number]}: {r.reason}",
                )
                for r in rejected
            ]
            cached = (frame, rejections)
            self._validated[day] = cached
        frame, rejections = cached
        return frame.copy(), list(rejections)

    def _all_days(self) -> Iterator[tuple[date, pd.DataFrame]]:
        for day in self.days:
            yield day, self.universe_for(day)[0]

    def history(self, start: date, end: date) -> pd.DataFrame:
        """Daily (date, pool, tvlUsd, apy, apyBase, apyReward) of the validated rows, start..end.

        The values validation keeps (a null part of the APY counts as 0), sorted by date and
        pool: what storing each day and reading it back would give.
        """
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        if self._history is None:
            parts = [
                pd.DataFrame(
                    {
                        "date": np.datetime64(day, "D"),
                        **{c: frame[c].to_numpy() for c in HISTORY_COLUMNS[1:]},
                    }
                )
                for day, frame in self._all_days()
                if len(frame)
            ]
            whole = (
                pd.concat(parts, ignore_index=True)
                if parts
                else pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
            )
            whole["date"] = pd.to_datetime(whole["date"]).astype("datetime64[ns]")
            whole["pool"] = whole["pool"].astype("str")
            for c in HISTORY_COLUMNS[2:]:
                whole[c] = whole[c].astype("float64")
            self._history = whole
        dates = self._history["date"].to_numpy()
        lo = np.searchsorted(dates, np.datetime64(start, "ns"), side="left")
        hi = np.searchsorted(dates, np.datetime64(end + timedelta(days=1), "ns"), side="left")
        return self._history.iloc[lo:hi].reset_index(drop=True)


def history_file(value: str | None = None) -> str:
    """The configured recording (argument, else ALLOCATOR_HISTORY_FILE); a clear error if unset."""
    chosen = (value or os.environ.get(HISTORY_FILE_ENV) or "").strip()
    if not chosen:
        raise HistoryError(
            f"the history pool source needs {HISTORY_FILE_ENV}: a CSV (.csv or .csv.gz) of daily "
            "pool rows, or a folder of daily /pools saves named by date"
        )
    return chosen


_OPEN: dict[tuple[str, float, int], PoolHistory] = {}


def open_history(path: str | os.PathLike[str]) -> PoolHistory:
    """One parsed recording per file and version in a process (a backfill reads it once)."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError:
        raise HistoryError(f"{path}: no such file or folder ({HISTORY_FILE_ENV})") from None
    key = (str(resolved), stat.st_mtime, stat.st_size)
    found = _OPEN.get(key)
    if found is None:
        found = PoolHistory(resolved)
        _OPEN.clear()  # keep one recording: a new version of the file replaces the old one
        _OPEN[key] = found
    return found
