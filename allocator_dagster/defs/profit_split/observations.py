"""After a review, what the UI shows of the reviewed proposals is brought up to date.

A review changes a stored proposal (its status, approvals, dates) and possibly the split it
replaced and the stale proposals it closed. Each of those that is a day's proposal gets an
observation of `profit_split_proposal` for its day's partition, carrying the new state, so the
asset's latest metadata is never a stale status. The review job logs them in its run; the
command line reports them to the Dagster instance in DAGSTER_HOME when there is one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from allocator_dagster.storage import profit_split as store

PROPOSAL_ASSET = dg.AssetKey("profit_split_proposal")
AUTOMATIC_PROPOSERS = ("rules", "llm")


def proposal_observations(
    engine: sa.Engine, changed: Iterable[store.StoredProposal], *, reason: str
) -> list[dg.AssetObservation]:
    """One observation per changed proposal that is a day's proposal (the asset's partitions)."""
    from allocator_dagster.defs.profit_split.assets import proposal_metadata
    from allocator_dagster.defs.profit_split.partitions import PARTITIONS

    keys = set(PARTITIONS.get_partition_keys())
    observations = []
    for proposal in changed:
        key = proposal.proposal_date.isoformat()
        if proposal.proposer not in AUTOMATIC_PROPOSERS or key not in keys:
            continue
        metadata = proposal_metadata(proposal, store.approvals_of(engine, proposal.id))
        metadata["observed_because"] = reason
        observations.append(
            dg.AssetObservation(asset_key=PROPOSAL_ASSET, partition=key, metadata=metadata)
        )
    return observations


def dagster_home() -> Path | None:
    """The instance the UI reads: DAGSTER_HOME, or the quickstart's ./.dagster_home if it exists."""
    configured = os.environ.get("DAGSTER_HOME")
    if configured:
        return Path(configured)
    quickstart = Path.cwd() / ".dagster_home"
    return quickstart if (quickstart / "dagster.yaml").exists() else None


def report_to_instance(observations: list[dg.AssetObservation]) -> str | None:
    """Record the observations in the Dagster instance; returns where, or None if there is none."""
    home = dagster_home()
    if not observations or home is None:
        return None
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home.resolve())
    try:
        with dg.DagsterInstance.get() as instance:
            for observation in observations:
                instance.report_runless_asset_event(observation)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
    return str(home)
