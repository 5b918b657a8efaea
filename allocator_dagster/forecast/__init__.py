"""Next-day forecasts of each pool's APY and TVL that one bad day cannot move.

`robust` is the forecast the allocation uses, `baselines` what it is measured against, and
`evaluation` the measurement on recorded history (`python -m allocator_dagster.forecast
evaluate|tune`, docs/forecast.md).
"""

from allocator_dagster.forecast.baselines import persistence_for_day, previous_forecast_for_day
from allocator_dagster.forecast.evaluation import (
    GRID,
    HistorySource,
    evaluate_forecast,
    format_table,
    tune_rules,
)
from allocator_dagster.forecast.robust import (
    APY_OFFSET,
    LOOKBACK_DAYS,
    RULES,
    SERIES,
    SeriesRule,
    attach_forecast,
    forecast_for_day,
    matrices,
    series_forecast,
)

__all__ = [
    "APY_OFFSET",
    "GRID",
    "LOOKBACK_DAYS",
    "RULES",
    "SERIES",
    "HistorySource",
    "SeriesRule",
    "attach_forecast",
    "evaluate_forecast",
    "forecast_for_day",
    "format_table",
    "matrices",
    "persistence_for_day",
    "previous_forecast_for_day",
    "series_forecast",
    "tune_rules",
]
