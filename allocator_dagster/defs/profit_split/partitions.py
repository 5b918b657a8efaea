"""The profit-split graph's partitions and group (defined here only).

No end_offset: day D's profit is known once D is over, so the last partition is yesterday's
(the allocation graph's set also has today's, which a forced reallocation needs).
"""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

from allocator_dagster.defs.partitions import configured_first_day

PARTITIONS = DailyPartitionsDefinition(start_date=configured_first_day(), timezone="UTC")
GROUP = "profit_split"
