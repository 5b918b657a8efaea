"""The rules proposer (the design's three scenarios, bounds, step), the split type and auto-approval."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from allocator_dagster.profit_split.metrics import (
    SCENARIOS,
    DaoTreasury,
    PlatformMetrics,
    sample_metrics,
    scenario_for_day,
)
from allocator_dagster.profit_split.policy import (
    DEFAULT_BOUNDS,
    AutoApprovePolicy,
    CategoryBounds,
    Proposal,
    RulesProposer,
    read_signals,
)
from allocator_dagster.profit_split.split import CATEGORIES, SEED_SPLIT, Split
from allocator_dagster.profit_split.validation import validate_proposal

D = Decimal
DAYS = [date(2025, 1, 1) + timedelta(days=7 * i) for i in range(20)]


def _assert_valid_move(proposal: Proposal, current: Split, step: Decimal) -> None:
    result = validate_proposal(proposal, current=current)
    assert result.ok, result.errors
    assert proposal.split.total == 100
    assert proposal.split.max_change_from(current) <= step


@pytest.mark.parametrize("day", DAYS)
def test_rapid_growth_raises_lucky_and_creator_and_lowers_reinvestment(day: date) -> None:
    metrics = sample_metrics(day, "rapid_growth")
    proposal = RulesProposer().propose(metrics)
    change = proposal.split.changes_from(SEED_SPLIT)
    assert proposal.should_rebalance
    assert change["lucky"] > 0 and change["creator"] > 0
    assert change["reinvestment"] < 0
    assert change["dao"] == 0  # the treasury is healthy: DAO is left alone
    _assert_valid_move(proposal, SEED_SPLIT, D(5))
    assert "rapid growth" in proposal.reasoning
    assert "engagement score" in proposal.reasoning
    assert f"{metrics.engagement.engagement_score}" in proposal.reasoning


@pytest.mark.parametrize("day", DAYS)
def test_declining_activity_raises_reinvestment(day: date) -> None:
    metrics = sample_metrics(day, "declining")
    proposal = RulesProposer().propose(metrics)
    change = proposal.split.changes_from(SEED_SPLIT)
    assert proposal.should_rebalance
    assert change["reinvestment"] > 0
    assert change["lucky"] <= 0 and change["creator"] <= 0
    _assert_valid_move(proposal, SEED_SPLIT, D(5))
    assert "declining activity" in proposal.reasoning


@pytest.mark.parametrize("day", DAYS)
def test_critically_low_dao_treasury_raises_the_dao_share(day: date) -> None:
    metrics = sample_metrics(day, "treasury_critical")
    signals = read_signals(metrics)
    assert signals.runway_months is not None and signals.runway_months <= 3
    proposal = RulesProposer().propose(metrics)
    change = proposal.split.changes_from(SEED_SPLIT)
    assert proposal.should_rebalance
    assert change["dao"] == D(5)  # critical: a full step
    assert change["reinvestment"] == D(-5)
    _assert_valid_move(proposal, SEED_SPLIT, D(5))
    assert "runway" in proposal.reasoning and "critical" in proposal.reasoning


@pytest.mark.parametrize("day", DAYS)
def test_a_steady_day_keeps_the_split(day: date) -> None:
    metrics = sample_metrics(day, "steady")
    proposal = RulesProposer().propose(metrics)
    assert not proposal.should_rebalance
    assert proposal.split == SEED_SPLIT
    assert "Action: none" in proposal.reasoning
    assert validate_proposal(proposal, current=SEED_SPLIT).ok


def test_low_runway_moves_part_of_a_step() -> None:
    base = sample_metrics(date(2025, 2, 1), "steady")
    # 4.5 months of runway: halfway between critical (3) and low (6) -> pressure 0.5
    metrics = replace(
        base, treasury=DaoTreasury(balance_usd=D("450000.00"), monthly_burn_usd=D("100000.00"))
    )
    assert read_signals(metrics).treasury_pressure == D("0.5")
    proposal = RulesProposer(max_step=D(4)).propose(metrics)
    assert proposal.split.changes_from(SEED_SPLIT) == {
        "reinvestment": D(-2),
        "dao": D(2),
        "lucky": D(0),
        "creator": D(0),
    }


def test_declining_activity_with_a_critical_treasury_never_takes_from_the_dao() -> None:
    declining = sample_metrics(date(2025, 2, 3), "declining")
    critical = sample_metrics(date(2025, 2, 3), "treasury_critical")
    metrics = replace(declining, treasury=critical.treasury)
    proposal = RulesProposer().propose(metrics)
    change = proposal.split.changes_from(SEED_SPLIT)
    assert change["dao"] > 0
    assert "DAO treasury runway low" in proposal.reasoning
    assert "declining activity" in proposal.reasoning
    _assert_valid_move(proposal, SEED_SPLIT, D(5))


def test_max_step_limits_every_category() -> None:
    metrics = sample_metrics(date(2025, 3, 3), "rapid_growth")
    for step in (D("0.5"), D(1), D("2.5"), D(10), D(30)):
        proposal = RulesProposer(max_step=step, min_change=D(0)).propose(metrics)
        _assert_valid_move(proposal, SEED_SPLIT, step)
    big = RulesProposer(max_step=D(30)).propose(metrics)
    assert big.split.lucky <= DEFAULT_BOUNDS.lucky[1]
    assert big.split.creator <= DEFAULT_BOUNDS.creator[1]


def test_no_room_inside_the_bounds_means_no_rebalance() -> None:
    full_rewards = Split(D(45), D(30), D(15), D(10))  # lucky and creator at their upper bounds
    metrics = sample_metrics(date(2025, 3, 3), "rapid_growth", current_split=full_rewards)
    proposal = RulesProposer().propose(metrics)
    assert not proposal.should_rebalance
    assert proposal.split == full_rewards
    assert validate_proposal(proposal, current=full_rewards).ok


def test_moves_below_the_minimum_change_are_not_proposed() -> None:
    nearly_full = Split(D("45.10"), D(30), D("14.90"), D(10))  # 0.10 points of room for lucky
    metrics = sample_metrics(date(2025, 3, 3), "rapid_growth", current_split=nearly_full)
    proposal = RulesProposer(min_change=D("0.50")).propose(metrics)
    assert not proposal.should_rebalance and proposal.split == nearly_full
    assert "below the minimum change" in proposal.reasoning


def test_the_proposer_is_deterministic() -> None:
    for scenario in SCENARIOS:
        metrics = sample_metrics(date(2025, 5, 5), scenario)
        assert RulesProposer().propose(metrics) == RulesProposer().propose(metrics)
        assert sample_metrics(date(2025, 5, 5), scenario) == metrics


def test_confidence_is_higher_for_stronger_signals() -> None:
    critical = RulesProposer().propose(sample_metrics(date(2025, 4, 1), "treasury_critical"))
    low = replace(
        sample_metrics(date(2025, 4, 1), "treasury_critical"),
        treasury=DaoTreasury(balance_usd=D("550000"), monthly_burn_usd=D("100000")),
    )
    weak = RulesProposer().propose(low)
    assert weak.should_rebalance
    assert D(0) <= weak.confidence < critical.confidence <= D(1)


@st.composite
def _splits(draw: st.DrawFn) -> Split:
    """Valid splits inside the default bounds, in basis points."""
    dao = draw(st.integers(500, 3000))
    lucky = draw(st.integers(100, 1500))
    creator = draw(st.integers(100, 1000))
    reinvestment = 10_000 - dao - lucky - creator
    assume(4000 <= reinvestment <= 9000)
    return Split(*(D(v) / 100 for v in (reinvestment, dao, lucky, creator)))


_decimal_1 = st.integers(-1000, 1000).map(lambda v: D(v) / 10)


@settings(max_examples=150, deadline=None)
@given(
    current=_splits(),
    score=st.integers(0, 1000).map(lambda v: D(v) / 10),
    community=_decimal_1,
    holders=_decimal_1,
    price=_decimal_1,
    runway_tenths=st.integers(0, 400),
    step=st.sampled_from([D("0.25"), D(1), D(5), D("12.5")]),
)
def test_every_rules_proposal_is_valid_and_within_the_step(
    current: Split,
    score: Decimal,
    community: Decimal,
    holders: Decimal,
    price: Decimal,
    runway_tenths: int,
    step: Decimal,
) -> None:
    base = sample_metrics(date(2025, 6, 1), "steady", current_split=current)
    metrics = replace(
        base,
        engagement=replace(base.engagement, engagement_score=score),
        community=replace(base.community, growth_pct_7d=community),
        token=replace(base.token, holder_growth_pct_7d=holders, price_trend_pct_7d=price),
        treasury=DaoTreasury(
            balance_usd=D(runway_tenths) * 10_000, monthly_burn_usd=D("100000.00")
        ),
    )
    proposal = RulesProposer(max_step=step).propose(metrics)
    _assert_valid_move(proposal, current, step)
    assert proposal.should_rebalance == (proposal.split != current)


def test_split_value_type() -> None:
    split = Split(80, "15", D("3.00"), D(2))
    assert split == SEED_SPLIT and split.total == 100
    assert split.label() == "80.00/15.00/3.00/2.00"
    assert split.to_json() == {"reinvestment": "80", "dao": "15", "lucky": "3.00", "creator": "2"}
    assert Split.from_mapping({"reinvestment": 70, "dao": 20, "lucky": 6, "creator": 4}).dao == 20
    with pytest.raises(TypeError):
        Split(80.0, 15, 3, 2)  # floats are inexact; refused
    with pytest.raises(ValueError, match="missing"):
        Split.from_mapping({"reinvestment": 80, "dao": 20})
    with pytest.raises(ValueError, match="extra"):
        Split.from_mapping({"reinvestment": 80, "dao": 15, "lucky": 3, "creator": 2, "x": 0})
    other = Split(77, 15, D("4.8"), D("3.2"))
    assert other.changes_from(split)["creator"] == D("1.2")
    assert other.max_change_from(split) == D(3)


def test_category_bounds_must_allow_a_split() -> None:
    assert DEFAULT_BOUNDS.range("reinvestment") == (D(40), D(90))
    assert [DEFAULT_BOUNDS.range(c) for c in CATEGORIES][1:] == [
        (D(5), D(30)),
        (D(1), D(15)),
        (D(1), D(10)),
    ]
    with pytest.raises(ValueError, match="cannot sum to 100|no split"):
        CategoryBounds(reinvestment=(D(10), D(20)))
    with pytest.raises(ValueError, match="low <= high"):
        CategoryBounds(dao=(D(20), D(10)))


def test_sample_metrics_cycle_scenarios_and_round_trip() -> None:
    seen = {scenario_for_day(date(2025, 1, 1) + timedelta(days=i)) for i in range(4)}
    assert seen == set(SCENARIOS)
    day = date(2025, 7, 9)
    metrics = sample_metrics(day)
    assert metrics.scenario == scenario_for_day(day)
    assert PlatformMetrics.from_json(metrics.to_json()) == metrics
    with pytest.raises(ValueError, match="unknown scenario"):
        sample_metrics(day, "boom")


# ------------------------------------------------------------------------------ auto-approval


def _proposal(split: Split, confidence: str = "0.9", **kw) -> Proposal:
    return Proposal(split, D(confidence), kw.pop("rebalance", True), "because", "rules", **kw)


def test_auto_approve_is_off_by_default() -> None:
    decision = AutoApprovePolicy().decide(_proposal(Split(79, 15, 4, 2)), SEED_SPLIT)
    assert not decision.approve and "off" in decision.reason


def test_auto_approve_within_limits() -> None:
    policy = AutoApprovePolicy(enabled=True, min_confidence=D("0.8"), max_change=D(2))
    small = _proposal(Split(78, 15, 4, 3))
    decision = policy.decide(small, SEED_SPLIT)
    assert decision.approve and "auto-approved" in decision.reason
    at_the_limit = _proposal(Split(78, 15, 5, 2), confidence="0.8")
    assert policy.decide(at_the_limit, SEED_SPLIT).approve


@pytest.mark.parametrize(
    ("proposal", "errors", "reason"),
    [
        (_proposal(Split(79, 15, 4, 2), confidence="0.799"), (), "below"),
        (_proposal(Split(77, 15, 5, 3)), (), "exceeds"),
        (_proposal(Split(79, 15, 4, 2), warnings=("dao low",)), (), "warnings"),
        (_proposal(SEED_SPLIT, rebalance=False), (), "does not ask"),
        (_proposal(Split(79, 15, 4, 2)), ("sum is 99",), "invalid"),
    ],
)
def test_auto_approve_refuses(proposal: Proposal, errors: tuple, reason: str) -> None:
    policy = AutoApprovePolicy(enabled=True, min_confidence=D("0.8"), max_change=D(2))
    decision = policy.decide(proposal, SEED_SPLIT, errors)
    assert not decision.approve
    assert reason in decision.reason


def test_the_core_modules_do_not_import_dagster() -> None:
    import subprocess
    import sys

    code = (
        "import sys, allocator_dagster.profit_split, allocator_dagster.profit_split.llm; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
