"""The allocation job as `dg list defs` and the UI describe it."""

from __future__ import annotations

from allocator_dagster.definitions import build_definitions


def test_the_job_description_is_its_whole_chain_in_order() -> None:
    """It stopped at asset_allocations and left out rebalance_plan, the orders an operator
    executes."""
    job = build_definitions().resolve_job_def("daily_allocation_job")
    graph = job.asset_layer.asset_graph
    in_order = [key for level in graph.toposorted_asset_keys_by_level for key in level]
    chain = [k.to_user_string() for k in in_order if graph.get(k).group_name == "allocation"]
    assert job.description == " -> ".join(chain)
