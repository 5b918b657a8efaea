"""Alerts: sensors that tell a person when a run, a check or a day needs them.

Loaded with the rest of `allocator_dagster/defs/`; the notifier resource is in
`allocator_dagster/defs/resources.py`, the messages and their delivery in `alerts.py`.
"""
