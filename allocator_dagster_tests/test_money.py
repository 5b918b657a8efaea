"""Cents and rounding: each helper rounds the way its docstring says, and they differ where they must."""

from decimal import Decimal

import numpy as np
import pytest

from allocator_dagster.money import (
    cents_down,
    from_whole_cents,
    int_cents,
    int_cents_array,
    round_to_cent,
    round_usd,
    to_cent_grid,
    to_cents,
    whole_cents,
)

D = Decimal


@pytest.mark.parametrize(
    "value, cents",
    [
        (0.285, D("0.28")),  # read as printed: 0.285 is a tie, to even
        (0.295, D("0.30")),
        (D("1.005"), D("1.00")),
        ("2.675", D("2.68")),
        (10_000_000, D("10000000.00")),
    ],
)
def test_to_cents_reads_the_printed_number_and_ties_to_even(value, cents):
    assert to_cents(value) == cents
    assert to_cents(value).as_tuple().exponent == -2


def test_cents_down_cuts_towards_zero():
    assert cents_down(D("1.239")) == D("1.23")
    assert cents_down(D("-1.239")) == D("-1.23")


def test_whole_cents_round_trip_and_refusals():
    assert whole_cents(D("12.30")) == 1230
    assert from_whole_cents(1230) == D("12.30")
    assert str(from_whole_cents(5)) == "0.05"
    with pytest.raises(ValueError, match="whole number of cents"):
        whole_cents(D("0.001"))
    with pytest.raises(ValueError, match="finite Decimal"):
        whole_cents(D("NaN"))


def test_cent_grid_rounds_limits_up_but_ignores_float_noise():
    got = to_cent_grid(np.array([20_000.006, 20_000.0, 0.1 + 0.2, 0.0]))
    assert got.tolist() == [20_000.01, 20_000.0, 0.3, 0.0]


def test_integer_cents_are_nearest():
    assert int_cents(1234.565) == 123456  # 1234.565 is 1234.56499... in binary
    assert int_cents(2.675) == 268  # but 2.675 * 100 is exactly 267.5: to even
    assert int_cents(0.005) == 0  # 0.5 cent: ties to even
    assert int_cents_array(np.array([0.015, 1.0, 2.999])).tolist() == [2, 100, 300]
    assert int_cents_array(np.array([1.0])).dtype == np.int64


def test_the_two_float_roundings_differ_on_a_near_tie():
    # 2.675 is 2.67499999... in binary: Python's round sees that; scaled by 100 it is exactly
    # 267.5, which numpy rounds to even
    assert round_usd(2.675) == 2.67
    assert round_to_cent(np.array([2.675])).tolist() == [2.68]
    assert round_usd(0.285) == 0.28 == round_to_cent(np.array([0.285]))[0]
