"""A Dagster backfill of a named job, executed by this process: what `allocator run` launches.

The backfill is a real one on the instance (`instance.add_backfill`), so the UI's Backfills tab
lists it and links its runs. Its runs are then created and submitted by the backfill daemon's
own iteration (`execute_job_backfill_iteration`): the job's backfill policy decides the runs (the
allocation's single-run policy makes a range ONE run, days in date order; the profit split one
run per day), with the daemon's tags and run names. Only where a run goes differs from a
deployment: this process's instance submits straight to a launcher that executes each run here,
synchronously and in process, so the command waits for its backfill and needs no daemon.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.api import execute_run
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.execution.job_backfill import execute_job_backfill_iteration
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData
from dagster._time import get_current_timestamp
from dagster._utils.hosted_user_process import recon_job_from_origin

LOCATION = "allocator_dagster"  # the code location's name in workspace.yaml and [tool.dg.project]
MODULE = "allocator_dagster.definitions"
# this process runs each submitted run itself; the instance's dagster.yaml is otherwise as it is
IN_PROCESS = {
    "run_coordinator": {
        "module": "dagster._core.run_coordinator",
        "class": "DefaultRunCoordinator",
    },
    "run_launcher": {"module": __name__, "class": "InProcessRunLauncher"},
}
# the runs' steps in this process too (as `materialize` did); the console logger prints only
# CRITICAL events: a failed run's events carry stack traces, so `allocator run` says why a run
# failed from its event log instead (cli/run_failures.py); the full log is the UI's
RUN_CONFIG: dict[str, Any] = {
    "execution": {"config": {"in_process": {}}},
    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
}


class InProcessRunLauncher(RunLauncher, ConfigurableClass):
    """Executes a launched run synchronously in this process (the `allocator run` instance only;
    a deployment's dagster.yaml keeps its own launcher)."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> InProcessRunLauncher:
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        job = recon_job_from_origin(context.job_code_origin)  # type: ignore[arg-type]
        execute_run(job, context.dagster_run, self._instance)

    def terminate(self, run_id: str) -> bool:
        return False  # the run is this process: interrupting the command stops it


def in_process_instance(home: Path) -> DagsterInstance:
    """The instance in `home`, with runs submitted straight to this process."""
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=IN_PROCESS))


@contextmanager
def code_location(instance: DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The code location loaded in this process, under the name the UI knows it by."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=MODULE, attribute="defs", working_directory=os.getcwd()),
        location_name=LOCATION,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget([origin])) as context:
        yield context


@dataclass(frozen=True)
class BackfillOutcome:
    """What one backfill did: its id, status and runs (oldest first)."""

    backfill_id: str
    status: BulkActionStatus
    run_ids: list[str]
    failed_runs: list[str]

    @property
    def succeeded(self) -> bool:
        return self.status == BulkActionStatus.COMPLETED_SUCCESS and not self.failed_runs


def run_backfill(
    workspace: WorkspaceProcessContext,
    job_name: str,
    days: list[dt.date],
    *,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    title: str,
) -> BackfillOutcome:
    """Add a backfill of `job_name` over `days` and execute it here until it is done."""
    instance = workspace.instance
    location = workspace.create_request_context().get_code_location(LOCATION)
    [repository] = location.get_repositories().values()
    [partition_set] = [p for p in repository.get_partition_sets() if p.job_name == job_name]
    backfill = PartitionBackfill(
        backfill_id=make_new_backfill_id(),
        partition_set_origin=partition_set.get_remote_origin(),
        status=BulkActionStatus.REQUESTED,
        partition_names=[day.isoformat() for day in days],
        from_failure=False,
        reexecution_steps=None,
        tags=dict(tags),
        backfill_timestamp=get_current_timestamp(),
        run_config={**RUN_CONFIG, **run_config},
        title=title,
    )
    instance.add_backfill(backfill)
    error = execute_job_backfill_iteration(
        backfill, logging.getLogger(__name__), workspace, None, instance
    )
    if error is not None:  # the daemon's iteration reports, rather than raises, its errors
        fail_backfill(instance, backfill.backfill_id, error.message)
    runs = list(reversed(instance.get_runs(RunsFilter(tags=backfill_tags(backfill.backfill_id)))))
    stored = instance.get_backfill(backfill.backfill_id)
    return BackfillOutcome(
        backfill_id=backfill.backfill_id,
        status=stored.status if stored else BulkActionStatus.FAILED,
        run_ids=[run.run_id for run in runs],
        failed_runs=[run.run_id for run in runs if run.status != DagsterRunStatus.SUCCESS],
    )


def backfill_tags(backfill_id: str) -> dict[str, str]:
    """The tags Dagster gives every run of a backfill (how the UI links them to it)."""
    return dict(DagsterRun.tags_for_backfill_id(backfill_id))


def fail_backfill(instance: DagsterInstance, backfill_id: str, reason: str) -> None:
    """Mark a backfill that can no longer finish as failed, so no daemon resumes it later."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None or backfill.status != BulkActionStatus.REQUESTED:
        return
    instance.update_backfill(
        backfill.with_status(BulkActionStatus.FAILED).with_end_timestamp(get_current_timestamp())
    )
    logging.getLogger(__name__).info(f"backfill {backfill_id} failed: {reason}")
