"""`allocator metrics import`: a day's platform metrics from CSV or JSON, every bad field
named and nothing written, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from allocator_dagster.cli import main as cli
from allocator_dagster.profit_split.metrics_file import FIELDS
from allocator_dagster.storage import get_engine
from allocator_dagster.storage import profit_split as store

D = Decimal
DAY = date(2025, 6, 1)
GOOD = {
    "wallet_connections": 3200,
    "trades": 9100,
    "page_views": 41000,
    "engagement_score": "82.5",
    "price_usd": "1.25",
    "price_trend_pct_7d": "18.0",
    "volume_usd": "2100000",
    "holders": 10500,
    "holder_growth_pct_7d": "12.0",
    "balance_usd": "2400000.00",
    "monthly_burn_usd": "100000.00",
    "members": 21000,
    "new_members_7d": 2500,
    "growth_pct_7d": "13.5",
}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def write_csv(path: Path, values: dict) -> Path:
    path.write_text(",".join(values) + "\n" + ",".join(str(v) for v in values.values()) + "\n")
    return path


def test_metrics_import_from_csv_and_json(database_url: str, tmp_path: Path) -> None:
    engine = get_engine(database_url)
    csv_file = write_csv(tmp_path / "day.csv", {"metric_date": DAY.isoformat(), **GOOD})
    done = invoke(
        "metrics", "import", "--day", "2025-06-01", str(csv_file), "--database-url", database_url
    )
    assert done.exit_code == 0, done.output
    assert "metrics for 2025-06-01 imported" in done.output
    seed = store.ensure_active_split(engine)
    read = store.read_platform_metrics(engine, DAY, seed)
    assert read.engagement.engagement_score == D("82.5") and read.token.holders == 10500
    assert read.treasury.balance_usd == D("2400000.00")

    again = invoke(
        "metrics", "import", "--day", "2025-06-01", str(csv_file), "--database-url", database_url
    )
    assert (
        again.exit_code == 2
        and "already has metrics" in again.output
        and "--replace" in again.output
    )

    nested = {table: {} for table in {f.table for f in FIELDS.values()}}
    for name, value in {**GOOD, "engagement_score": 40}.items():
        nested[FIELDS[name].table][name] = value
    json_file = tmp_path / "day.json"
    json_file.write_text(json.dumps(nested))
    replaced = invoke(
        "metrics",
        "import",
        "--day",
        "2025-06-01",
        str(json_file),
        "--replace",
        "--database-url",
        database_url,
    )
    assert replaced.exit_code == 0, replaced.output
    assert store.read_platform_metrics(engine, DAY, seed).engagement.engagement_score == 40


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trades": "12.5"}, "line 2, field 'trades': 12.5 is not a whole number"),
        ({"engagement_score": "101"}, "field 'engagement_score': 101 is above 100"),
        ({"balance_usd": "10.001"}, "field 'balance_usd': 10.001 USD is not in whole cents"),
        ({"holders": "-1"}, "field 'holders': -1 is below 0"),
        ({"price_usd": "NaN"}, "field 'price_usd': 'NaN' is not a finite number"),
        ({"growth_pct_7d": "lots"}, "field 'growth_pct_7d': 'lots' is not a number"),
        # a missing or unknown column is the header's (line 1), not the values' line
        ({"members": None}, "line 1, field 'members': missing (community_growth_daily)"),
        ({"surprise": "1"}, "line 1, field 'surprise': not a metrics field"),
        ({"metric_date": "2025-06-02"}, "is not the day given (2025-06-01)"),
    ],
)
def test_bad_metrics_name_the_field_and_write_nothing(
    database_url: str, tmp_path: Path, change: dict, message: str
) -> None:
    values = {**GOOD, **change}
    values = {k: v for k, v in values.items() if v is not None}
    bad = write_csv(tmp_path / "bad.csv", values)
    result = invoke(
        "metrics", "import", "--day", "2025-06-01", str(bad), "--database-url", database_url
    )
    assert result.exit_code == 2, result.output
    assert str(bad) in result.output and message in result.output, result.output
    assert "Traceback" not in result.output
    seed = store.ensure_active_split(get_engine(database_url))
    with pytest.raises(store.MetricsUnavailable):
        store.read_platform_metrics(get_engine(database_url), DAY, seed)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.json", "{not json", "not JSON"),
        ("x.json", "[1, 2]", "the JSON is not an object"),
        ("x.json", '{"trades": true}', "field 'trades': True is not a number"),
        ("x.json", '{"trades": Infinity}', "Infinity is not a number"),
        # json keeps the last of a repeated key silently
        ("x.json", '{"trades": 1, "trades": 2}', "field 'trades' appears twice in one object"),
        ("x.csv", "a,b\n1,2\n3,4\n", "expected a header and one row of values, found 3 lines"),
        ("x.txt", "", "must end in .csv or .json"),
        ("x.csv", "trades,trades\n1,2\n", "column 'trades' appears twice"),
    ],
)
def test_unreadable_metrics_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = invoke("metrics", "import", "--day", "2025-06-01", str(path), "--database-url", url)
    assert result.exit_code == 2 and message in result.output, result.output
    missing = invoke(
        "metrics",
        "import",
        "--day",
        "2025-06-01",
        str(tmp_path / "none.csv"),
        "--database-url",
        url,
    )
    assert missing.exit_code == 2 and "cannot be read" in missing.output


def test_a_folder_or_a_newline_in_a_column_name_is_still_one_line_per_problem(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "day.json"
    folder.mkdir()
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = invoke("metrics", "import", "--day", "2025-06-01", str(folder), "--database-url", url)
    assert result.exit_code == 2, result.output
    [line] = result.output.splitlines()
    assert line.startswith("error: ") and f"'{folder}' is a directory" in line
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(
        '"tra\ndes",' + ",".join(GOOD) + "\n1," + ",".join(map(str, GOOD.values())) + "\n"
    )
    result = invoke("metrics", "import", "--day", "2025-06-01", str(quoted), "--database-url", url)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"error: {quoted}: line 1, field 'tra\\x0ades': not a metrics field"
    ]
