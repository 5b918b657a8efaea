"""Configuration of the profit-split graph, as one Dagster resource.

The LLM endpoint, model and key come from the environment through `dagster.EnvVar`, so the key
is never part of the run config the UI shows or stores. Percentages are given as numbers and
read as the Decimal of their shortest decimal form (5.0 -> Decimal('5.0')); money as strings.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from typing import Literal

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from allocator_dagster.money import whole_cents
from allocator_dagster.profit_split.daily import metrics_source_from_env
from allocator_dagster.profit_split.governance import (
    MULTISIG_APPROVALS_ENV,
    MULTISIG_THRESHOLD_ENV,
    REVIEWERS_ENV,
    ReviewPolicy,
)
from allocator_dagster.profit_split.llm import LLMConfig, LLMProposer
from allocator_dagster.profit_split.policy import AutoApprovePolicy, RulesProposer

LLM_URL_ENV = "ALLOCATOR_LLM_URL"
LLM_MODEL_ENV = "ALLOCATOR_LLM_MODEL"
LLM_API_KEY_ENV = "ALLOCATOR_LLM_API_KEY"


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
    profit_source: Literal["realised_yield", "configured"] = Field(
        default="realised_yield",
        description="The allocation graph's realised yield of the day, or default_profit_usd.",
    )
    default_profit_usd: str = Field(
        default="1000.00",
        description="Profit in USD (a string, exact cents) when there is no realised yield.",
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


def _env(name: str) -> str | EnvVar:
    """EnvVar when the variable is set; otherwise empty, because Dagster fails every run that
    references an unset EnvVar, and the rules proposer needs none of them."""
    return EnvVar(name) if os.environ.get(name) else ""


def default_profit_split_config() -> ProfitSplitConfig:
    """The resource of the Definitions: defaults, with the LLM settings from the environment."""
    policy = ReviewPolicy.from_env()
    return ProfitSplitConfig(
        llm_url=_env(LLM_URL_ENV),
        llm_model=_env(LLM_MODEL_ENV),
        llm_api_key=_env(LLM_API_KEY_ENV),
        metrics_source=metrics_source_from_env(),
        multisig_threshold_pct="" if policy.threshold_pct is None else str(policy.threshold_pct),
        multisig_approvals=policy.approvals,
        reviewers=sorted(os.environ.get(REVIEWERS_ENV, "").split(",")) if policy.reviewers else [],
    )
