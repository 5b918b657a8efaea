"""The report of one day's allocation and its result hash (`allocation_report`)."""

from __future__ import annotations

import json

from allocator_dagster.allocation_report import RESULT_FIELDS, stored_result_hash
from allocator_dagster.rebalance import decide
from allocator_dagster_tests.support.instances import default_lists_for, idle
from allocator_dagster_tests.test_rebalance import base_params, universe


def test_a_stored_report_rehashes_to_its_result_hash():
    u = universe()
    report = decide(u, idle(1_000_000), base_params(), default_lists_for(u), "convex")
    assert tuple(report.result_payload()) == RESULT_FIELDS
    stored = json.loads(json.dumps(report.as_dict(), default=str))  # as the JSON column keeps it
    assert stored_result_hash(stored) == report.result_hash
    stored["allocations"][0]["amount_usd"] = "1.00"
    assert stored_result_hash(stored) != report.result_hash
