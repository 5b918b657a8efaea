"""The Dagster shell: every module under this folder is loaded by `dg.load_from_defs_folder`.

One folder per domain (`allocation/`, `profit_split/`), each with its assets, checks, jobs,
schedules, sensors and one `partitions` module (partitions, tags, pools); the resources of both
are in `resources.py`, the calendar they share in `partitions.py`.
"""

import warnings

from dagster import BetaWarning, PreviewWarning

# Backfill policies, pools and blocking or partitioned checks are beta/preview in Dagster 1.13;
# the shell relies on them knowingly.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
