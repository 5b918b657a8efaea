"""Every resource of the code location, and how the environment selects a deployment.

Environment variables (documented in the README) choose the deployment without editing code:
ALLOCATOR_DATABASE_URL (unset: the embedded SQLite file), ALLOCATOR_POOL_SOURCE (sample |
history | defillama), ALLOCATOR_HISTORY_FILE, DEFILLAMA_BASE_URL, ALLOCATOR_PARAMS_FILE, ALLOCATOR_SOLVER,
ALLOCATOR_BALANCES_SOURCE (paper | ledger | etherscan; etherscan reads ALLOCATOR_POSITIONS_FILE,
ETHERSCAN_API_KEY, ETHERSCAN_BASE_URL and DEFILLAMA_COINS_URL), ALLOCATOR_DRIFT_TOLERANCE_USD/_PCT,
ALLOCATOR_PROFIT_SOURCE, ALLOCATOR_CHART_DAYS, the LLM settings of the profit split and
ALLOCATOR_ALERT_WEBHOOK_URL. A variable that is set is passed as an `EnvVar`, so its value (a database
password, an API key) is read at run time and never shown or stored in run config; an unset one
gives the embedded default, because Dagster fails every run that references an unset EnvVar.
Percentages of the profit split are given as numbers and read as the Decimal of their shortest
decimal form (5.0 -> Decimal('5.0')); money as strings.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
import sqlalchemy as sa
from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from allocator_dagster.alerts import WEBHOOK_ENV, Notifier
from allocator_dagster.daily_allocation import AllocationSettings
from allocator_dagster.money import to_cents, whole_cents
from allocator_dagster.parameters import AllocationParameters, load_parameters_file
from allocator_dagster.pool_ingestion import (
    IngestResult,
    ingest_defillama_day,
    ingest_history_day,
    ingest_sample_day,
    sample_universe,
)
from allocator_dagster.profit_split.daily import metrics_source_from_env
from allocator_dagster.profit_split.governance import (
    MULTISIG_APPROVALS_ENV,
    MULTISIG_THRESHOLD_ENV,
    REVIEWERS_ENV,
    ReviewPolicy,
)
from allocator_dagster.profit_split.llm import LLMConfig, LLMProposer
from allocator_dagster.profit_split.policy import AutoApprovePolicy, RulesProposer
from allocator_dagster.reconciliation import DriftTolerance
from allocator_dagster.solvers import to_backend
from allocator_dagster.sources import POOL_SOURCES
from allocator_dagster.sources.coins import DEFAULT_COINS_URL
from allocator_dagster.sources.defillama import DEFAULT_BASE_URL
from allocator_dagster.sources.etherscan import DEFAULT_BASE_URL as ETHERSCAN_URL
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.lists import seed_lists_if_empty

if TYPE_CHECKING:
    from allocator_dagster.onchain_balances import DayObservation, Observation

LLM_URL_ENV = "ALLOCATOR_LLM_URL"
LLM_MODEL_ENV = "ALLOCATOR_LLM_MODEL"
LLM_API_KEY_ENV = "ALLOCATOR_LLM_API_KEY"
CHART_DAYS_ENV = "ALLOCATOR_CHART_DAYS"
CHART_DAYS = 30  # a range run draws charts for its last 30 days: a month of partition pages
PROFIT_SOURCE_ENV = "ALLOCATOR_PROFIT_SOURCE"
ProfitSource = Literal["realised_yield", "configured"]
PROFIT_SOURCES: tuple[ProfitSource, ...] = ("realised_yield", "configured")


class DatabaseResource(ConfigurableResource):
    """The application database. Empty URL: the embedded SQLite file in the local data folder."""

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL (set from ALLOCATOR_DATABASE_URL); empty for the embedded SQLite file.",
    )

    def engine(self) -> sa.Engine:
        return get_engine(self.database_url or None)


class PoolSourceResource(ConfigurableResource):
    """Pool data in DefiLlama's yields format: the bundled sample, a recording or the live API."""

    source: str = Field(
        default="sample", description="sample | history | defillama (ALLOCATOR_POOL_SOURCE)"
    )
    history_file: str = Field(
        default="",
        description="recording for the history source: CSV, CSV.gz or folder (ALLOCATOR_HISTORY_FILE)",
    )
    defillama_base_url: str = Field(default=DEFAULT_BASE_URL, description="DEFILLAMA_BASE_URL")
    timeout_seconds: float = 30.0
    retries: int = 5
    max_apy_pct: float = Field(
        default=1_000.0, description="an APY part beyond ± this (percent) rejects the record"
    )
    max_tvl_usd: float = Field(default=1e12, description="a TVL above this rejects the record")
    sample_seed: int = 7
    sample_pools: int = 1200

    def ingest(self, engine: sa.Engine, day: dt.date) -> IngestResult:
        if self.source not in POOL_SOURCES:
            raise ValueError(f"pool source must be one of {POOL_SOURCES}, got {self.source!r}")
        if self.source == "sample":
            return ingest_sample_day(
                engine, day, sample_universe(self.sample_seed, self.sample_pools)
            )
        if self.source == "history":
            from allocator_dagster.sources.history import history_file, open_history

            return ingest_history_day(engine, day, open_history(history_file(self.history_file)))
        from allocator_dagster.sources.defillama import DefiLlamaClient
        from allocator_dagster.sources.records import RecordLimits

        client = DefiLlamaClient(
            base_url=self.defillama_base_url,
            timeout=self.timeout_seconds,
            retries=self.retries,
            limits=RecordLimits(max_apy_pct=self.max_apy_pct, max_tvl_usd=self.max_tvl_usd),
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


class OnchainBalancesConfig(dg.Config):
    """The etherscan balances source: the positions file, the two APIs and their limits."""

    positions_file: str = Field(default="", description="positions YAML (ALLOCATOR_POSITIONS_FILE)")
    etherscan_api_key: str = Field(default="", description="ETHERSCAN_API_KEY (never shown)")
    etherscan_base_url: str = Field(
        default=ETHERSCAN_URL, description="Etherscan V2 endpoint (ETHERSCAN_BASE_URL)"
    )
    coins_url: str = Field(default=DEFAULT_COINS_URL, description="DEFILLAMA_COINS_URL")
    calls_per_second: float = Field(default=4.0, gt=0, le=100, description="Etherscan calls/s")
    deadline_seconds: float = Field(default=300.0, gt=0, description="the whole reading's limit")
    max_price_age_seconds: float = Field(default=3600.0, gt=0)
    min_price_confidence: float = Field(default=0.9, ge=0, le=1)

    def observer(self) -> Callable[[Mapping[str, str]], Observation]:
        """Reads and values the treasury now, for the day's pools (id -> chain); one client per
        reading."""
        from allocator_dagster.onchain_balances import observe
        from allocator_dagster.positions import read_positions_file
        from allocator_dagster.sources.coins import CoinsClient
        from allocator_dagster.sources.etherscan import EtherscanClient

        def read(pool_chains: Mapping[str, str]) -> Observation:
            positions = read_positions_file(self.positions_file)
            coins = CoinsClient(
                self.coins_url,
                max_age_seconds=self.max_price_age_seconds,
                min_confidence=Decimal(repr(self.min_price_confidence)),
                deadline_seconds=self.deadline_seconds,
            )
            with EtherscanClient(
                self.etherscan_base_url,
                self.etherscan_api_key,
                calls_per_second=self.calls_per_second,
                deadline_seconds=self.deadline_seconds,
            ) as etherscan:
                return observe(positions, pool_chains, etherscan, coins)

        return read


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
    balances_source: str = Field(
        default="paper",
        description="paper: each day starts from the paper ledger of the day before; ledger: from "
        "the balances imported with `allocator balances import`; etherscan: read on chain "
        "(ALLOCATOR_BALANCES_SOURCE)",
    )
    chart_days: int = Field(
        default=CHART_DAYS,
        ge=0,
        description="PNG charts are drawn for the last N days of a run, the days a person looks "
        "at (ALLOCATOR_CHART_DAYS); every day gets its tables and figures; 0: no charts",
    )
    drift_tolerance_usd: str = Field(
        default="100.00",
        description="a drift of imported balances beyond this many USD warns "
        "(ALLOCATOR_DRIFT_TOLERANCE_USD; empty: not used)",
    )
    drift_tolerance_pct: str = Field(
        default="",
        description="a drift beyond this percentage of the expected capital warns "
        "(ALLOCATOR_DRIFT_TOLERANCE_PCT; empty: not used); with both, the smaller limit applies",
    )
    onchain: OnchainBalancesConfig = Field(default_factory=OnchainBalancesConfig)

    def observe_balances(self, engine: sa.Engine, day: dt.date) -> DayObservation | None:
        """With the etherscan source, the day's observation (stored now, or reused); else None."""
        if self.balances_source != "etherscan":
            return None
        from allocator_dagster.onchain_balances import observe_day

        return observe_day(engine, day, self.onchain.observer())

    def parameters(self) -> AllocationParameters:
        if not self.parameters_file:
            return AllocationParameters()
        params, _lists = load_parameters_file(Path(self.parameters_file))
        return params

    def settings(self) -> AllocationSettings:
        return AllocationSettings(
            parameters=self.parameters(),
            backend=to_backend(self.solver),
            initial_capital_usd=to_cents(self.initial_capital_usd),
            paper_trading=self.paper_trading,
            balances_source=self.balances_source,  # type: ignore[arg-type]  # checked there
            drift_tolerance=self.drift_tolerance(),
        )

    def drift_tolerance(self) -> DriftTolerance:
        return DriftTolerance.parse(self.drift_tolerance_usd, self.drift_tolerance_pct)


def _decimal(value: float | int) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


class ProfitSplitConfig(ConfigurableResource):
    """How proposals are made and approved, and where metrics and profit come from."""

    proposer: Literal["rules", "llm"] = Field(
        default="rules", description="'rules' (deterministic) or 'llm' (falls back to rules)."
    )
    llm_url: str = Field(default="", description=f"Chat-completions URL ({LLM_URL_ENV}).")
    llm_model: str = Field(default="", description=f"Model name ({LLM_MODEL_ENV}).")
    llm_api_key: str = Field(default="", description=f"API key ({LLM_API_KEY_ENV}).")
    llm_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    max_step_pct: float = Field(
        default=5.0, gt=0, le=100, description="Most points any category moves per proposal."
    )
    min_change_pct: float = Field(
        default=0.5, ge=0, description="Smaller largest moves are not worth a rebalance."
    )
    auto_approve: bool = Field(default=False, description="Approve small confident changes.")
    auto_approve_min_confidence: float = Field(default=0.8, ge=0, le=1)
    auto_approve_max_change_pct: float = Field(default=2.0, ge=0, le=100)
    profit_source: ProfitSource = Field(
        default="realised_yield",
        description="realised_yield: what the day's allocation realised and paid out of the "
        "treasury (a day without it waits); configured: default_profit_usd, an explicit opt-in "
        f"for demos that takes nothing out of the treasury ({PROFIT_SOURCE_ENV}).",
    )
    default_profit_usd: str = Field(
        default="1000.00",
        description="The demo profit in USD (a string, exact cents) of profit_source=configured.",
    )
    metrics_source: Literal["sample", "database"] = Field(
        default="sample",
        description="Deterministic sample metrics, or the metrics tables (production: a day "
        "without metrics is not proposed). Default from ALLOCATOR_METRICS_SOURCE.",
    )
    multisig_threshold_pct: str = Field(
        default="",
        description=f"Moves of this many points or more need several approvals "
        f"({MULTISIG_THRESHOLD_ENV}); empty: one approval is enough.",
    )
    multisig_approvals: int = Field(
        default=2,
        ge=1,
        le=20,
        description=f"Distinct approvals above the threshold ({MULTISIG_APPROVALS_ENV}).",
    )
    reviewers: list[str] = Field(
        default_factory=list,
        description=f"Who may review ({REVIEWERS_ENV}, comma-separated); empty: anyone.",
    )
    sample_scenario: Literal["auto", "steady", "rapid_growth", "declining", "treasury_critical"] = (
        Field(default="auto", description="Scenario of the sample metrics ('auto' cycles daily).")
    )

    def rules_proposer(self) -> RulesProposer:
        """The deterministic proposer, also the LLM's fallback."""
        return RulesProposer(
            max_step=_decimal(self.max_step_pct), min_change=_decimal(self.min_change_pct)
        )

    def make_proposer(self) -> RulesProposer | LLMProposer:
        """The configured proposer; the LLM one always has the rules as its fallback."""
        if self.proposer == "rules":
            return self.rules_proposer()
        config = LLMConfig(
            url=self.llm_url,
            model=self.llm_model,
            api_key=self.llm_api_key,
            timeout_seconds=self.llm_timeout_seconds,
        )
        return LLMProposer(config=config, fallback=self.rules_proposer())

    def review_policy(self) -> ReviewPolicy:
        """Who may review and how many approvals a change needs (the same rules as the CLI's)."""
        return ReviewPolicy.from_settings(
            self.multisig_threshold_pct, self.multisig_approvals, self.reviewers
        )

    def auto_approve_policy(self) -> AutoApprovePolicy:
        """The opt-in policy; disabled unless auto_approve is set."""
        return AutoApprovePolicy(
            enabled=self.auto_approve,
            min_confidence=_decimal(self.auto_approve_min_confidence),
            max_change=_decimal(self.auto_approve_max_change_pct),
        )

    def default_profit(self) -> Decimal:
        """The configured profit as exact cents; a malformed amount is an error, not a rounding."""
        try:
            amount = Decimal(self.default_profit_usd.strip())
            whole_cents(amount)
        except (InvalidOperation, ValueError):
            raise ValueError(
                f"default_profit_usd {self.default_profit_usd!r} is not an amount in whole cents"
            ) from None
        if amount < 0:
            raise ValueError("default_profit_usd must not be negative")
        return amount


class AlertNotifierResource(ConfigurableResource):
    """Where alerts go: a Slack-compatible incoming webhook, or only the sensor's log."""

    webhook_url: str = Field(
        default="",
        description=f"Incoming-webhook URL ({WEBHOOK_ENV}; it holds a secret, so set it as an "
        "environment variable); empty: alerts are only logged.",
    )
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5, description="Retries of a failed delivery.")
    backoff_seconds: float = Field(default=0.5, ge=0, le=10)

    def notifier(self, log: Callable[[str], None]) -> Notifier:
        return Notifier(
            self.webhook_url,
            log=log,
            timeout=self.timeout_seconds,
            retries=self.retries,
            backoff_factor=self.backoff_seconds,
        )


def _env(name: str, default: str = "") -> str | EnvVar:
    """An EnvVar when the variable is set, else the embedded default."""
    return EnvVar(name) if os.environ.get(name) else default


def profit_source_from_env() -> ProfitSource:
    """`realised_yield` unless ALLOCATOR_PROFIT_SOURCE says `configured` (demos only)."""
    value = (os.environ.get(PROFIT_SOURCE_ENV) or "realised_yield").strip().lower()
    for source in PROFIT_SOURCES:
        if value == source:
            return source
    raise ValueError(f"{PROFIT_SOURCE_ENV}={value!r} must be one of {list(PROFIT_SOURCES)}")


# the variables that select a source or backend, and what each is when unset
_SELECTOR_DEFAULTS = {
    "ALLOCATOR_POOL_SOURCE": "sample",
    "ALLOCATOR_SOLVER": "convex",
    "ALLOCATOR_BALANCES_SOURCE": "paper",
}


def environment_errors() -> list[str]:
    """Why every run of this environment would fail, found before anything is written (`allocator
    run` refuses to start on them): each selecting variable outside its choices, the parameters
    or history file it names unreadable; one line each, naming the variable. The same checks the
    runs make (the resources' own), only earlier."""
    from allocator_dagster.day_balances import BALANCES_SOURCES
    from allocator_dagster.parameters import ParameterError
    from allocator_dagster.solvers import BACKENDS

    allowed_values = {
        "ALLOCATOR_POOL_SOURCE": POOL_SOURCES,
        "ALLOCATOR_SOLVER": BACKENDS,
        "ALLOCATOR_BALANCES_SOURCE": BALANCES_SOURCES,
    }
    errors: list[str] = []
    for name, allowed in allowed_values.items():
        value = os.environ.get(name) or _SELECTOR_DEFAULTS[name]
        if value not in allowed:
            errors.append(f"{name}={value!r} must be one of {', '.join(allowed)}")
    from allocator_dagster.defs.partitions import configured_schedules_status
    from allocator_dagster.profit_split.governance import ReviewPolicy

    # read when the definitions load (a traceback before any run) or by every run
    for read in (
        metrics_source_from_env,
        profit_source_from_env,
        configured_schedules_status,
        ReviewPolicy.from_env,
    ):
        try:
            read()
        except ValueError as exc:
            errors.append(str(exc))
    for name, default, usd in (
        ("ALLOCATOR_DRIFT_TOLERANCE_USD", "100.00", True),
        ("ALLOCATOR_DRIFT_TOLERANCE_PCT", "", False),
    ):
        value = os.environ.get(name) or default
        try:
            DriftTolerance.parse(value, "") if usd else DriftTolerance.parse("", value)
        except ValueError as exc:
            errors.append(f"{name}={value!r}: {exc}")
    chart_days = os.environ.get(CHART_DAYS_ENV)
    if chart_days and not chart_days.strip().isdigit():
        errors.append(f"{CHART_DAYS_ENV}={chart_days!r} must be a number of days (0: no charts)")
    if os.environ.get("ALLOCATOR_POOL_SOURCE") == "history":
        from allocator_dagster.sources.history import HistoryError, history_file

        try:
            recording = history_file()
        except HistoryError as exc:
            errors.append(str(exc))
        else:
            if not Path(recording).exists():
                errors.append(f"ALLOCATOR_HISTORY_FILE={recording!r}: no such file or folder")
    if params := os.environ.get("ALLOCATOR_PARAMS_FILE"):
        try:
            load_parameters_file(params)
        except ParameterError as exc:  # one line per problem, each naming the variable
            errors += [f"ALLOCATOR_PARAMS_FILE: {line}" for line in str(exc).splitlines()]
    return errors


def default_profit_split_config() -> ProfitSplitConfig:
    """The profit split's resource: defaults, with the LLM, metrics and review settings from
    the environment (the review settings are the same the command line reads)."""
    policy = ReviewPolicy.from_env()
    return ProfitSplitConfig(
        llm_url=_env(LLM_URL_ENV),
        llm_model=_env(LLM_MODEL_ENV),
        llm_api_key=_env(LLM_API_KEY_ENV),
        metrics_source=metrics_source_from_env(),
        profit_source=profit_source_from_env(),
        multisig_threshold_pct="" if policy.threshold_pct is None else str(policy.threshold_pct),
        multisig_approvals=policy.approvals,
        reviewers=sorted(policy.reviewers),
    )


def deployment_resources() -> dict[str, ConfigurableResource]:
    """The resources of both graphs, selected by the environment (read when called)."""
    return {
        "database": DatabaseResource(database_url=_env("ALLOCATOR_DATABASE_URL")),
        "pool_source": PoolSourceResource(
            source=_env("ALLOCATOR_POOL_SOURCE", _SELECTOR_DEFAULTS["ALLOCATOR_POOL_SOURCE"]),
            history_file=_env("ALLOCATOR_HISTORY_FILE"),
            defillama_base_url=_env("DEFILLAMA_BASE_URL", DEFAULT_BASE_URL),
        ),
        "allocation": AllocationResource(
            parameters_file=_env("ALLOCATOR_PARAMS_FILE"),
            solver=_env("ALLOCATOR_SOLVER", _SELECTOR_DEFAULTS["ALLOCATOR_SOLVER"]),
            balances_source=_env(
                "ALLOCATOR_BALANCES_SOURCE", _SELECTOR_DEFAULTS["ALLOCATOR_BALANCES_SOURCE"]
            ),
            chart_days=EnvVar.int(CHART_DAYS_ENV) if os.environ.get(CHART_DAYS_ENV) else CHART_DAYS,
            drift_tolerance_usd=_env("ALLOCATOR_DRIFT_TOLERANCE_USD", "100.00"),
            drift_tolerance_pct=_env("ALLOCATOR_DRIFT_TOLERANCE_PCT"),
            onchain=OnchainBalancesConfig(
                positions_file=_env("ALLOCATOR_POSITIONS_FILE"),
                etherscan_api_key=_env("ETHERSCAN_API_KEY"),
                etherscan_base_url=_env("ETHERSCAN_BASE_URL", ETHERSCAN_URL),
                coins_url=_env("DEFILLAMA_COINS_URL", DEFAULT_COINS_URL),
            ),
        ),
        "profit_split_config": default_profit_split_config(),
        "alert_notifier": AlertNotifierResource(webhook_url=_env(WEBHOOK_ENV)),
    }


@dg.definitions
def resources() -> dg.Definitions:
    """The code location's resources, bound when Dagster loads the definitions."""
    return dg.Definitions(resources=deployment_resources())
