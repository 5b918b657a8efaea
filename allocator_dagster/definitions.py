"""The code location: both asset graphs and the resources that select a deployment.

Environment variables (documented in the README) choose the deployment without editing code:
ALLOCATOR_DATABASE_URL (unset: the embedded SQLite file), ALLOCATOR_POOL_SOURCE (sample |
history | defillama), ALLOCATOR_HISTORY_FILE, DEFILLAMA_BASE_URL, ALLOCATOR_PARAMS_FILE, ALLOCATOR_SOLVER. They are passed as
`EnvVar`s so their values (a database password, say) are read at run time and never shown.
"""

from __future__ import annotations

import os
import warnings

from dagster import BetaWarning, Definitions, EnvVar, PreviewWarning

from allocator_dagster.defs import allocation
from allocator_dagster.defs.allocation.resources import AllocationResource, PoolSourceResource
from allocator_dagster.defs.resources import DatabaseResource

# backfill policies and blocking checks are beta/preview in Dagster 1.13; we rely on them knowingly
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)


def _env(name: str, default: str):
    """An EnvVar when the variable is set, else the embedded default."""
    return EnvVar(name) if os.environ.get(name) else default


def resources() -> dict[str, object]:
    return {
        "database": DatabaseResource(database_url=_env("ALLOCATOR_DATABASE_URL", "")),
        "pool_source": PoolSourceResource(
            source=_env("ALLOCATOR_POOL_SOURCE", "sample"),
            history_file=_env("ALLOCATOR_HISTORY_FILE", ""),
            defillama_base_url=_env("DEFILLAMA_BASE_URL", "https://yields.llama.fi"),
        ),
        "allocation": AllocationResource(
            parameters_file=_env("ALLOCATOR_PARAMS_FILE", ""),
            solver=_env("ALLOCATOR_SOLVER", "convex"),
        ),
    }


def _domains() -> list[Definitions]:
    domains = [allocation.defs]
    try:
        from allocator_dagster.defs import profit_split
    except ImportError:  # pragma: no cover - the profit-split graph is optional while it is built
        return domains
    domains.append(profit_split.defs)
    return domains


def build_definitions() -> Definitions:
    """All domains' definitions; the deployment's resources here win over any domain default."""
    domains = _domains()
    domain_resources: dict[str, object] = {}
    for domain in domains:
        domain_resources.update(domain.resources or {})
    return Definitions(
        assets=[a for d in domains for a in (d.assets or [])],
        asset_checks=[c for d in domains for c in (d.asset_checks or [])],
        jobs=[j for d in domains for j in (d.jobs or [])],
        schedules=[s for d in domains for s in (d.schedules or [])],
        sensors=[s for d in domains for s in (d.sensors or [])],
        resources={**domain_resources, **resources()},
    )


defs = build_definitions()
