"""The live-day benchmark still measures what it says: a day after decided days, succeeded."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from allocator_dagster.bench.live import live_command


def test_the_live_day_is_measured_after_days_the_chain_decided(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = CliRunner().invoke(
        live_command, ["--pools", "300", "--allocated-days", "2", "--one", "sqlite"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["ok"] is True
    assert figures["decided_before"] == 2  # a rebalance, not a first day
    assert figures["decision"] in {"full", "yield-only", "forced"}  # not "hold": it failed
    assert figures["records"] > 250
    assert figures["cpu"] > 0
    assert figures["seconds"] > 0
