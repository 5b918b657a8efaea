"""The split's bounds, the deterministic proposer and the auto-approve policy.

Percentages are `Decimal` with two decimals (what the database stores), so "sums to 100" is an
exact statement. The rules proposer is deliberately simple: four activity signals make one growth
signal, the DAO treasury runway makes a pressure signal, and each moves a bounded number of
points between categories; the reasoning names every number it used, so a reviewer can redo it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from allocator_dagster.profit_split.distribution import largest_remainder
from allocator_dagster.profit_split.metrics import PlatformMetrics
from allocator_dagster.profit_split.split import (
    CATEGORIES,
    HUNDRED,
    PCT_QUANTUM,
    Split,
    fmt_pct,
    to_decimal,
)


class Proposer(StrEnum):
    """Who made a proposal, as stored in `profit_allocation_log.proposer`."""

    RULES = "rules"  # the deterministic RulesProposer
    LLM = "llm"  # the LLMProposer (falls back to rules)
    MANUAL = "manual"  # a person, through the CLI
    SEED = "seed"  # the fixed starting split


PROPOSERS: tuple[str, ...] = tuple(p.value for p in Proposer)  # for messages


class ProposedBy(StrEnum):
    """The specification's `proposed_by`: the LLM is `ai`, the rules and the seed `system`."""

    AI = "ai"
    MANUAL = "manual"
    SYSTEM = "system"

    @classmethod
    def of(cls, proposer: Proposer | str) -> ProposedBy:
        return {
            Proposer.LLM: cls.AI,
            Proposer.MANUAL: cls.MANUAL,
            Proposer.RULES: cls.SYSTEM,
            Proposer.SEED: cls.SYSTEM,
        }[Proposer(proposer)]


class ProposalStatus(StrEnum):
    """The specification's lifecycle: proposed, then active or rejected. A replaced split stays
    active with its `effective_until` set; the one without is in force (a unique index)."""

    PROPOSED = "proposed"
    ACTIVE = "active"
    REJECTED = "rejected"


CONFIDENCE_QUANTUM = Decimal("0.001")
SIGNAL_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class CategoryBounds:
    """Inclusive [low, high] percentage per category; a proposal outside them is an error."""

    reinvestment: tuple[Decimal, Decimal] = (Decimal(40), Decimal(90))
    dao: tuple[Decimal, Decimal] = (Decimal(5), Decimal(30))
    lucky: tuple[Decimal, Decimal] = (Decimal(1), Decimal(15))
    creator: tuple[Decimal, Decimal] = (Decimal(1), Decimal(10))

    def __post_init__(self) -> None:
        for category in CATEGORIES:
            low, high = (to_decimal(v) for v in getattr(self, category))
            if not (0 <= low <= high <= HUNDRED):
                raise ValueError(
                    f"{category} bounds [{low}, {high}] must satisfy 0 <= low <= high <= 100"
                )
            object.__setattr__(self, category, (low, high))
        lows = sum((self.range(c)[0] for c in CATEGORIES), Decimal(0))
        highs = sum((self.range(c)[1] for c in CATEGORIES), Decimal(0))
        if not lows <= HUNDRED <= highs:
            raise ValueError(
                f"no split can sum to 100 within these bounds (lows {lows}, highs {highs})"
            )

    def range(self, category: str) -> tuple[Decimal, Decimal]:
        """(low, high) of `category`, inclusive."""
        return getattr(self, category)

    def to_json(self) -> dict[str, list[str]]:
        """Exact strings, for metadata and prompts."""
        return {c: [str(v) for v in self.range(c)] for c in CATEGORIES}


DEFAULT_BOUNDS = CategoryBounds()


@dataclass(frozen=True)
class Proposal:
    """A proposed split and why. `fallback_reason` says why an LLM answer was replaced, if it was."""

    split: Split
    confidence: Decimal
    should_rebalance: bool
    reasoning: str
    proposer: Proposer
    fallback_reason: str | None = None
    warnings: tuple[str, ...] = ()


# ------------------------------------------------------------------------------ signals

# Weights of the activity signals in the growth signal (sum 1) and the value that counts as +/-1.
SIGNAL_WEIGHTS = {
    "engagement": Decimal("0.35"),
    "community": Decimal("0.25"),
    "holders": Decimal("0.20"),
    "price": Decimal("0.20"),
}
SIGNAL_SATURATION = {
    "engagement": Decimal(50),  # engagement score 100 (or 0) is +1 (or -1) around 50
    "community": Decimal(10),  # +10 % members in 7 days is +1
    "holders": Decimal(10),  # +10 % holders in 7 days is +1
    "price": Decimal(20),  # +20 % price in 7 days is +1
}
GROWTH_THRESHOLD = Decimal("0.20")  # |growth signal| below this: no growth/decline action
LOW_RUNWAY_MONTHS = Decimal(6)
CRITICAL_RUNWAY_MONTHS = Decimal(3)


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return min(max(value, low), high)


@dataclass(frozen=True)
class Signals:
    """The normalised inputs of the rules proposer, each in [-1, 1] (pressure in [0, 1])."""

    components: dict[str, Decimal]
    growth: Decimal
    runway_months: Decimal | None
    treasury_pressure: Decimal

    @property
    def dispersion(self) -> Decimal:
        """Mean distance of the components from the growth signal: 0 when they all agree."""
        spread = sum((abs(v - self.growth) for v in self.components.values()), Decimal(0))
        return (spread / len(self.components)).quantize(SIGNAL_QUANTUM)


def read_signals(metrics: PlatformMetrics) -> Signals:
    """Normalise the metrics into the signals the rules act on."""
    one = Decimal(1)
    raw = {
        "engagement": metrics.engagement.engagement_score - 50,
        "community": metrics.community.growth_pct_7d,
        "holders": metrics.token.holder_growth_pct_7d,
        "price": metrics.token.price_trend_pct_7d,
    }
    components = {
        name: _clamp(value / SIGNAL_SATURATION[name], -one, one).quantize(SIGNAL_QUANTUM)
        for name, value in raw.items()
    }
    growth = sum((SIGNAL_WEIGHTS[n] * v for n, v in components.items()), Decimal(0)).quantize(
        SIGNAL_QUANTUM
    )
    balance = metrics.treasury.balance_usd
    burn = metrics.treasury.monthly_burn_usd
    runway: Decimal | None = None
    pressure = Decimal(0)
    if burn > 0:
        months = (balance / burn).quantize(Decimal("0.1"), rounding=ROUND_FLOOR)
        runway = months
        if months <= CRITICAL_RUNWAY_MONTHS:
            pressure = one
        elif months < LOW_RUNWAY_MONTHS:
            pressure = (
                (LOW_RUNWAY_MONTHS - months) / (LOW_RUNWAY_MONTHS - CRITICAL_RUNWAY_MONTHS)
            ).quantize(SIGNAL_QUANTUM)
    return Signals(components, growth, runway, pressure)


# ------------------------------------------------------------------------------ rules proposer

BasisPoints = dict[str, int]  # hundredths of a percentage point: 80.00 % is 8000


def _bp(value: Decimal, rounding: str = ROUND_FLOOR) -> int:
    return int((value * 100).to_integral_value(rounding=rounding))


def _pct(points: int) -> Decimal:
    return Decimal(points) * PCT_QUANTUM


def _allocate(
    amount: int, tiers: Sequence[Mapping[str, int]], capacity: Mapping[str, int]
) -> BasisPoints:
    """Spread `amount` over the categories of the first tier by weight, never past a category's
    capacity; what a full category cannot take goes to the others, then to the next tier."""
    placed = dict.fromkeys(CATEGORIES, 0)
    remaining = amount
    for tier in tiers:
        open_ = {c: w for c, w in tier.items() if w > 0 and capacity[c] > placed[c]}
        while remaining > 0 and open_:
            shares = largest_remainder(remaining, open_)
            for category, share in shares.items():
                take = min(share, capacity[category] - placed[category])
                placed[category] += take
                remaining -= take
            open_ = {c: w for c, w in open_.items() if capacity[c] > placed[c]}
        if remaining == 0:
            break
    if remaining:
        raise AssertionError("allocated more than the capacity allows")  # callers cap `amount`
    return placed


@dataclass
class _Mover:
    """Moves points between categories, within the bounds and the per-proposal step."""

    start: BasisPoints
    bounds: CategoryBounds
    step: int
    values: BasisPoints = field(init=False)

    def __post_init__(self) -> None:
        self.values = dict(self.start)

    def room_up(self, category: str) -> int:
        high = _bp(self.bounds.range(category)[1])
        moved = self.values[category] - self.start[category]
        return max(0, min(high - self.values[category], self.step - moved))

    def room_down(self, category: str) -> int:
        low = _bp(self.bounds.range(category)[0], ROUND_CEILING)
        moved = self.start[category] - self.values[category]
        return max(0, min(self.values[category] - low, self.step - moved))

    def move(
        self,
        wanted: int,
        gainers: Sequence[Mapping[str, int]],
        losers: Sequence[Mapping[str, int]],
    ) -> tuple[BasisPoints, BasisPoints]:
        """Move up to `wanted` points from `losers` to `gainers`; returns (gains, losses)."""
        up = {c: self.room_up(c) for c in CATEGORIES}
        down = {c: self.room_down(c) for c in CATEGORIES}
        gain_room = sum(up[c] for tier in gainers for c in tier)
        loss_room = sum(down[c] for tier in losers for c in tier)
        amount = max(0, min(wanted, gain_room, loss_room))
        gains = _allocate(amount, gainers, up)
        losses = _allocate(amount, losers, down)
        for category in CATEGORIES:
            self.values[category] += gains[category] - losses[category]
        return gains, losses


def _describe_move(gains: BasisPoints, losses: BasisPoints) -> str:
    def side(points: BasisPoints, sign: str) -> str:
        parts = [f"{c} {sign}{fmt_pct(_pct(p))}" for c, p in points.items() if p]
        return ", ".join(parts) if parts else "nothing"

    return f"{side(gains, '+')} from {side(losses, '-')}"


def _signed(value: Decimal) -> str:
    return f"{value:+}"


@dataclass(frozen=True)
class RulesProposer:
    """Deterministic, explainable proposals: same metrics and split in, same proposal out."""

    max_step: Decimal = Decimal(5)
    bounds: CategoryBounds = DEFAULT_BOUNDS
    min_change: Decimal = Decimal("0.50")

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_step", to_decimal(self.max_step))
        object.__setattr__(self, "min_change", to_decimal(self.min_change))
        if not Decimal("0.01") <= self.max_step <= HUNDRED:
            raise ValueError(f"max_step {self.max_step} must be between 0.01 and 100 points")
        if self.min_change < 0:
            raise ValueError("min_change must not be negative")

    def propose(self, metrics: PlatformMetrics) -> Proposal:
        """A proposal moving the split in force toward what the signals call for."""
        current = metrics.current_split
        signals = read_signals(metrics)
        step = _bp(self.max_step)
        start = {c: _bp(v) for c, v in current.as_dict().items()}
        if {c: _pct(p) for c, p in start.items()} != current.as_dict():
            raise ValueError(f"split in force {current.label()} has more than two decimals")
        mover = _Mover(start, self.bounds, step)
        lines = [self._signal_sentence(metrics, signals)]
        actions: list[str] = []
        pressure = signals.treasury_pressure
        rewards = {"lucky": 3, "creator": 2}
        if pressure > 0:
            wanted = _bp(self.max_step * pressure)
            gains, losses = mover.move(wanted, [{"dao": 1}], [{"reinvestment": 1}, rewards])
            actions.append(
                f"DAO treasury runway low (pressure {pressure}) -> {_describe_move(gains, losses)}"
            )
        if signals.growth >= GROWTH_THRESHOLD:
            wanted = _bp(self.max_step * signals.growth)
            losers = [{"reinvestment": 1}] + ([] if pressure > 0 else [{"dao": 1}])
            gains, losses = mover.move(wanted, [rewards], losers)
            actions.append(f"rapid growth -> {_describe_move(gains, losses)}")
        elif signals.growth <= -GROWTH_THRESHOLD:
            wanted = _bp(self.max_step * -signals.growth)
            losers = [rewards] + ([] if pressure > 0 else [{"dao": 1}])
            gains, losses = mover.move(wanted, [{"reinvestment": 1}], losers)
            actions.append(f"declining activity -> {_describe_move(gains, losses)}")

        proposed = Split(**{c: _pct(p) for c, p in mover.values.items()})
        largest = proposed.max_change_from(current)
        acted = bool(actions)
        rebalance = acted and largest > 0 and largest >= self.min_change
        if acted:
            lines.append("Action: " + "; ".join(actions) + ".")
        else:
            lines.append(
                f"Action: none; growth signal within +/-{GROWTH_THRESHOLD} and treasury runway healthy."
            )
        if acted and not rebalance:
            lines.append(
                f"The largest move ({fmt_pct(largest)} points) is below the minimum change of "
                f"{fmt_pct(self.min_change)} points (bounds or step reached), so the split stays."
            )
            proposed = current
        confidence = self._confidence(signals, rebalance)
        if rebalance:
            lines.append(
                f"Proposed {proposed.label()} (reinvestment/DAO/lucky/creator), was "
                f"{current.label()}; largest move {fmt_pct(largest)} points "
                f"(max step {fmt_pct(self.max_step)})."
            )
        else:
            lines.append(f"Keep {current.label()} (reinvestment/DAO/lucky/creator).")
        lines.append(
            f"Confidence {confidence}: signal strength and agreement among the activity signals "
            f"(dispersion {signals.dispersion})."
        )
        return Proposal(
            split=proposed,
            confidence=confidence,
            should_rebalance=rebalance,
            reasoning=" ".join(lines),
            proposer=Proposer.RULES,
        )

    @staticmethod
    def _signal_sentence(metrics: PlatformMetrics, signals: Signals) -> str:
        c = signals.components
        treasury = metrics.treasury
        if signals.runway_months is None:
            runway = "no monthly burn, runway unlimited"
        else:
            runway = f"runway {signals.runway_months} months"
            if signals.runway_months <= CRITICAL_RUNWAY_MONTHS:
                runway += f" (critical: {CRITICAL_RUNWAY_MONTHS} or less)"
            elif signals.runway_months < LOW_RUNWAY_MONTHS:
                runway += f" (low: under {LOW_RUNWAY_MONTHS})"
            else:
                runway += " (healthy)"
        return (
            f"Signals: engagement score {metrics.engagement.engagement_score} "
            f"-> {_signed(c['engagement'])}; "
            f"community growth 7d {_signed(metrics.community.growth_pct_7d)} % "
            f"-> {_signed(c['community'])}; "
            f"holder growth 7d {_signed(metrics.token.holder_growth_pct_7d)} % "
            f"-> {_signed(c['holders'])}; "
            f"price trend 7d {_signed(metrics.token.price_trend_pct_7d)} % "
            f"-> {_signed(c['price'])}; growth signal {_signed(signals.growth)} "
            f"(acts beyond +/-{GROWTH_THRESHOLD}). DAO treasury {treasury.balance_usd} USD, "
            f"burn {treasury.monthly_burn_usd} USD/month: {runway}."
        )

    @staticmethod
    def _confidence(signals: Signals, rebalance: bool) -> Decimal:
        """Stronger, more unanimous signals give more confidence; bounded to [0.05, 0.95]."""
        if rebalance:
            strength = max(abs(signals.growth), signals.treasury_pressure)
        else:  # confidence that standing still is right: highest when the signals are flat
            strength = (Decimal(1) - abs(signals.growth) / GROWTH_THRESHOLD) * (
                Decimal(1) - signals.treasury_pressure
            )
            strength = _clamp(strength, Decimal(0), Decimal(1))
        value = Decimal("0.5") + Decimal("0.4") * strength
        value -= Decimal("0.2") * min(signals.dispersion, Decimal(1))
        return _clamp(value, Decimal("0.05"), Decimal("0.95")).quantize(CONFIDENCE_QUANTUM)


# ------------------------------------------------------------------------------ auto-approval

AUTO_APPROVE_REVIEWER = "auto-approve-policy"


@dataclass(frozen=True)
class AutoApproveDecision:
    approve: bool
    reason: str


@dataclass(frozen=True)
class AutoApprovePolicy:
    """Approve without a human only for confident, small, clean changes; off unless enabled."""

    enabled: bool = False
    min_confidence: Decimal = Decimal("0.800")
    max_change: Decimal = Decimal("2.00")

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_confidence", to_decimal(self.min_confidence))
        object.__setattr__(self, "max_change", to_decimal(self.max_change))
        if not 0 <= self.min_confidence <= 1:
            raise ValueError("min_confidence must be in [0, 1]")
        if self.max_change < 0:
            raise ValueError("max_change must not be negative")

    def decide(
        self, proposal: Proposal, current: Split, errors: Sequence[str] = ()
    ) -> AutoApproveDecision:
        """Whether to approve `proposal` replacing `current`, and the reason in words."""
        if not self.enabled:
            return AutoApproveDecision(False, "auto-approve is off")
        if errors:
            return AutoApproveDecision(False, "the proposal is invalid: " + "; ".join(errors))
        if proposal.warnings:
            return AutoApproveDecision(False, "the proposal has warnings; a human must review")
        if not proposal.should_rebalance:
            return AutoApproveDecision(False, "the proposal does not ask to rebalance")
        if proposal.confidence < self.min_confidence:
            return AutoApproveDecision(
                False, f"confidence {proposal.confidence} is below {self.min_confidence}"
            )
        change = proposal.split.max_change_from(current)
        if change > self.max_change:
            return AutoApproveDecision(
                False, f"largest change {fmt_pct(change)} points exceeds {fmt_pct(self.max_change)}"
            )
        return AutoApproveDecision(
            True,
            f"auto-approved: confidence {proposal.confidence} >= {self.min_confidence} and largest "
            f"change {fmt_pct(change)} <= {fmt_pct(self.max_change)} points",
        )
