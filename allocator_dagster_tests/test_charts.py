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


def _history() -> list:
    import datetime as dt

    from allocator_dagster.allocation_history import HistoryDay, Position

    days = []
    for k in range(40):
        positions = tuple(
            Position(
                f"SYM{j} · proj{j % 3} · Ethereum · {j:08x}", f"proj{j % 3}", 1e5 * (j + k % 3)
            )
            for j in range(10)
        )
        held = k % 7 == 3
        days.append(
            HistoryDay(
                dt.date(2026, 1, 1) + dt.timedelta(days=k),
                "hold" if held else "full",
                None if held else positions,
                None if held else 900.0 + k,
                880.0 + k,
            )
        )
    return days


def test_history_charts_are_deterministic_pngs() -> None:
    from allocator_dagster.charts import allocation_history_png, yield_history_png

    days = _history()
    for draw in (allocation_history_png, yield_history_png):
        png = draw(days)
        assert png is not None and png.startswith(PNG_MAGIC) and 2_000 < len(png) < 200_000
        assert draw(days) == png
    assert allocation_history_png([]) is None and yield_history_png([]) is None
    # the first stored day: no history to draw (it was a dot, y ticks '0, 0, -0' and the same
    # date five times on the x axis)
    assert allocation_history_png(days[:1]) is None and yield_history_png(days[:1]) is None
    assert allocation_history_png(days[:2]) is not None and yield_history_png(days[:2]) is not None


def test_split_chart_is_a_png_and_needs_something_to_draw() -> None:
    import datetime as dt

    from allocator_dagster.charts import split_history_png

    split = {"reinvestment": 80.0, "dao": 15.0, "lucky": 3.0, "creator": 2.0}
    history = [(dt.date(2026, 1, 1) + dt.timedelta(days=k), split) for k in range(10)]
    png = split_history_png(history, split, {})
    assert png is not None and png.startswith(PNG_MAGIC)
    assert split_history_png([], split, {}) is not None  # the split in force alone
    assert split_history_png([], {}, {}) is None
