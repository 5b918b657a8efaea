"""The one-line reason `allocator run` prints for a failed step."""

from __future__ import annotations

import sys

import requests
from dagster._core.errors import DagsterExecutionStepExecutionError
from dagster._utils.error import serializable_error_info_from_exc_info

from allocator_dagster.cli.run_failures import _message
from allocator_dagster.sources.defillama import DefiLlamaError


def _step_error() -> object:
    """How Dagster records a step whose code raised a clear error `from` a library's error."""
    try:
        try:
            try:
                raise requests.ConnectionError(
                    "_WatchedHTTPPool(host='127.0.0.1', port=9): Max retries exceeded with url: /pools"
                )
            except requests.ConnectionError as exc:
                raise DefiLlamaError(
                    "http://127.0.0.1:9/pools", "connection refused (after 3 attempts)"
                ) from exc
        except DefiLlamaError as exc:
            raise DagsterExecutionStepExecutionError(
                "Error occurred while executing op",
                user_exception=exc,
                step_key="pool_daily_metrics",
                op_name="pool_daily_metrics",
                original_exc_info=sys.exc_info(),
                op_def_name="pool_daily_metrics",
            ) from exc
    except DagsterExecutionStepExecutionError:
        return serializable_error_info_from_exc_info(sys.exc_info())


def test_a_failed_step_shows_the_user_code_error_not_the_library_cause() -> None:
    shown = _message(_step_error())  # type: ignore[arg-type]
    assert "connection refused (after 3 attempts)" in shown
    assert "http://127.0.0.1:9/pools" in shown
    assert "Max retries exceeded" not in shown
    assert "Error occurred while executing op" not in shown


def test_no_error_recorded() -> None:
    assert _message(None) == "no error recorded"


def test_the_class_path_is_left_out() -> None:
    """'step allocation_chain failed: allocator_dagster.day_payouts.DayInputError: no imported
    balances ...' said the exception's module path before the reason."""
    shown = _message(_step_error())  # type: ignore[arg-type]
    assert not shown.startswith("allocator_dagster."), shown
    assert shown.startswith("DefiLlama http://127.0.0.1:9/pools: connection refused"), shown
