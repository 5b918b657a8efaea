"""`python -m allocator_dagster.forecast evaluate|tune`: the tables of docs/forecast.md."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

from allocator_dagster.forecast.evaluation import (
    HistorySource,
    evaluate_forecast,
    format_table,
    tune_rules,
)


def main(argv: list[str] | None = None) -> int:
    """`python -m allocator_dagster.forecast evaluate|tune`: the tables of docs/forecast.md."""
    parser = argparse.ArgumentParser(prog="python -m allocator_dagster.forecast")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="forecast error per pool-day against the baselines")
    tu = sub.add_parser("tune", help="the best rule of the grid per series on a period")
    for p in (ev, tu):
        p.add_argument("--history", default=None, help="a recording (CSV, CSV.gz or folder)")
        p.add_argument("--start", type=date.fromisoformat, default=None)
        p.add_argument("--end", type=date.fromisoformat, default=None)
        p.add_argument("--days", type=int, default=120, help="days before --end (no --start)")
        p.add_argument("--seed", type=int, default=7, help="sample seed (no --history)")
        p.add_argument("--n-pools", type=int, default=1200, help="sample size (no --history)")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    if args.history:
        from allocator_dagster.sources.history import HistoryError, open_history

        try:
            history = open_history(args.history)
        except HistoryError as exc:
            parser.exit(2, f"error: {exc}\n")
        source: HistorySource = history
        label = f"the recording {args.history}"
        end = args.end or history.end
    else:
        from allocator_dagster.sources.sample import SampleUniverse

        source = SampleUniverse(seed=args.seed, n_pools=args.n_pools)
        label = f"the sample (seed {args.seed}, {args.n_pools} pools)"
        end = args.end or date.today() - timedelta(days=1)
    start = args.start or end - timedelta(days=args.days - 1)
    if end < start:
        parser.error(f"--end {end} is before --start {start}")
    if start <= source.start:
        parser.error(f"{label} starts on {source.start}; evaluate days after it")
    if args.command == "tune":
        for series, rule in tune_rules(source, start, end).items():
            print(f"{series}: {rule}")
        return 0
    table = evaluate_forecast(source, start, end)
    print(f"One-day-ahead forecast error per pool-day on {label}, {start} .. {end}:")
    print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
