"""Charts as small PNG images for the Dagster UI (markdown with an embedded data URI).

Rendered with matplotlib's Agg canvas, no pyplot global state and no timestamps in the file,
so the same day gives the same bytes. Cheap by construction, since a range run draws them for
many days: small figures at 72 dpi, fixed margins instead of a layout pass (tight_layout draws
every text twice), few ticks, and the figure is dropped as soon as its bytes are written.
No Dagster import.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from allocator_dagster.allocation_history import (
    OTHER,
    HistoryDay,
    by_pool,
    by_protocol,
    expected_vs_realised,
)
from allocator_dagster.allocation_report import AllocationReport
from allocator_dagster.pool_labels import fit

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CHART_POOLS = 12
HISTORY_SERIES = 8
DPI = 72
# a fixed, colour-blind-safe cycle (Okabe-Ito, then greys): the same series, the same colour
COLOURS = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
    "#999999",
    "#cccccc",
)
_SMALL = 8


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    figure.clear()  # no references left: the figure is collected with its canvas
    return buffer.getvalue()


def _x(days: Sequence[dt.date]) -> list[float]:
    """Days as matplotlib's day numbers (the date locator and formatter read them)."""
    from matplotlib.dates import date2num

    return [float(date2num(day)) for day in days]


def _usd_axis(axis: Axes) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.yaxis.set_major_locator(MaxNLocator(4))
    axis.yaxis.set_major_formatter(FuncFormatter(_usd))
    axis.tick_params(labelsize=_SMALL)


def _usd(value: float, _position: object = None) -> str:
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if size >= 1e3:
        return f"{value / 1e3:,.0f}k"
    return f"{value:,.0f}"


def weights_and_deltas_png(
    report: AllocationReport, labels: Mapping[str, str], limit: int = CHART_POOLS
) -> bytes | None:
    """Today's weight and USD moved per pool (largest positions and moves first); None: nothing to draw."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    lines = [entry for entry in report.lines if entry.amount_usd > 0 or entry.delta_usd != 0]
    lines.sort(key=lambda entry: (-max(entry.amount_usd, abs(entry.delta_usd)), entry.pool))
    lines = lines[:limit]
    if not lines:
        return None
    lines.reverse()  # barh draws bottom-up: the largest at the top
    names = [fit(labels.get(entry.pool, entry.pool[:8])) for entry in lines]
    weights = [entry.weight * 100 for entry in lines]
    deltas = [float(entry.delta_usd) for entry in lines]
    height = 0.24 * len(lines) + 0.9
    figure = _figure(9.5, height)
    figure.subplots_adjust(left=0.34, right=0.98, top=1 - 0.3 / height, bottom=0.45 / height)
    left, right = figure.subplots(1, 2, sharey=True)
    left.barh(names, weights, color=COLOURS[0])
    left.set_xlabel("weight %", fontsize=_SMALL)
    left.tick_params(labelsize=_SMALL)
    right.barh(names, deltas, color=["#009e73" if d >= 0 else "#d55e00" for d in deltas])
    right.axvline(0, color="#555555", linewidth=0.6)
    right.set_xlabel("delta USD (bought + / sold -)", fontsize=_SMALL)
    right.xaxis.set_major_locator(MaxNLocator(4))
    right.xaxis.set_major_formatter(FuncFormatter(_usd))
    right.tick_params(labelsize=_SMALL)
    figure.suptitle(f"{report.decision}: {float(report.total_usd):,.0f} USD", fontsize=9)
    return _png(figure)


def _stack(axis: Axes, days: list[float], series: Mapping[str, list[float]], title: str) -> None:
    names = list(series)
    colours = [COLOURS[-2] if n == OTHER else COLOURS[k % 8] for k, n in enumerate(names)]
    axis.stackplot(days, *(series[n] for n in names), colors=colours, linewidth=0)
    axis.set_title(title, fontsize=9, loc="left")
    if len(days) > 1:
        axis.set_xlim(days[0], days[-1])
    _usd_axis(axis)
    axis.legend(
        [fit(n) for n in names],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        frameon=False,
        handlelength=1.0,
        reverse=True,  # the legend reads top-down like the stack
    )


def _date_axis(axis: Axes) -> None:
    from matplotlib.dates import AutoDateLocator, DateFormatter

    axis.xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=6))
    axis.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    axis.tick_params(labelsize=_SMALL)


def allocation_history_png(days: Sequence[HistoryDay], top: int = HISTORY_SERIES) -> bytes | None:
    """The allocation in force over the window as stacked areas: by pool above, by protocol below.
    A history needs two days: one day's areas have no width and its date axis repeats one tick."""
    if len(days) < 2:
        return None
    dates = _x([d.day for d in days])
    figure = _figure(10.0, 5.2)
    figure.subplots_adjust(left=0.07, right=0.6, top=0.94, bottom=0.07, hspace=0.3)
    pools, protocols = figure.subplots(2, 1, sharex=True)
    _stack(pools, dates, by_pool(days, top), "allocation by pool (USD)")
    _stack(protocols, dates, by_protocol(days, top), "allocation by protocol (USD)")
    _date_axis(protocols)
    return _png(figure)


def yield_history_png(days: Sequence[HistoryDay]) -> bytes | None:
    """Expected (the allocation decided the day before) against realised yield per day."""
    expected, realised = expected_vs_realised(days)
    if len(days) < 2 or not any(v is not None for v in (*expected, *realised)):
        return None  # one day is a dot on an axis of one repeated date
    dates = _x([d.day for d in days])
    nan = float("nan")
    figure = _figure(10.0, 2.6)
    figure.subplots_adjust(left=0.07, right=0.7, top=0.88, bottom=0.14)
    axis = figure.subplots()
    marker = "o" if len(dates) < 20 else ""
    for values, colour in ((expected, COLOURS[0]), (realised, COLOURS[1])):
        axis.plot(
            dates,
            [nan if v is None else v for v in values],
            color=colour,
            linewidth=1.2,
            marker=marker,
            markersize=3,
        )
    axis.set_title("daily yield (USD/day)", fontsize=9, loc="left")
    axis.legend(
        ["expected (decided the day before)", "realised (the day's holdings)"],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        frameon=False,
    )
    _usd_axis(axis)
    _date_axis(axis)
    return _png(figure)


def split_history_png(
    history: Sequence[tuple[dt.date, Mapping[str, float]]],
    in_force: Mapping[str, float],
    labels: Mapping[str, str],
) -> bytes | None:
    """The profit split used on each distributed day (stacked %), and the split in force."""
    if not history and not in_force:
        return None
    names = list(in_force)
    figure = _figure(10.0, 2.8)
    figure.subplots_adjust(left=0.06, right=0.78, top=0.86, bottom=0.14, wspace=0.25)
    grid = figure.add_gridspec(1, 5)
    now = figure.add_subplot(grid[0, 0])
    bottom, bars = 0.0, []
    for k, name in enumerate(names):
        bars.append(now.bar([0], [in_force[name]], bottom=[bottom], color=COLOURS[k], width=0.6))
        bottom += in_force[name]
    now.set_xticks([])
    now.set_ylim(0, 100)
    now.set_title("in force %", fontsize=9, loc="left")
    now.tick_params(labelsize=_SMALL)
    over_time = figure.add_subplot(grid[0, 1:])
    if history:
        dates = _x([day for day, _ in history])
        over_time.stackplot(
            dates,
            *([split.get(n, 0.0) for _, split in history] for n in names),
            colors=COLOURS[: len(names)],
            linewidth=0,
            step="post",
        )
        if len(dates) > 1:
            over_time.set_xlim(dates[0], dates[-1])
        _date_axis(over_time)
    over_time.set_ylim(0, 100)
    over_time.set_title("split used per distributed day %", fontsize=9, loc="left")
    over_time.tick_params(labelsize=_SMALL)
    over_time.legend(
        bars,
        [labels.get(n, n) for n in names],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        frameon=False,
        reverse=True,
    )
    return _png(figure)


def png_markdown(png: bytes | None, alt: str) -> str:
    """Markdown that shows the PNG inline in the Dagster UI (a data URI, no file to serve)."""
    if png is None:
        return f"_{alt}: nothing to draw_"
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
