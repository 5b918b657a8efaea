"""The one typed model of the allocation parameters and the dynamic lists (MODEL.md, "Parameters").

Every entry point (the CLI's PARAMS.yaml, the Dagster resources, the stored snapshots) goes
through these classes, so a value is validated once and named the same everywhere.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

FRACTION_FIELDS = (
    "tvl_limit_percentage",
    "position_max_pct_pool_tvl",
    "position_max_pct_total_assets",
    "max_alloc_percentage",
    "group1_max_pct",
    "group2_max_pct",
    "group3_max_pct",
    "min_withdrawal_pct",
    "limit_drift_pct",
)

# Turnover control (MODEL.md, constraint 8 and the rebalance decision), added after snapshots
# were first stored: a stored snapshot without these fields decided without them, so it is read
# back with these values (`stored_parameters`), while new runs get the class defaults.
TURNOVER_FIELDS_BEFORE = {
    "min_withdrawal_pct": 0.0,
    "min_improvement_bps": 0.0,
    "limit_drift_pct": 0.0,
    "forecast_credibility": 1.0,
}

LIST_NAMES = ("approved_tokens", "blacklisted_tokens", "approved_protocols", "icebox_tokens")


class ParameterError(ValueError):
    """Parameters that cannot describe a valid problem; the message names the field."""


class AllocationParameters(BaseModel):
    """Parameters of MODEL.md. Fractions are in [0, 1] (0.05 means 5 %)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tvl_limit_percentage: float = 0.05
    position_max_pct_pool_tvl: float = 0.05
    position_max_pct_total_assets: float = 0.25
    max_alloc_percentage: float = 0.20
    profit_optimization: bool = False
    min_pools: int = Field(default=5, ge=0)
    min_position_usd: float = Field(default=10_000.0, ge=0)
    group1_max_pct: float = 1.0
    group2_max_pct: float = 0.5
    group3_max_pct: float = 0.2
    pool_groups: dict[str, Literal[1, 2, 3]] = Field(default_factory=dict)
    gas_usd: dict[str, float] = Field(
        default_factory=lambda: {"default": 2.0, "Ethereum": 15.0, "Arbitrum": 0.5, "Base": 0.3}
    )
    base_token: str = "USDC"
    conversion_penalty_bps: float = Field(default=5.0, ge=0)
    cost_horizon_days: int = Field(default=30, gt=0)
    min_improvement_usd: float = Field(default=50.0, ge=0)
    min_improvement_bps: float = Field(default=25.0, ge=0)
    min_withdrawal_pct: float = 0.0
    limit_drift_pct: float = 0.1
    # the share of a reallocation's forecast yield gain that is realised (MODEL.md): 0.4 is what
    # the allocator's own trades realised over 30 days on the real history of 2023-2024 at 1 M
    # USD (the lower of the 1 M and 10 M runs; docs/backtest.md)
    forecast_credibility: float = Field(default=0.4, gt=0, le=1)
    yield_model: Literal["linear", "diluted"] = "linear"
    min_tvl_usd: float = Field(default=1_000_000.0, ge=0)
    # a held pool missing from the pool data is exited only once it is missing this many days
    # in a row (`vanished.py`); until then it is held where it is
    vanished_confirmation_days: int = Field(default=3, ge=1, le=366)

    @field_validator(*FRACTION_FIELDS)
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"must be a fraction in [0, 1] (0.05 means 5 %), got {value!r}")
        return value

    @field_validator("gas_usd")
    @classmethod
    def _gas(cls, value: dict[str, float]) -> dict[str, float]:
        for chain, cost in value.items():
            if not math.isfinite(cost) or cost < 0:
                raise ValueError(f"gas cost for chain {chain!r} must be a finite USD amount >= 0")
        return value

    @field_validator(
        "min_position_usd",
        "min_tvl_usd",
        "min_improvement_usd",
        "min_improvement_bps",
        "conversion_penalty_bps",
        "forecast_credibility",
    )
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _selection_needs_minimum(self) -> AllocationParameters:
        if self.min_pools > 0 and self.min_position_usd <= 0:
            raise ValueError(
                f"min_pools={self.min_pools} needs min_position_usd > 0 (MODEL.md, constraint 6)"
            )
        return self

    def gas_for(self, chain: str) -> float | None:
        """Gas in USD for one move on `chain`, or None when neither the chain nor a default is set."""
        if chain in self.gas_usd:
            return self.gas_usd[chain]
        return self.gas_usd.get("default")

    def group_caps(self) -> tuple[float, float, float]:
        return (self.group1_max_pct, self.group2_max_pct, self.group3_max_pct)

    def credible_horizon_days(self) -> float:
        """The horizon the problem amortises costs over (MODEL.md, `forecast_credibility`):
        believing a share k of the forecast yield over H days is the same choice as amortising
        the costs over k * H days."""
        return self.cost_horizon_days * self.forecast_credibility

    def improvement_hurdle_usd(self, total_usd: float) -> float:
        """What a full reallocation must earn over yield-only across the horizon (MODEL.md):
        `min_improvement_usd` plus `min_improvement_bps` of the capital a year, for H days, so
        the hurdle grows with the capital that noise in the forecast moves."""
        per_year = self.min_improvement_bps / 10_000.0 * total_usd
        return self.min_improvement_usd + per_year * self.cost_horizon_days / 365.0


class DynamicLists(BaseModel):
    """The four dynamic lists, kept sorted so that equal lists serialise to equal bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approved_tokens: tuple[str, ...] = ()
    blacklisted_tokens: tuple[str, ...] = ()
    approved_protocols: tuple[str, ...] = ()
    icebox_tokens: tuple[str, ...] = ()

    @field_validator(*LIST_NAMES, mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            raise ValueError("must be a list of values, not a single string")
        if not isinstance(value, list | tuple | set | frozenset):  # a number, a mapping
            raise ValueError(f"must be a list of values, got {type(value).__name__} {value!r:.40}")
        out = []
        for item in value:
            if isinstance(item, int | float) and not isinstance(item, bool):
                # YAML reads an unquoted 0x… address as a number
                raise ValueError(
                    f"entry {item!r} is a number, not a token or protocol: write it in quotes "
                    "(an address as '0x…')"
                )
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"entries must be non-empty strings, got {item!r}")
            out.append(item.strip())
        return tuple(sorted(set(out)))


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data gives equal bytes (and equal hashes)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_of(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(file)"
        lines.append(f"{source}: field {field!r}: {item['msg']}")
    return "\n".join(lines)


def parameters_from_mapping(
    data: dict[str, Any], source: str = "parameters"
) -> tuple[AllocationParameters, DynamicLists]:
    """Split one mapping (PARAMS.yaml's shape) into parameters and lists, with errors naming fields."""
    if not isinstance(data, dict):
        raise ParameterError(f"{source}: expected a mapping of parameter names to values")
    list_part = {k: data[k] for k in LIST_NAMES if k in data}
    param_part = {k: v for k, v in data.items() if k not in LIST_NAMES}
    problems: list[str] = []  # every problem of the file at once, one line each
    try:
        params = AllocationParameters(**param_part)
    except ValidationError as exc:
        problems.append(_format_validation_error(source, exc))
    lists: dict[str, tuple[str, ...]] = {}
    for name, value in list_part.items():  # each list on its own: all their problems at once
        try:
            lists[name] = _checked_list(name, value, source)
        except ValidationError as exc:
            problems.append(_format_validation_error(source, exc))
        except ParameterError as exc:
            problems.append(str(exc))
    if problems:
        raise ParameterError("\n".join(problems))
    return params, DynamicLists(**lists)


def _checked_list(name: str, value: Any, source: str) -> tuple[str, ...]:
    """One list of a file with every entry validated and normalised as `allocator lists add`
    does (`dynamic_lists.normalise`: an address lower-case, a symbol upper-case), so a file
    cannot hold an entry the command would refuse; one line per bad entry, naming the entry."""
    from allocator_dagster.dynamic_lists import ListValueError, normalise

    entries = getattr(DynamicLists(**{name: value}), name)
    checked, problems = [], []
    for entry in entries:
        try:
            checked.append(normalise(name, entry))
        except ListValueError as exc:
            problems.append(f"{source}: field {name!r}: entry {entry[:40]!r}: {exc}")
    if problems:
        raise ParameterError("\n".join(problems))
    return tuple(checked)


# Every field added after snapshots were first stored, with the value a snapshot without it was
# decided with: a missing held pool was exited at once, and there was no turnover control.
FIELDS_BEFORE: dict[str, Any] = {"vanished_confirmation_days": 1, **TURNOVER_FIELDS_BEFORE}


def stored_parameters(data: dict[str, Any]) -> AllocationParameters:
    """Parameters of a stored snapshot: fields it predates take the values it was decided with
    (`FIELDS_BEFORE`), so an old day reproduces byte for byte."""
    return AllocationParameters(**{**FIELDS_BEFORE, **data})


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last
    one silently, so `min_pools: 5` then `min_pools: 6` would decide with 6 unseen."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key: the constructor says so below
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{key!r:.40} is given twice (first on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_parameters_file(path: str | Path) -> tuple[AllocationParameters, DynamicLists]:
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read parameters: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ParameterError(
            f"{path}: cannot read parameters: not UTF-8 text (byte {exc.start})"
        ) from None
    except yaml.MarkedYAMLError as exc:  # one line, at the file's own line and column
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = ": ".join(str(p) for p in (exc.context, exc.problem) if p) or "not YAML"
        raise ParameterError(f"{path}: {where}cannot read parameters: {what}") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: cannot read parameters: {exc}") from None
    return parameters_from_mapping(data, source=str(path))
