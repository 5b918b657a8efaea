"""Configuration of the allocation graph: where pool data comes from and how a day is solved."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field

from allocator_dagster.daily_allocation import AllocationSettings
from allocator_dagster.money import to_cents
from allocator_dagster.parameters import AllocationParameters, load_parameters_file
from allocator_dagster.pool_ingestion import (
    POOL_SOURCES,
    IngestResult,
    ingest_defillama_day,
    ingest_sample_day,
    sample_universe,
)
from allocator_dagster.storage.lists import seed_lists_if_empty

DEFAULT_DEFILLAMA_URL = "https://yields.llama.fi"


class PoolSourceResource(ConfigurableResource):
    """Pool data in DefiLlama's yields format: the bundled sample or the live API."""

    source: str = Field(default="sample", description="sample | defillama (ALLOCATOR_POOL_SOURCE)")
    defillama_base_url: str = Field(default=DEFAULT_DEFILLAMA_URL, description="DEFILLAMA_BASE_URL")
    timeout_seconds: float = 30.0
    retries: int = 5
    sample_seed: int = 7
    sample_pools: int = 1200

    def ingest(self, engine: sa.Engine, day: dt.date) -> IngestResult:
        if self.source not in POOL_SOURCES:
            raise ValueError(f"pool source must be one of {POOL_SOURCES}, got {self.source!r}")
        if self.source == "sample":
            return ingest_sample_day(
                engine, day, sample_universe(self.sample_seed, self.sample_pools)
            )
        from allocator_dagster.sources.defillama import DefiLlamaClient

        client = DefiLlamaClient(
            base_url=self.defillama_base_url, timeout=self.timeout_seconds, retries=self.retries
        )
        return ingest_defillama_day(engine, day, client.pools)

    def seed_lists(self, engine: sa.Engine) -> bool:
        """In sample mode, start with the sample's default lists when the list tables are empty."""
        if self.source != "sample":
            return False
        lists = sample_universe(self.sample_seed, self.sample_pools).default_lists()
        return seed_lists_if_empty(
            engine, lists, by="sample-seed", reason="initial lists of the sample deployment"
        )


class AllocationResource(ConfigurableResource):
    """Parameters and solver of the daily allocation (MODEL.md)."""

    parameters_file: str = Field(
        default="",
        description="PARAMS.yaml with MODEL.md's parameters (ALLOCATOR_PARAMS_FILE); empty: defaults",
    )
    solver: str = Field(default="convex", description="convex | milp (ALLOCATOR_SOLVER)")
    initial_capital_usd: float = 10_000_000.0
    paper_trading: bool = Field(
        default=True,
        description="roll the ledger forward from each day's allocation (sample deployment)",
    )

    def parameters(self) -> AllocationParameters:
        if not self.parameters_file:
            return AllocationParameters()
        params, _lists = load_parameters_file(Path(self.parameters_file))
        return params

    def settings(self) -> AllocationSettings:
        return AllocationSettings(
            parameters=self.parameters(),
            backend=self.solver,
            initial_capital_usd=to_cents(self.initial_capital_usd),
            paper_trading=self.paper_trading,
        )
