"""`allocator proposals analyze`: the specification's response, one decision per day, no sample
data in production; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from click.testing import CliRunner

from allocator_dagster.cli import main as cli
from allocator_dagster.storage import get_engine
from allocator_dagster.storage import profit_split as store

D = Decimal


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_analyze_prints_the_specifications_response(database_url: str) -> None:
    base = ["proposals", "analyze", "--database-url", database_url]
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
        "analyze",
        "--database-url",
        database_url,
        "--day",
        "2025-06-03",
        env={"ALLOCATOR_METRICS_SOURCE": "database"},
    )
    assert result.exit_code == 2, result.output  # a user's error, like every other command's
    assert result.output.startswith("error: ")
    assert "no metrics for 2025-06-03" in result.output
    assert "allocator metrics import --day 2025-06-03 FILE" in result.output
    assert store.day_record(get_engine(database_url), date(2025, 6, 3)) is None


def test_an_unknown_proposal_is_one_error_line_and_exit_2(database_url: str) -> None:
    """`show` and `review` of an id that is not stored: the CLI's rule for a user's error (one
    line starting `error:`, exit code 2), not click's `Error:` and 1; nothing is written."""
    for args in (["show", "424242"], ["review", "424242", "--approve", "--by", "alice"]):
        result = invoke("proposals", *args, "--database-url", database_url)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
        assert "424242" in result.output
    with get_engine(database_url).connect() as connection:
        reviews = connection.execute(sa.text("SELECT count(*) FROM profit_proposal_reviews"))
        assert reviews.scalar_one() == 0
