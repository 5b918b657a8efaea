"""A day's platform metrics from a file (CSV or JSON), checked like every outside input.

The fields are the columns of the four metrics tables (docs/platform_metrics.md is the
contract). A file is read whole and checked whole: every problem is reported with the file,
the line (CSV) and the field, and nothing is returned unless everything is valid.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from allocator_dagster.profit_split.metrics import (
    CommunityGrowth,
    DaoTreasury,
    EngagementMetrics,
    TokenPerformance,
)

MAX_FILE_BYTES = 1_000_000
MAX_COUNT = 10**12
MAX_USD = Decimal(10) ** 15
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Field:
    """One column of the contract: its table, kind and allowed range."""

    table: str
    kind: str  # 'count' (whole number), 'number', 'usd' (whole cents)
    low: Decimal | None
    high: Decimal | None
    meaning: str


PCT_RANGE = (Decimal(-100), Decimal(100_000))
FIELDS: dict[str, Field] = {
    "wallet_connections": Field(
        "platform_engagement_daily", "count", Decimal(0), None, "distinct wallets connected"
    ),
    "trades": Field("platform_engagement_daily", "count", Decimal(0), None, "trades on the day"),
    "page_views": Field("platform_engagement_daily", "count", Decimal(0), None, "page views"),
    "engagement_score": Field(
        "platform_engagement_daily", "number", Decimal(0), Decimal(100), "score 0-100"
    ),
    "price_usd": Field("token_performance_daily", "number", Decimal(0), MAX_USD, "token price"),
    "price_trend_pct_7d": Field(
        "token_performance_daily", "number", *PCT_RANGE, "price change over 7 days, percent"
    ),
    "volume_usd": Field("token_performance_daily", "number", Decimal(0), MAX_USD, "volume, USD"),
    "holders": Field("token_performance_daily", "count", Decimal(0), None, "token holders"),
    "holder_growth_pct_7d": Field(
        "token_performance_daily", "number", *PCT_RANGE, "holder change over 7 days, percent"
    ),
    "balance_usd": Field("dao_treasury_daily", "usd", Decimal(0), MAX_USD, "treasury balance"),
    "monthly_burn_usd": Field(
        "dao_treasury_daily", "usd", Decimal(0), MAX_USD, "treasury spending per month"
    ),
    "members": Field("community_growth_daily", "count", Decimal(0), None, "community members"),
    "new_members_7d": Field(
        "community_growth_daily", "count", Decimal(0), None, "members who joined in 7 days"
    ),
    "growth_pct_7d": Field(
        "community_growth_daily", "number", *PCT_RANGE, "member change over 7 days, percent"
    ),
}
TABLES = tuple(dict.fromkeys(f.table for f in FIELDS.values()))


class MetricsFileError(ValueError):
    """Everything wrong with a metrics file, one problem per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DayMetrics:
    """The four rows of one day, as the metrics tables hold them."""

    metric_date: date
    engagement: EngagementMetrics
    token: TokenPerformance
    treasury: DaoTreasury
    community: CommunityGrowth


def _value(name: str, raw: Any, where: str) -> tuple[Any, str | None]:
    field = FIELDS[name]
    if isinstance(raw, bool) or raw is None or isinstance(raw, dict | list):
        return None, f"{where}field '{name}': {raw!r} is not a number"
    if isinstance(raw, float):  # never from our JSON reader; refuse binary floats anyway
        raw = repr(raw)
    text = str(raw).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None, f"{where}field '{name}': {text[:40]!r} is not a number"
    if not number.is_finite():
        return None, f"{where}field '{name}': {text[:40]!r} is not a finite number"
    if field.kind == "count" and (number != number.to_integral_value() or abs(number) > MAX_COUNT):
        return None, f"{where}field '{name}': {text[:40]} is not a whole number up to {MAX_COUNT}"
    if field.kind == "usd" and number != number.quantize(CENT):
        return None, f"{where}field '{name}': {text[:40]} USD is not in whole cents"
    if field.low is not None and number < field.low:
        return None, f"{where}field '{name}': {text[:40]} is below {field.low}"
    if field.high is not None and number > field.high:
        return None, f"{where}field '{name}': {text[:40]} is above {field.high}"
    if field.kind == "count":
        return int(number), None
    if field.kind == "usd":
        return number.quantize(CENT), None
    return number, None


def _check(
    values: dict[str, Any], day: date, where: str, source: str, header: str | None = None
) -> DayMetrics:
    """`where` locates a value ("line 2, " in a CSV), `header` the field names ("line 1, ": an
    unknown or missing column is the header's problem); JSON has neither."""
    header = where if header is None else header
    problems: list[str] = []
    declared = values.pop("metric_date", None)
    if declared is not None and str(declared).strip() != day.isoformat():
        problems.append(
            f"{where}field 'metric_date': {str(declared)[:40]!r} is not the day given ({day})"
        )
    unknown = sorted(set(values) - set(FIELDS))
    problems += [f"{header}field '{name[:60]}': not a metrics field" for name in unknown]
    missing = [name for name in FIELDS if name not in values]
    problems += [f"{header}field '{name}': missing ({FIELDS[name].table})" for name in missing]
    parsed: dict[str, Any] = {}
    for name in FIELDS:
        if name in values:
            value, problem = _value(name, values[name], where)
            if problem:
                problems.append(problem)
            parsed[name] = value
    if problems:
        raise MetricsFileError([f"{source}: {p}" for p in problems])
    p = parsed
    return DayMetrics(
        metric_date=day,
        engagement=EngagementMetrics(
            p["wallet_connections"], p["trades"], p["page_views"], p["engagement_score"]
        ),
        token=TokenPerformance(
            p["price_usd"],
            p["price_trend_pct_7d"],
            p["volume_usd"],
            p["holders"],
            p["holder_growth_pct_7d"],
        ),
        treasury=DaoTreasury(p["balance_usd"], p["monthly_burn_usd"]),
        community=CommunityGrowth(p["members"], p["new_members_7d"], p["growth_pct_7d"]),
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: json keeps the last of a repeated key
    silently (a CSV's repeated column is refused, so is this)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"field {key[:60]!r} appears twice in one object")
        data[key] = value
    return data


def parse_json(text: str, day: date, source: str) -> DayMetrics:
    """A flat object of fields, or one object per table keyed by the table's name."""
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise MetricsFileError(
            [f"{source}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"]
        ) from None
    except ValueError as exc:
        raise MetricsFileError([f"{source}: {exc}"]) from None
    if not isinstance(data, dict):
        raise MetricsFileError([f"{source}: the JSON is not an object"])
    if set(data) & set(TABLES):
        flat: dict[str, Any] = {k: v for k, v in data.items() if k not in TABLES}
        problems = []
        for table in TABLES:
            section = data.get(table)
            if section is None:
                problems.append(f"{source}: table '{table}': missing")
                continue
            if not isinstance(section, dict):
                problems.append(f"{source}: table '{table}': not an object")
                continue
            for name, value in section.items():
                if name in FIELDS and FIELDS[name].table != table:
                    problems.append(f"{source}: field '{name}': belongs to {FIELDS[name].table}")
                flat[name] = value
        if problems:
            raise MetricsFileError(problems)
        data = flat
    return _check(dict(data), day, "", source)


def parse_csv(text: str, day: date, source: str) -> DayMetrics:
    """A header of field names and exactly one row of values."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise MetricsFileError([f"{source}: not CSV ({exc})"]) from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) != 2:
        raise MetricsFileError(
            [f"{source}: expected a header and one row of values, found {len(rows)} lines"]
        )
    header, row = ([cell.strip() for cell in r] for r in rows)
    if len(row) != len(header):
        raise MetricsFileError(
            [f"{source} line 2: {len(row)} values for {len(header)} columns in the header"]
        )
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise MetricsFileError([f"{source} line 1: column {d!r} appears twice" for d in duplicated])
    return _check(dict(zip(header, row, strict=True)), day, "line 2, ", source, "line 1, ")


def read_metrics_file(path: Path, day: date) -> DayMetrics:
    """The day's metrics from `path` (.csv or .json); MetricsFileError lists every problem."""
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise MetricsFileError([f"{source}: the file must end in .csv or .json"])
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise MetricsFileError([f"{source}: larger than {MAX_FILE_BYTES} bytes"])
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise MetricsFileError([f"{source}: cannot be read ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise MetricsFileError([f"{source}: not UTF-8 text"]) from None
    return parse_json(text, day, source) if suffix == ".json" else parse_csv(text, day, source)
