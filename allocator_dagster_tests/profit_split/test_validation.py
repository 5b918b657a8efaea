"""Every validation rule, one at a time: errors make a proposal unusable, warnings only flag it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from allocator_dagster.profit_split.policy import CategoryBounds, Proposal
from allocator_dagster.profit_split.split import SEED_SPLIT, Split
from allocator_dagster.profit_split.validation import (
    MAX_REASONING_CHARS,
    ProposalValidationError,
    ensure_valid,
    validate_proposal,
)

D = Decimal


# Sums to 100 exactly, although 77.1 + 15.3 + 4.8 + 2.8 != 100.0 in binary floating point.
VALID = Split(D("77.10"), D("15.30"), D("4.80"), D("2.80"))
D085 = D("0.85")


def proposal(
    split: Split = VALID,
    confidence: object = D085,
    should_rebalance: object = True,
    reasoning: object = "engagement rose",
    proposer: str = "rules",
) -> Proposal:
    return Proposal(split, confidence, should_rebalance, reasoning, proposer)  # type: ignore[arg-type]


def errors_of(p: Proposal, **kw) -> tuple[str, ...]:
    return validate_proposal(p, **kw).errors


def test_a_valid_proposal_passes_without_warnings() -> None:
    result = validate_proposal(proposal(), current=SEED_SPLIT)
    assert result.ok and result.errors == () and result.warnings == ()


def test_exact_decimal_sum_where_binary_floats_fail() -> None:
    assert 77.10 + 15.30 + 4.80 + 2.80 != 100.0  # what float arithmetic would say
    assert validate_proposal(proposal(VALID)).ok
    split = Split(D("55.55"), D("29.15"), D("5.70"), D("9.60"))
    assert 55.55 + 29.15 + 5.70 + 9.60 != 100.0
    assert validate_proposal(proposal(split)).ok


@pytest.mark.parametrize(
    ("split", "total"),
    [
        (Split(D("79.99"), D(15), D(3), D(2)), "99.99"),
        (Split(D("80.01"), D(15), D(3), D(2)), "100.01"),
        (Split(D(80), D(15), D(3), D(1)), "99"),
    ],
)
def test_the_sum_must_be_exactly_100(split: Split, total: str) -> None:
    assert errors_of(proposal(split)) == (f"percentages sum to {total}, not exactly 100",)


@pytest.mark.parametrize(
    ("split", "fragment"),
    [
        (Split(D(101), D(-1), D(0), D(0)), "reinvestment percentage 101 is outside [0, 100]"),
        (Split(D(101), D(-1), D(0), D(0)), "dao percentage -1 is outside [0, 100]"),
    ],
)
def test_percentages_must_be_between_0_and_100(split: Split, fragment: str) -> None:
    bounds = CategoryBounds(
        reinvestment=(D(0), D(100)),
        dao=(D(0), D(100)),
        lucky=(D(0), D(100)),
        creator=(D(0), D(100)),
    )
    assert fragment in errors_of(proposal(split), bounds=bounds)


@pytest.mark.parametrize(
    ("split", "category", "value", "bounds"),
    [
        (
            Split(D("39.99"), D("30"), D("15"), D("15.01")),
            "reinvestment",
            "39.99",
            "[40.00, 90.00]",
        ),
        (Split(D("90.01"), D("5"), D("2.99"), D(2)), "reinvestment", "90.01", "[40.00, 90.00]"),
        (Split(D("81"), D("4.99"), D("12.01"), D(2)), "dao", "4.99", "[5.00, 30.00]"),
        (Split(D("60"), D("30.01"), D("7.99"), D(2)), "dao", "30.01", "[5.00, 30.00]"),
        (Split(D("81.01"), D(15), D("0.99"), D(3)), "lucky", "0.99", "[1.00, 15.00]"),
        (Split(D("69.99"), D(15), D("15.01"), D(0)), "lucky", "15.01", "[1.00, 15.00]"),
        (Split(D("81.01"), D(15), D(3), D("0.99")), "creator", "0.99", "[1.00, 10.00]"),
        (Split(D("71.99"), D(15), D(3), D("10.01")), "creator", "10.01", "[1.00, 10.00]"),
    ],
)
def test_each_category_must_be_within_its_bounds(
    split: Split, category: str, value: str, bounds: str
) -> None:
    expected = f"{category} percentage {value} is outside its bounds {bounds}"
    assert expected in errors_of(proposal(split))


def test_at_most_two_decimals() -> None:
    split = Split(D("79.995"), D("15.005"), D(3), D(2))
    assert errors_of(proposal(split)) == (
        "reinvestment percentage 79.995 has more than 2 decimals",
        "dao percentage 15.005 has more than 2 decimals",
    )


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), D("-Infinity")])
def test_non_finite_percentages_are_errors(bad: Decimal) -> None:
    split = Split(bad, D(15), D(3), D(2))
    errors = errors_of(proposal(split))
    assert errors == (f"reinvestment percentage {bad!r} is not a finite number",)


@pytest.mark.parametrize(
    ("confidence", "message"),
    [
        (D("-0.001"), "confidence -0.001 is outside [0, 1]"),
        (D("1.001"), "confidence 1.001 is outside [0, 1]"),
        (D("0.8125"), "confidence 0.8125 has more than 3 decimals"),
        (D("NaN"), "confidence Decimal('NaN') is not a finite number"),
        (0.85, "confidence 0.85 is not a finite number"),
        ("0.85", "confidence '0.85' is not a finite number"),
    ],
)
def test_confidence_must_be_in_0_1(confidence: object, message: str) -> None:
    assert errors_of(proposal(confidence=confidence)) == (message,)


@pytest.mark.parametrize("confidence", [D(0), D(1), D("0.5"), D("0.125")])
def test_confidence_edges_are_valid(confidence: Decimal) -> None:
    assert validate_proposal(proposal(confidence=confidence)).ok


@pytest.mark.parametrize("reasoning", ["", "   \n\t", None])
def test_reasoning_must_not_be_empty(reasoning: object) -> None:
    assert errors_of(proposal(reasoning=reasoning)) == ("reasoning is empty",)


def test_reasoning_has_a_length_limit() -> None:
    assert validate_proposal(proposal(reasoning="x" * MAX_REASONING_CHARS)).ok
    too_long = proposal(reasoning="x" * (MAX_REASONING_CHARS + 1))
    assert errors_of(too_long) == (f"reasoning is longer than {MAX_REASONING_CHARS} characters",)


def test_should_rebalance_must_be_a_boolean() -> None:
    assert errors_of(proposal(should_rebalance="yes")) == (
        "should_rebalance 'yes' is not true or false",
    )


def test_no_rebalance_must_keep_the_split_in_force() -> None:
    unchanged = proposal(SEED_SPLIT, should_rebalance=False)
    assert validate_proposal(unchanged, current=SEED_SPLIT).ok
    changed = proposal(should_rebalance=False)
    assert errors_of(changed, current=SEED_SPLIT) == (
        "should_rebalance is false but the split 77.10/15.30/4.80/2.80 differs from the split "
        "in force 80.00/15.00/3.00/2.00",
    )
    assert validate_proposal(changed).ok  # without the split in force the rule cannot apply


def test_the_proposer_must_be_known() -> None:
    assert errors_of(proposal(proposer="oracle")) == (
        "proposer 'oracle' is not one of ['rules', 'llm', 'manual', 'seed']",
    )


def test_all_errors_are_reported_at_once() -> None:
    bad = proposal(Split(D(95), D(3), D(1), D(1)), confidence=D(2), reasoning="")
    with pytest.raises(ProposalValidationError) as info:
        ensure_valid(bad)
    assert len(info.value.errors) == 4
    assert "reinvestment percentage 95 is outside its bounds" in str(info.value)


# ------------------------------------------------------------------------------ warnings

# Bounds wider than the design's, as an operator might configure: the thresholds then warn.
WIDE = CategoryBounds(
    reinvestment=(D(30), D(95)), dao=(D(0), D(40)), lucky=(D(0), D(20)), creator=(D(0), D(15))
)


@pytest.mark.parametrize(
    ("split", "warning"),
    [
        (
            Split(D("39.99"), D(35), D(15), D("10.01")),
            "reinvestment 39.99 % is below the design threshold of 40 %",
        ),
        (
            Split(D("90.01"), D(5), D("2.99"), D(2)),
            "reinvestment 90.01 % is above the design threshold of 90 %",
        ),
        (
            Split(D(81), D("4.99"), D("12.01"), D(2)),
            "dao 4.99 % is below the design threshold of 5 %",
        ),
        (
            Split(D("81.01"), D(15), D("0.99"), D(3)),
            "lucky 0.99 % is below the design threshold of 1 %",
        ),
        (
            Split(D("81.01"), D(15), D(3), D("0.99")),
            "creator 0.99 % is below the design threshold of 1 %",
        ),
    ],
)
def test_design_thresholds_are_warnings_not_errors(split: Split, warning: str) -> None:
    result = validate_proposal(proposal(split), bounds=WIDE)
    assert result.ok, result.errors
    assert result.warnings == (warning,)
    assert ensure_valid(proposal(split), bounds=WIDE).warnings == (warning,)


def test_values_on_the_thresholds_do_not_warn() -> None:
    assert validate_proposal(proposal(Split(D(90), D(5), D(4), D(1)))).warnings == ()
    assert (
        validate_proposal(proposal(Split(D(40), D(35), D(15), D(10))), bounds=WIDE).warnings == ()
    )
