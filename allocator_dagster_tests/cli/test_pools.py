"""`allocator pools fetch` and `show` on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pandas as pd
from click.testing import CliRunner

from allocator_dagster.cli import main as cli
from allocator_dagster.forecast import forecast_for_day
from allocator_dagster.sources.records import FORECAST_COLUMNS
from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.pool_reads import load_pool_day


def test_cli_fetch_and_show(database_url: str, monkeypatch) -> None:
    monkeypatch.setenv("ALLOCATOR_POOL_SOURCE", "sample")
    runner = CliRunner()
    outputs = []
    for day in ("2025-01-01", "2026-01-02"):
        result = runner.invoke(
            cli, ["pools", "fetch", "--day", day, "--database-url", database_url]
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "0 pools with a forecast" in outputs[0]  # the sample's first day has no history
    assert " 0 pools with a forecast" not in outputs[1]
    stored = load_pool_day(get_engine(database_url), date(2026, 1, 2))
    # The sample's forecast comes from the sample's own 60 days, not from what is stored.
    history = SampleUniverse().history(date(2025, 11, 3), date(2026, 1, 1))
    expected = forecast_for_day(history, date(2026, 1, 2)).set_index("pool")
    got = stored.set_index("pool")[list(FORECAST_COLUMNS)].dropna()
    assert len(got) > 1000
    pd.testing.assert_frame_equal(got, expected.loc[got.index], check_names=False)
    shown = runner.invoke(
        cli, ["pools", "show", "--day", "2026-01-02", "--top", "3", "--database-url", database_url]
    )
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"2026-01-02: {len(stored)} pools, " + lines[0].split(", ", 1)[1]
    top3 = stored.sort_values("tvlUsd", ascending=False)["pool"].head(3).tolist()
    assert [line.split()[0] for line in lines[3:6]] == top3
    missing = runner.invoke(
        cli, ["pools", "show", "--day", "2019-01-01", "--database-url", database_url]
    )
    assert missing.exit_code == 2 and missing.output.startswith(
        "error: no pool data stored for 2019-01-01"
    )
    monkeypatch.setenv("ALLOCATOR_POOL_SOURCE", "nonsense")
    bad = runner.invoke(
        cli, ["pools", "fetch", "--day", "2026-01-03", "--database-url", database_url]
    )
    assert bad.exit_code != 0 and "ALLOCATOR_POOL_SOURCE='nonsense'" in bad.output
