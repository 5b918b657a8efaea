"""The profit-split graph: metrics -> proposal -> distribution, the review job and the schedule.

Loaded with the rest of `allocator_dagster/defs/` by `allocator_dagster.definitions`; its
resources are in `allocator_dagster/defs/resources.py`.
"""
