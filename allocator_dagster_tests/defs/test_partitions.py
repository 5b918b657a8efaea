"""The first partition is configurable by ALLOCATOR_FIRST_DAY; a bad value is a clear error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from allocator_dagster.defs.partitions import DEFAULT_FIRST_DAY, first_day


def test_first_day_defaults_and_normalises() -> None:
    assert first_day(None) == first_day("  ") == DEFAULT_FIRST_DAY
    assert first_day(" 2026-11-01 ") == "2026-11-01"
    with pytest.raises(ValueError, match=r"ALLOCATOR_FIRST_DAY='11/01/2026' is not a date"):
        first_day("11/01/2026")


def test_both_graphs_start_on_the_configured_day() -> None:
    code = (
        "from allocator_dagster.defs.allocation.partitions import daily_partitions as a;"
        "from allocator_dagster.defs.profit_split.partitions import PARTITIONS as p;"
        "print(a.get_first_partition_key(), p.get_first_partition_key())"
    )
    env = {**os.environ, "ALLOCATOR_FIRST_DAY": "2026-11-01"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2026-11-01", "2026-11-01"]
