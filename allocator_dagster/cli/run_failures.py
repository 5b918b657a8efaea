"""Why a run of `allocator run` failed, in a few lines read from the run's event log.

Dagster's console log of a failed run is its events with their stack traces, and names a failed
blocking check but not what it found. The user is told instead, from the instance's event log:
each failed blocking check with its own findings (its description and text metadata, e.g. a
day's stored and recomputed hashes), each failed step's error message, and the run's failure
when no step failed. The full log stays in the UI and `dagster run list`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from allocator_dagster.terminal import shown

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._utils.error import SerializableErrorInfo

# the run tags that say which days a run covers (one partition, or a range in one run)
_PARTITION = "dagster/partition"
_RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def _days(tags: dict[str, str], partition: str | None) -> str:
    """The check's partition, else the run's day or range of days."""
    if partition:
        return partition
    if _PARTITION in tags:
        return tags[_PARTITION]
    start, end = (tags.get(tag) for tag in _RANGE)
    if start and end:
        return start if start == end else f"{start}..{end}"
    return "all days of the run"


def _findings(description: str | None, metadata: dict) -> list[str]:
    """What a check recorded in words: its description and its text/markdown metadata lines."""
    from dagster import MarkdownMetadataValue, TextMetadataValue

    texts: list[str | None] = [description]
    for value in metadata.values():
        if isinstance(value, MarkdownMetadataValue):
            texts.append(value.md_str)
        elif isinstance(value, TextMetadataValue):
            texts.append(value.text)
    found = []
    for text in texts:
        for line in (text or "").splitlines():
            line = line.strip().removeprefix("- ").strip()
            if line and line != "none":
                found.append(line)
    return found


def _message(error: SerializableErrorInfo | None) -> str:
    """An error's message without its stack or class path, on one line: the user code's own
    error, the first in the chain that is not one of Dagster's wrappers. Not the innermost
    cause: a clear error
    raised `from` a library's (DefiLlamaError from requests' ConnectionError) says what failed
    where; its cause is the library's repr."""
    if error is None:
        return "no error recorded"
    while error.cls_name and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    text = " ".join(line.strip() for line in error.message.strip().splitlines() if line.strip())
    # the message starts with the exception's dotted class path: noise to an operator
    head, colon, rest = text.partition(": ")
    if colon and error.cls_name and head.rsplit(".", 1)[-1] == error.cls_name:
        return rest
    return text


def run_failure_lines(instance: DagsterInstance, run_id: str) -> list[str]:
    """One line per failed blocking check finding and per failed step of the run (the run's
    own failure when no step failed); the text from outside the program is escaped."""
    from dagster import DagsterEventType
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluation,
    )
    from dagster._core.events import JobFailureData
    from dagster._core.execution.plan.objects import StepFailureData

    run = instance.get_run_by_id(run_id)
    tags = dict(run.tags) if run else {}
    lines = []
    checks = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    for record in checks.records:
        event = record.event_log_entry.dagster_event
        evaluation = event.event_specific_data if event else None
        if not isinstance(evaluation, AssetCheckEvaluation):
            continue
        if evaluation.passed or not evaluation.blocking:
            continue
        name = f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}"
        days = _days(tags, evaluation.partition)
        findings = _findings(evaluation.description, dict(evaluation.metadata))
        for finding in findings or ["(no findings recorded)"]:
            lines.append(f"check {shown(name)} failed ({shown(days)}): {shown(finding)}")
    steps = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE)
    for record in steps.records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data if event else None
        if not isinstance(data, StepFailureData):
            continue
        user = data.user_failure_data
        why = user.description if user and user.description else _message(data.error)
        lines.append(f"step {shown(event.step_key if event else '?')} failed: {shown(why)}")
    if not steps.records:
        runs = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE)
        for record in runs.records:
            event = record.event_log_entry.dagster_event
            data = event.event_specific_data if event else None
            error = data.error if isinstance(data, JobFailureData) else None
            why = _message(error) if error else (record.event_log_entry.user_message or "")
            lines.append(f"run failed: {shown(why or 'no reason recorded')}")
    return lines
