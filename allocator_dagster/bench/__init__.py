"""Benchmarks that print tables (never timed tests): `python -m allocator_dagster.bench
solve|backfill|live|solve-cli`.

- solve (`bench.solve`): both backends against a direct HiGHS solve of the same instance.
- backfill (`bench.backfill`): the whole allocation graph, checks included, over a range of days.
- live (`bench.live`): one day of the live path, fetched from a local server speaking the API.
- solve-cli (`bench.solve_cli`): `allocator solve` end to end against a plain scipy script.

Each measurement runs in a process of its own, so that its peak memory is its own.
"""
