"""The rules every proposal must pass before it is stored, whoever made it (rules, LLM, a person).

Errors make a proposal unusable; warnings flag the design's thresholds for a reviewer's attention
(they only fire when the configured category bounds are wider than the design's).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from allocator_dagster.profit_split.policy import (
    DEFAULT_BOUNDS,
    PROPOSERS,
    CategoryBounds,
    Proposal,
)
from allocator_dagster.profit_split.split import HUNDRED, Split, fmt_pct

MAX_REASONING_CHARS = 4000
PCT_DECIMALS = 2  # the precision of a split (profit_distributions.pct is NUMERIC(5, 2))
CONFIDENCE_DECIMALS = 3  # NUMERIC(4, 3)

# The design's thresholds: (warn below, warn above); None means no threshold on that side.
WARNING_THRESHOLDS: dict[str, tuple[Decimal | None, Decimal | None]] = {
    "reinvestment": (Decimal(40), Decimal(90)),
    "dao": (Decimal(5), None),
    "lucky": (Decimal(1), None),
    "creator": (Decimal(1), None),
}


class ProposalValidationError(ValueError):
    """A proposal that breaks a rule; `errors` lists every broken rule, not just the first."""

    def __init__(self, errors: tuple[str, ...]) -> None:
        super().__init__("invalid proposal: " + "; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ValidationResult:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _exact_number(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def split_errors(split: Split, bounds: CategoryBounds = DEFAULT_BOUNDS) -> list[str]:
    """Range, precision, exact sum and category bounds of a split."""
    errors: list[str] = []
    values = split.as_dict()
    for category, value in values.items():
        if not _exact_number(value):
            errors.append(f"{category} percentage {value!r} is not a finite number")
            continue
        if not 0 <= value <= HUNDRED:
            errors.append(f"{category} percentage {value} is outside [0, 100]")
        if _decimals(value.normalize()) > PCT_DECIMALS:
            errors.append(f"{category} percentage {value} has more than {PCT_DECIMALS} decimals")
        low, high = bounds.range(category)
        if not low <= value <= high:
            errors.append(
                f"{category} percentage {value} is outside its bounds [{fmt_pct(low)}, {fmt_pct(high)}]"
            )
    if all(_exact_number(v) for v in values.values()):
        total = sum(values.values(), Decimal(0))
        if total != HUNDRED:
            errors.append(f"percentages sum to {total}, not exactly 100")
    return errors


def split_warnings(split: Split) -> list[str]:
    """The design's thresholds, reported but not enforced."""
    warnings: list[str] = []
    for category, (below, above) in WARNING_THRESHOLDS.items():
        value = getattr(split, category)
        if not _exact_number(value):
            continue
        if below is not None and value < below:
            warnings.append(f"{category} {value} % is below the design threshold of {below} %")
        if above is not None and value > above:
            warnings.append(f"{category} {value} % is above the design threshold of {above} %")
    return warnings


def validate_proposal(
    proposal: Proposal,
    *,
    bounds: CategoryBounds = DEFAULT_BOUNDS,
    current: Split | None = None,
    max_step: Decimal | None = None,
) -> ValidationResult:
    """Every rule at once. With `current` (the split in force): a no-rebalance proposal must
    repeat it, and with `max_step` no category may move more than `max_step` points from it."""
    errors = split_errors(proposal.split, bounds)
    confidence = proposal.confidence
    if not _exact_number(confidence):
        errors.append(f"confidence {confidence!r} is not a finite number")
    else:
        if not 0 <= confidence <= 1:
            errors.append(f"confidence {confidence} is outside [0, 1]")
        if _decimals(confidence.normalize()) > CONFIDENCE_DECIMALS:
            errors.append(f"confidence {confidence} has more than {CONFIDENCE_DECIMALS} decimals")
    if not isinstance(proposal.should_rebalance, bool):
        errors.append(f"should_rebalance {proposal.should_rebalance!r} is not true or false")
    elif (
        not proposal.should_rebalance
        and current is not None
        and not errors
        and proposal.split != current
    ):
        errors.append(
            f"should_rebalance is false but the split {proposal.split.label()} differs from the "
            f"split in force {current.label()}"
        )
    if current is not None and max_step is not None and not errors:
        for category, change in proposal.split.changes_from(current).items():
            if abs(change) > max_step:
                errors.append(
                    f"{category} moves {fmt_pct(abs(change))} points from the split in force "
                    f"{current.label()}, more than the maximum step of {fmt_pct(max_step)}"
                )
    if not isinstance(proposal.reasoning, str) or not proposal.reasoning.strip():
        errors.append("reasoning is empty")
    elif len(proposal.reasoning) > MAX_REASONING_CHARS:
        errors.append(f"reasoning is longer than {MAX_REASONING_CHARS} characters")
    if proposal.proposer not in PROPOSERS:
        errors.append(f"proposer {proposal.proposer!r} is not one of {list(PROPOSERS)}")
    return ValidationResult(tuple(errors), tuple(split_warnings(proposal.split)))


def ensure_valid(
    proposal: Proposal,
    *,
    bounds: CategoryBounds = DEFAULT_BOUNDS,
    current: Split | None = None,
    max_step: Decimal | None = None,
) -> Proposal:
    """The proposal with its warnings attached, or ProposalValidationError listing every error."""
    result = validate_proposal(proposal, bounds=bounds, current=current, max_step=max_step)
    if not result.ok:
        raise ProposalValidationError(result.errors)
    return replace(proposal, warnings=result.warnings)


__all__ = [
    "MAX_REASONING_CHARS",
    "WARNING_THRESHOLDS",
    "ProposalValidationError",
    "ValidationResult",
    "ensure_valid",
    "split_errors",
    "split_warnings",
    "validate_proposal",
]
