"""`allocator metrics import`, `allocator activity` and `allocator proposals analyze`, as a user
runs them, on SQLite and PostgreSQL."""

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
        ({"members": None}, "field 'members': missing (community_growth_daily)"),
        ({"surprise": "1"}, "field 'surprise': not a metrics field"),
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


def test_analyze_prints_the_specifications_response(database_url: str) -> None:
    base = ["proposals", "--database-url", database_url, "analyze"]
    result = invoke(
        *base, "--day", "2025-06-01", "--scenario", "treasury_critical", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    response = json.loads(result.output)
    assert list(response) == [
        "success",
        "should_rebalance",
        "current_allocation",
        "suggested_allocation",
        "reasoning",
        "confidence",
        "proposal_id",
    ]
    assert response["success"] is True and response["should_rebalance"] is True
    assert response["current_allocation"] == {
        "reinvestment": 80,
        "dao": 15,
        "lucky": 3,
        "creator": 2,
    }
    assert response["suggested_allocation"] == {
        "reinvestment": 75,
        "dao": 20,
        "lucky": 3,
        "creator": 2,
    }
    assert 0 < response["confidence"] <= 1 and "DAO treasury" in response["reasoning"]
    stored = store.get_proposal(get_engine(database_url), response["proposal_id"])
    assert stored.status == "proposed" and stored.proposed_by == "system"
    # the same day again: the same answer, no second proposal
    again = json.loads(invoke(*base, "--day", "2025-06-01", "--format", "json").output)
    assert again == response
    maintain = json.loads(
        invoke(*base, "--day", "2025-06-02", "--scenario", "steady", "--format", "json").output
    )
    assert maintain["should_rebalance"] is False and maintain["proposal_id"] is None
    assert maintain["suggested_allocation"] == maintain["current_allocation"]
    table = invoke(*base, "--day", "2025-06-02")
    assert table.exit_code == 0 and "maintain 80/15/3/2 -> 80/15/3/2" in table.output


def test_analyze_in_production_needs_the_days_metrics(database_url: str) -> None:
    result = invoke(
        "proposals",
        "--database-url",
        database_url,
        "analyze",
        "--day",
        "2025-06-03",
        env={"ALLOCATOR_METRICS_SOURCE": "database"},
    )
    assert result.exit_code == 1
    assert "no metrics for 2025-06-03" in result.output
    assert "allocator metrics import --day 2025-06-03 FILE" in result.output
    assert store.day_record(get_engine(database_url), date(2025, 6, 3)) is None


def test_activity_shows_the_log(database_url: str) -> None:
    base = ["proposals", "--database-url", database_url]
    response = json.loads(
        invoke(
            *base,
            "analyze",
            "--day",
            "2025-06-01",
            "--scenario",
            "rapid_growth",
            "--format",
            "json",
        ).output
    )
    approved = invoke(*base, "review", response["proposal_id"][:8], "--approve", "--by", "bob")
    assert approved.exit_code == 0, approved.output
    table = invoke("activity", "--database-url", database_url)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert [line.split()[3] for line in lines] == [
        "activation",
        "proposal_stored",
        "review",
        "deactivation",
        "activation",
    ]
    as_json = [
        json.loads(line)
        for line in invoke(
            "activity", "--database-url", database_url, "--format", "json"
        ).output.splitlines()
    ]
    assert as_json[1]["subject_id"] == response["proposal_id"]
    assert as_json[2]["actor"] == "bob" and as_json[2]["payload"]["decision"] == "approve"
    since = invoke("activity", "--database-url", database_url, "--since", "2999-01-01")
    assert since.output.strip() == "no activity since 2999-01-01 00:00:00 UTC"
    only = invoke(
        "activity", "--database-url", database_url, "--event", "review", "--format", "json"
    )
    assert len(only.output.splitlines()) == 1
