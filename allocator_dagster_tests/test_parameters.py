"""Allocation parameters and dynamic lists of MODEL.md: ranges, defaults, validation.

Every expectation here is derived from MODEL.md (the contract), not from the implementation.
"""

from __future__ import annotations

import math
import re

import pytest

from allocator_dagster.parameters import (
    FRACTION_FIELDS,
    AllocationParameters,
    ParameterError,
    load_parameters_file,
    parameters_from_mapping,
)


class TestParameters:
    @pytest.mark.parametrize("name", FRACTION_FIELDS)
    @pytest.mark.parametrize("value", [-0.01, 1.01, 5.0, math.nan, math.inf])
    def test_fraction_outside_unit_interval_is_rejected_naming_the_field(self, name, value):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping({name: value})
        assert name in str(info.value)

    @pytest.mark.parametrize("name", FRACTION_FIELDS)
    @pytest.mark.parametrize("value", [0.0, 1.0, 0.05])
    def test_fraction_bounds_are_inclusive(self, name, value):
        p, _ = parameters_from_mapping({name: value})
        assert getattr(p, name) == value

    def test_min_pools_without_min_position_is_invalid(self):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping({"min_pools": 3, "min_position_usd": 0})
        message = str(info.value)
        assert "min_pools" in message and "min_position_usd" in message

    def test_min_pools_zero_with_zero_minimum_is_valid(self):
        p, _ = parameters_from_mapping({"min_pools": 0, "min_position_usd": 0})
        assert p.min_pools == 0 and p.min_position_usd == 0

    @pytest.mark.parametrize("field", ["tvl_limit_pct", "approved_token", "minPools"])
    def test_unknown_field_is_rejected_naming_it(self, field):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping({field: 1})
        assert field in str(info.value)

    def test_error_message_names_the_source(self):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping({"group1_max_pct": 2}, source="PARAMS.yaml")
        assert "PARAMS.yaml" in str(info.value) and "group1_max_pct" in str(info.value)

    @pytest.mark.parametrize(
        "data, field",
        [
            ({"yield_model": "quadratic"}, "yield_model"),
            ({"gas_usd": {"Ethereum": -1.0}}, "gas_usd"),
            ({"cost_horizon_days": 0}, "cost_horizon_days"),
            ({"forecast_credibility": 0}, "forecast_credibility"),
            ({"forecast_credibility": 1.5}, "forecast_credibility"),
            ({"forecast_credibility": float("nan")}, "forecast_credibility"),
            ({"min_pools": -1}, "min_pools"),
            ({"pool_groups": {"p1": 4}}, "pool_groups"),
            ({"approved_tokens": "USDC"}, "approved_tokens"),
        ],
    )
    def test_other_invalid_values_name_their_field(self, data, field):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping(data)
        assert field in str(info.value)

    def test_mapping_is_split_into_parameters_and_lists(self):
        p, lst = parameters_from_mapping(
            {
                "approved_tokens": ["USDT", "USDC", "USDC"],
                "approved_protocols": ["aave-v3"],
                "min_pools": 2,
                "min_position_usd": 100,
            }
        )
        assert p.min_pools == 2
        assert lst.approved_tokens == ("USDC", "USDT")
        assert lst.approved_protocols == ("aave-v3",)


@pytest.mark.parametrize(
    ("field", "entry", "message"),
    [
        ("icebox_tokens", "bad token", "symbol 'bad token' contains ' '"),
        ("blacklisted_tokens", "USDC-USDT", "symbol 'USDC-USDT' contains '-'"),
        ("approved_tokens", "x" * 50, "is neither an address"),
        ("approved_protocols", "Aave V3", "'Aave V3' is not a protocol slug"),
    ],
)
def test_a_list_entry_is_validated_as_lists_add_validates_it(field, entry, message):
    """A file's list entry passes the check `allocator lists add` applies
    (`dynamic_lists.normalise`), refused with the file, the field and the entry."""
    from allocator_dagster.dynamic_lists import ListValueError, normalise

    with pytest.raises(ListValueError, match=re.escape(message)):
        normalise(field, entry)  # what `allocator lists add` says
    with pytest.raises(ParameterError) as info:
        good = "aave-v3" if field == "approved_protocols" else "USDC"
        parameters_from_mapping({field: [good, entry]}, source="PARAMS.yaml")
    assert str(info.value) == f"PARAMS.yaml: field {field!r}: entry {entry[:40]!r}: " + str(
        normalise_error(field, entry)
    )
    assert message in str(info.value)


def normalise_error(field: str, entry: str) -> Exception:
    from allocator_dagster.dynamic_lists import ListValueError, normalise

    try:
        normalise(field, entry)
    except ListValueError as exc:
        return exc
    raise AssertionError(f"{entry!r} was accepted")


def test_list_entries_are_normalised_and_every_problem_is_its_own_line():
    _, lists = parameters_from_mapping(
        {
            "icebox_tokens": ["usdc", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"],
            "approved_tokens": ["USDC", "usdc"],
        }
    )
    assert lists.icebox_tokens == ("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", "USDC")
    assert lists.approved_tokens == ("USDC",)
    with pytest.raises(ParameterError) as info:
        parameters_from_mapping(
            {
                "group2_max_pct": 3,
                "icebox_tokens": ["a b"],
                "approved_protocols": ["Aave"],
                # YAML reads an unquoted address as a number
                "blacklisted_tokens": [0xA0B86991C6218B36C1D19D4A2E9EB0CE3606EB48],
            },
            source="PARAMS.yaml",
        )
    lines = str(info.value).splitlines()
    assert [line.split(":")[1] for line in lines] == [
        " field 'group2_max_pct'",
        " field 'blacklisted_tokens'",
        " field 'approved_protocols'",
        " field 'icebox_tokens'",
    ], lines
    assert "is a number, not a token or protocol: write it in quotes" in lines[1]


def test_turnover_defaults_and_stored_snapshots():
    """New runs get the turnover control; a stored snapshot that predates its fields is read
    back with the values it was decided with (0: off), so it reproduces byte for byte."""
    from allocator_dagster.parameters import TURNOVER_FIELDS_BEFORE, stored_parameters

    fresh = AllocationParameters()
    assert (fresh.min_improvement_bps, fresh.limit_drift_pct, fresh.min_withdrawal_pct) == (
        25.0,
        0.1,
        0.0,
    )
    old = {
        k: v for k, v in fresh.model_dump(mode="json").items() if k not in TURNOVER_FIELDS_BEFORE
    }
    restored = stored_parameters(old)
    assert (restored.min_improvement_bps, restored.limit_drift_pct) == (0.0, 0.0)
    # the forecast was believed whole before forecast_credibility: costs over the full horizon
    assert (fresh.forecast_credibility, restored.forecast_credibility) == (0.4, 1.0)
    assert (fresh.credible_horizon_days(), restored.credible_horizon_days()) == (12.0, 30.0)
    assert restored.improvement_hurdle_usd(10_000_000) == restored.min_improvement_usd
    # a stored snapshot that has the fields keeps them
    assert stored_parameters(fresh.model_dump(mode="json")) == fresh


def test_improvement_hurdle_is_bps_of_capital_per_year_over_the_horizon():
    p = AllocationParameters(min_improvement_usd=50.0, min_improvement_bps=25.0)
    assert p.improvement_hurdle_usd(10_000_000) == pytest.approx(50.0 + 2_054.794520, abs=1e-6)


@pytest.mark.parametrize("field", ["limit_drift_pct", "min_withdrawal_pct"])
def test_turnover_fractions_are_checked(field):
    with pytest.raises(ParameterError, match=field):
        parameters_from_mapping({field: 1.5})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # bytes that are not UTF-8: a ParameterError, not a UnicodeDecodeError's traceback
        (b"\xff\xfemin_pools: 5\n", "params.yaml: cannot read parameters: not UTF-8 text (byte 0)"),
        # a YAML error is one line at the file's own line and column
        (
            b"min_pools: [1, 2\n",
            "params.yaml: line 2, column 1: cannot read parameters: while parsing a flow "
            "sequence: expected ',' or ']', but got '<stream end>'",
        ),
        # PyYAML keeps the last of a repeated key silently: the file decided with a value unseen
        (
            b"min_pools: 5\nmin_pools: 6\n",
            "params.yaml: line 2, column 1: cannot read parameters: 'min_pools' is given twice "
            "(first on line 1)",
        ),
        (
            b"gas_usd: {Base: 0.3, Base: 3}\n",
            "params.yaml: line 1, column 22: cannot read parameters: 'Base' is given twice "
            "(first on line 1)",
        ),
    ],
)
def test_an_unreadable_parameters_file_is_one_line_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    with pytest.raises(ParameterError) as info:
        load_parameters_file(path)
    assert str(info.value) == f"{tmp_path}/{expected}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "must be a list of values, got int 5"),
        ({"USDC": 1}, "must be a list of values, got dict {'USDC': 1}"),
    ],
)
def test_a_list_that_is_not_a_list_is_named(value, message):
    """A number was a TypeError's traceback; a mapping was taken as the list of its keys."""
    with pytest.raises(ParameterError) as info:
        parameters_from_mapping({"approved_tokens": value}, source="PARAMS.yaml")
    assert str(info.value) == f"PARAMS.yaml: field 'approved_tokens': Value error, {message}"
