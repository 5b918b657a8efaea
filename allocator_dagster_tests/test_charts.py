"""The weights-and-deltas chart: a real, small PNG, the same bytes for the same day."""

from __future__ import annotations

import base64

from allocator_dagster.charts import png_markdown, weights_and_deltas_png
from allocator_dagster.reporting import allocation_table_rows
from allocator_dagster_tests.test_reporting import LINES, report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_chart_is_a_small_deterministic_png_embedded_in_markdown() -> None:
    labels = {"short": "USDC · aave-v3 · Ethereum · short"}
    png = weights_and_deltas_png(report(LINES), labels)
    assert png is not None and png.startswith(PNG_MAGIC)
    assert 2_000 < len(png) < 80_000
    assert weights_and_deltas_png(report(LINES), labels) == png
    text = png_markdown(png, "weights 2026-05-01")
    assert text.startswith("![weights 2026-05-01](data:image/png;base64,")
    assert base64.b64decode(text.split("base64,")[1].rstrip(")")) == png


def test_nothing_to_draw_says_so() -> None:
    assert weights_and_deltas_png(report([]), {}) is None
    assert png_markdown(None, "weights") == "_weights: nothing to draw_"


def test_table_rows_use_labels_and_thousands_separators() -> None:
    rows = allocation_table_rows(report(LINES), {"short": "USDC · aave-v3 · Ethereum · short"})
    assert [r["pool"] for r in rows] == [
        "0123456789abcdef-long-id",
        "USDC · aave-v3 · Ethereum · short",
        "gone",
    ]
    assert rows[0]["amount_usd"] == "1,234,567.89" and rows[0]["delta_usd"] == "+1,000.50"
    assert rows[2]["delta_usd"] == "-99.99" and rows[0]["weight_pct"] == 50.0
