"""Platform metrics of one day, and deterministic sample data for the embedded default.

The sample generator draws from a generator seeded by (day, scenario), so a day's sample is the
same on every machine and every run; `scenario` produces the situations of the design (rapid
growth, declining activity, a critically low DAO treasury) or a steady day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from allocator_dagster.money import to_cents
from allocator_dagster.profit_split.split import SEED_SPLIT, Split, to_decimal

Scenario = Literal["auto", "steady", "rapid_growth", "declining", "treasury_critical"]
SCENARIOS: tuple[str, ...] = ("steady", "rapid_growth", "declining", "treasury_critical")


@dataclass(frozen=True)
class EngagementMetrics:
    wallet_connections: int
    trades: int
    page_views: int
    engagement_score: Decimal  # 0-100


@dataclass(frozen=True)
class TokenPerformance:
    price_usd: Decimal
    price_trend_pct_7d: Decimal
    volume_usd: Decimal
    holders: int
    holder_growth_pct_7d: Decimal


@dataclass(frozen=True)
class DaoTreasury:
    balance_usd: Decimal
    monthly_burn_usd: Decimal


@dataclass(frozen=True)
class CommunityGrowth:
    members: int
    new_members_7d: int
    growth_pct_7d: Decimal


_SECTIONS = {
    "engagement": EngagementMetrics,
    "token": TokenPerformance,
    "treasury": DaoTreasury,
    "community": CommunityGrowth,
}


@dataclass(frozen=True)
class PlatformMetrics:
    """Everything a proposer sees for one day, including the split in force when it was read."""

    metric_date: date
    engagement: EngagementMetrics
    token: TokenPerformance
    treasury: DaoTreasury
    community: CommunityGrowth
    current_split: Split
    current_proposal_id: str | None = None  # the id of the split in force
    source: str = "sample"
    scenario: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, numbers as exact strings: this is what is stored as a proposal's input."""

        def section(obj: object) -> dict[str, Any]:
            return {
                name: (str(value) if isinstance(value, Decimal) else value)
                for name, value in vars(obj).items()
            }

        return {
            "metric_date": self.metric_date.isoformat(),
            "source": self.source,
            "scenario": self.scenario,
            **{name: section(getattr(self, name)) for name in _SECTIONS},
            "current_split": self.current_split.to_json(),
            "current_proposal_id": self.current_proposal_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlatformMetrics:
        """The inverse of `to_json`, for re-proposing from stored inputs."""
        sections: dict[str, Any] = {}
        for name, kind in _SECTIONS.items():
            values = {}
            for field_name, annotation in kind.__annotations__.items():
                raw = data[name][field_name]
                values[field_name] = int(raw) if annotation == "int" else to_decimal(raw)
            sections[name] = kind(**values)
        return cls(
            metric_date=date.fromisoformat(data["metric_date"]),
            current_split=Split.from_mapping(data["current_split"]),
            current_proposal_id=(
                None
                if data.get("current_proposal_id") is None
                else str(data["current_proposal_id"])
            ),
            source=data.get("source", "sample"),
            scenario=data.get("scenario"),
            **sections,
        )

    def with_current_split(self, split: Split, proposal_id: str | None) -> PlatformMetrics:
        return PlatformMetrics(
            metric_date=self.metric_date,
            engagement=self.engagement,
            token=self.token,
            treasury=self.treasury,
            community=self.community,
            current_split=split,
            current_proposal_id=proposal_id,
            source=self.source,
            scenario=self.scenario,
        )


def scenario_for_day(day: date) -> str:
    """The 'auto' scenario: cycles through the four by day, so the sample exercises each."""
    return SCENARIOS[day.toordinal() % len(SCENARIOS)]


def _tenths(rng: random.Random, low: float, high: float) -> Decimal:
    """A value with one decimal drawn from integers, so it is exact and platform-independent."""
    return Decimal(rng.randint(round(low * 10), round(high * 10))) / 10


# (engagement score, community growth %, holder growth %, price trend %) ranges per scenario; the
# steady ranges keep the growth signal strictly inside the rules' +/-0.20 band.
_ACTIVITY = {
    "steady": ((45, 58), (-1, 2), (-1, 2), (-4, 4)),
    "rapid_growth": ((78, 95), (10, 25), (8, 20), (10, 40)),
    "declining": ((10, 28), (-12, -4), (-10, -3), (-35, -12)),
    "treasury_critical": ((45, 58), (-1, 2), (-1, 2), (-4, 4)),
}


def sample_metrics(
    day: date,
    scenario: Scenario | str = "auto",
    current_split: Split = SEED_SPLIT,
    current_proposal_id: str | None = None,
) -> PlatformMetrics:
    """Deterministic sample metrics for `day` in `scenario` ('auto' picks one per day)."""
    chosen = scenario_for_day(day) if scenario == "auto" else scenario
    if chosen not in _ACTIVITY:
        raise ValueError(f"unknown scenario {scenario!r}; use 'auto' or one of {SCENARIOS}")
    rng = random.Random(f"profit-split-sample:{day.isoformat()}:{chosen}")
    score_r, community_r, holders_r, price_r = _ACTIVITY[chosen]
    score = _tenths(rng, *score_r)
    scale = {"rapid_growth": 3, "declining": 1}.get(chosen, 2)
    wallets = rng.randint(800, 1200) * scale
    members = rng.randint(18_000, 22_000)
    community_growth = _tenths(rng, *community_r)
    holders = rng.randint(9_000, 11_000)
    burn = Decimal(rng.randint(80, 120) * 1000)
    if chosen == "treasury_critical":
        balance = Decimal(rng.randint(10, 28)) * burn / 10  # 1.0 to 2.8 months of runway
    else:
        balance = Decimal(rng.randint(120, 300)) * burn / 10  # 12 to 30 months
    return PlatformMetrics(
        metric_date=day,
        engagement=EngagementMetrics(
            wallet_connections=wallets,
            trades=wallets * rng.randint(2, 5),
            page_views=wallets * rng.randint(8, 15),
            engagement_score=score,
        ),
        token=TokenPerformance(
            price_usd=Decimal(rng.randint(50, 500)) / 100,
            price_trend_pct_7d=_tenths(rng, *price_r),
            volume_usd=Decimal(rng.randint(100, 900) * 1000 * scale),
            holders=holders,
            holder_growth_pct_7d=_tenths(rng, *holders_r),
        ),
        treasury=DaoTreasury(balance_usd=to_cents(balance), monthly_burn_usd=burn),
        community=CommunityGrowth(
            members=members,
            new_members_7d=max(0, int(members * community_growth / 100)),
            growth_pct_7d=community_growth,
        ),
        current_split=current_split,
        current_proposal_id=current_proposal_id,
        source="sample",
        scenario=chosen,
    )
