"""The allocation graph: assets, checks, the daily job and schedule, the list-change sensor.

Loaded with the rest of `allocator_dagster/defs/` by `allocator_dagster.definitions`; its
resources are in `allocator_dagster/defs/resources.py`.
"""
