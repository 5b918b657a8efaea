"""What a run did to the days it covered, read from its event log: `allocator run`'s footer.

Re-running stored days used to print only "succeeded": the operator could not tell whether the
days were reproduced identically, replaced or left as they were. The allocation chain records
on each day's `asset_allocations` materialisation what it did to the stored day (`stored_day`:
`DayOutcome.stored_day`), and the profit split on each `profit_split_proposal` whether the day
was decided before (`reused`); this module counts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

# the asset whose per-day metadata says what happened to each day, and the entry that says it
DAY_RECORD = {
    "allocation": ("asset_allocations", "stored_day"),
    "profit_split": ("profit_split_proposal", "reused"),
}


def recorded_days(
    instance: DagsterInstance, run_ids: Iterable[str], graph: str
) -> dict[str, dict[str, object]]:
    """Day -> the metadata its materialisation recorded (`DAY_RECORD`'s asset), over the runs;
    a day of a run that failed before materialising it is not there."""
    from dagster import AssetKey, DagsterEventType

    asset = AssetKey(DAY_RECORD[graph][0])
    found: dict[str, dict[str, object]] = {}
    for run_id in run_ids:
        records = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
        )
        for record in records.records:
            materialization = record.event_log_entry.asset_materialization
            if materialization is None or materialization.asset_key != asset:
                continue
            if materialization.partition:
                found[materialization.partition] = {
                    name: value.value for name, value in materialization.metadata.items()
                }
    return found


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def allocation_summary(
    days: Mapping[str, Mapping[str, object]], *, fresh: bool, accepted: bool
) -> str:
    """'30 days: 30 reproduced from their snapshots, identical', or the mix of what was done."""
    recorded = {day: meta for day, meta in days.items() if "stored_day" in meta}
    counts = Counter(str(meta["stored_day"]) for meta in recorded.values())
    parts = []
    if counts["new"]:
        parts.append(f"{counts['new']} stored for the first time")
    if n := counts["identical"]:
        parts.append(
            f"{n} reproduced from {'its snapshot' if n == 1 else 'their snapshots'}, identical"
        )
    if n := counts["replaced"]:
        same = sum(
            meta["stored_day"] == "replaced" and meta.get("hash_matched") is True
            for meta in recorded.values()
        )
        why = (
            " by fresh snapshots" if fresh else " by the recomputation accepted" if accepted else ""
        )
        result = "the same result" if n == 1 else "the same results"
        differ = "a different result" if n == 1 else "different results"
        outcome = result if same == n else differ if same == 0 else f"{same} with the same result"
        parts.append(f"{n} replaced{why} ({outcome})")
    if n := counts["kept"]:
        stored_days = "the stored day is" if n == 1 else "the stored days are"
        parts.append(
            f"{n} not reproduced: {stored_days} kept (the failed checks say why; "
            "--accept-recomputation replaces them)"
        )
    return f"{_days(len(recorded))}: " + ", ".join(parts) if parts else ""


def profit_split_summary(days: Mapping[str, Mapping[str, object]]) -> str:
    """'3 days: 1 decided now, 2 decided before (kept as they were)'."""
    reused = [bool(meta["reused"]) for meta in days.values() if "reused" in meta]
    before = sum(reused)
    parts = []
    if now := len(reused) - before:
        parts.append(f"{now} decided now")
    if before:
        parts.append(
            f"{before} decided before (kept as {'it was' if before == 1 else 'they were'})"
        )
    return f"{_days(len(reused))}: " + ", ".join(parts) if parts else ""


def days_done(
    instance: DagsterInstance, graph: str, run_ids: Iterable[str], *, fresh: bool, accepted: bool
) -> str:
    """The footer line of one graph's runs ("3 days: 3 reproduced from their snapshots,
    identical"); empty when they recorded nothing (a run that failed before its days)."""
    days = recorded_days(instance, run_ids, graph)
    if graph == "allocation":
        return allocation_summary(days, fresh=fresh, accepted=accepted)
    return profit_split_summary(days)
