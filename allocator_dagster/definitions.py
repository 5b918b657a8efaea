"""The code location: everything under `allocator_dagster/defs/`, loaded the `dg` way.

`dg dev`, `dg check defs`, `dagster dev -m allocator_dagster.definitions` and `workspace.yaml`
all load `defs`; code that needs the Definitions object itself (the `allocator run` command,
tests) calls `build_definitions()`. Environment variables pick the deployment's resources
(`allocator_dagster/defs/resources.py`) when the definitions are built.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


def build_definitions() -> dg.Definitions:
    """Both graphs, their checks, jobs, schedules, sensors and resources."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
