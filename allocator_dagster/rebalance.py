"""The rebalance decision of MODEL.md: one day's allocation and its report (`allocation_report`).

`decide` builds the day's problem, solves the full reallocation and, where it matters, the
yield-only variant, and chooses: `forced` when a held pool must be exited, `full` when it earns
more than the improvement hurdle over the horizon (`min_improvement_usd` plus
`min_improvement_bps` of the capital a year; or yield-only is infeasible), else
`yield-only`; `hold` when the day is infeasible (the holdings stay as they are).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TypedDict

import numpy as np
import pandas as pd

from allocator_dagster.allocation_report import AllocationReport, Decision, PoolLine
from allocator_dagster.cent_rounding import CentRoundingError, cents_exact
from allocator_dagster.model import (
    Evaluation,
    Holdings,
    Problem,
    SolveOutcome,
    SolveStatus,
    build_problem,
    diagnose,
    evaluate,
)
from allocator_dagster.parameters import AllocationParameters, DynamicLists
from allocator_dagster.report_lines import held_lines, solved_lines
from allocator_dagster.solvers import Backend, solve
from allocator_dagster.solvers.sensitivity import binding_limits


class _Common(TypedDict):
    """The report fields a day has whatever it decides."""

    backend: Backend
    total_usd: Decimal
    eligible_pools: int
    ineligible_pools: int
    ineligible_summary: dict[str, int]


def _summary(reasons: dict[str, str]) -> dict[str, int]:
    def rule(text: str) -> str:
        for key in (
            "blacklisted",
            "icebox",
            "protocol",
            "not approved",
            "min_tvl_usd",
            "APY",
            "TVL",
        ):
            if key in text:
                return {
                    "protocol": "protocol not approved",
                    "not approved": "token not approved",
                    "min_tvl_usd": "TVL below min_tvl_usd",
                    "APY": "no finite APY",
                    "TVL": "TVL not positive",
                    "blacklisted": "blacklisted token",
                    "icebox": "iceboxed token",
                }[key]
        return text

    counts: Counter[str] = Counter()
    for text, count in Counter(reasons.values()).items():  # reasons repeat: classify each once
        counts[rule(text)] += count
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _alternative(outcome: SolveOutcome, evaluation: Evaluation | None) -> dict:
    if evaluation is None:
        return {"status": outcome.status}
    return {
        "status": outcome.status,
        "objective_usd_per_day": round(evaluation.objective_usd_per_day, 6),
        "daily_yield_usd": round(evaluation.daily_yield_usd, 6),
        "costs_usd": round(evaluation.costs_usd, 6),
        "horizon_value_usd": round(evaluation.horizon_value_usd, 6),
    }


def decide(
    universe: pd.DataFrame,
    holdings: Holdings,
    params: AllocationParameters,
    lists: DynamicLists,
    backend: Backend = Backend.CONVEX,
    *,
    force_reasons: list[str] | None = None,
) -> AllocationReport:
    """One day's allocation: the decision, the amounts and every figure MODEL.md asks for.

    `force_reasons` (from a sensor) asks for a full reallocation even without a forced exit.
    """
    return decide_with_problem(
        universe, holdings, params, lists, backend, force_reasons=force_reasons
    ).report


@dataclass(frozen=True)
class DayDecision:
    """A day's report with what it was decided on: the (full) problem and ineligibility reasons,
    and the capital placed (`set_aside`), so that the caller can check the answer without
    building either again."""

    report: AllocationReport
    problem: Problem
    ineligible: dict[str, str]
    placed: Holdings


def decide_with_problem(
    universe: pd.DataFrame,
    holdings: Holdings,
    params: AllocationParameters,
    lists: DynamicLists,
    backend: Backend = Backend.CONVEX,
    *,
    force_reasons: list[str] | None = None,
    held_aside: Mapping[str, HeldAside] | None = None,
) -> DayDecision:
    """`decide`, with the problem, reasons and placed capital it was decided on (`DayDecision`).

    `held_aside` (held pools missing from the day's data, not yet confirmed vanished) are kept
    at their amount outside the problem: the rest of the capital is decided as usual, and the
    report lists them with their reason, no trade and no forecast yield.
    """
    placed, aside = set_aside(holdings, held_aside or {})
    problem, ineligible = build_problem(universe, placed, params, lists)
    report = _decide(problem, ineligible, universe, placed, params, backend, force_reasons)
    if aside:
        report = _with_held_aside(report, aside, held_aside or {}, holdings.total_usd)
    return DayDecision(report, problem, ineligible, placed)


def set_aside(holdings: Holdings, pools: Collection[str]) -> tuple[Holdings, dict[str, Decimal]]:
    """The holdings without `pools` (the capital a day places) and the held amounts of `pools`
    (kept where they are): the one split of a day's holdings around its set-aside pools."""
    if not pools:
        return holdings, {}
    aside = {p: a for p, a in holdings.held().items() if p in pools}
    positions = {p: a for p, a in holdings.positions.items() if p not in pools}
    return Holdings(positions=positions, idle_usd=holdings.idle_usd), aside


@dataclass(frozen=True)
class HeldAside:
    """A held pool kept out of the day's problem, why, and its last known chain/project/symbol."""

    reason: str
    chain: str = "?"
    project: str = "?"
    symbol: str = "?"


def _with_held_aside(
    report: AllocationReport,
    aside: Mapping[str, Decimal],
    why: Mapping[str, HeldAside],
    total: Decimal,
) -> AllocationReport:
    """The report of the placed capital, with the set-aside positions added back at their amount
    (weights over the whole capital)."""
    lines = [replace(line, weight=float(line.amount_usd / total)) for line in report.lines]
    for pool, amount in aside.items():
        held = why[pool]
        lines.append(
            PoolLine(
                pool=pool,
                chain=held.chain,
                project=held.project,
                symbol=held.symbol,
                group=None,
                tokens={"symbols": [], "addresses": []},
                amount_usd=amount,
                weight=float(amount / total),
                delta_usd=Decimal("0.00"),
                apy_used=0.0,
                daily_yield_usd=0.0,
                gas_usd=0.0,
                conversion_usd=0.0,
            )
        )
    lines.sort(key=lambda line: (-line.amount_usd, line.pool))
    reasons = list(report.reasons)
    note = "the current holdings stay in force; no new allocation is written"
    at = reasons.index(note) if note in reasons else len(reasons)
    reasons[at:at] = [why[p].reason for p in aside]
    return replace(
        report,
        lines=lines,
        reasons=reasons,
        total_usd=total,
        held_missing={p: why[p].reason for p in aside},
    )


def _decide(
    problem: Problem,
    ineligible: dict[str, str],
    universe: pd.DataFrame,
    holdings: Holdings,
    params: AllocationParameters,
    backend: Backend,
    force_reasons: list[str] | None,
) -> AllocationReport:
    total = holdings.total_usd
    common: _Common = {
        "backend": backend,
        "total_usd": total,
        "eligible_pools": problem.n,
        "ineligible_pools": len(ineligible),
        "ineligible_summary": _summary(ineligible),
    }
    if total <= 0:
        no_capital = SolveOutcome(SolveStatus.INFEASIBLE, None, backend, 0.0, message="no capital")
        return _hold(problem, no_capital, universe, holdings, common, params.pool_groups)
    full = solve(problem, backend)
    alternatives: dict[str, dict[str, float | str]] = {}
    # "feasible": a time limit stopped the search with a usable, not proven optimal, answer
    if full.x is None:
        return _hold(problem, full, universe, holdings, common, params.pool_groups)
    full_eval = evaluate(problem, full.x)
    alternatives[Decision.FULL] = _alternative(full, full_eval)
    exactness = list(full.exactness)
    seconds = full.solve_seconds
    chosen = full
    chosen_problem = problem
    reasons: list[str] = []
    if problem.forced_exits or force_reasons:
        decision = Decision.FORCED
        reasons += [f"forced exit: {e.reason}" for e in problem.forced_exits]
        reasons += [f"forced reallocation requested: {r}" for r in (force_reasons or [])]
    elif not problem.is_held.any():
        decision = Decision.FULL
        reasons.append("nothing is held yet: the whole capital is placed")
    else:
        yield_problem = problem.yield_only()
        only = solve(yield_problem, backend)
        seconds += only.solve_seconds
        if only.x is None:
            decision = Decision.FULL
            why = diagnose(yield_problem) or [f"yield-only problem is {only.status}"]
            reasons.append(
                "yield-only is infeasible, so the portfolio is reallocated: " + "; ".join(why)
            )
            alternatives[Decision.YIELD_ONLY] = {"status": only.status}
        else:
            only_eval = evaluate(yield_problem, only.x)
            alternatives[Decision.YIELD_ONLY] = _alternative(only, only_eval)
            gain = full_eval.horizon_value_usd - only_eval.horizon_value_usd
            hurdle = params.improvement_hurdle_usd(float(total))
            if gain > hurdle:
                decision = Decision.FULL
                reasons.append(
                    f"full reallocation earns {gain:,.2f} USD more over {_horizon_text(params)} "
                    f"after costs than placing only the idle cash ({_hurdle_text(params, hurdle)})"
                )
            else:
                decision = Decision.YIELD_ONLY
                chosen, chosen_problem, full_eval = only, yield_problem, only_eval
                exactness = list(only.exactness)
                reasons.append(
                    f"full reallocation would earn only {gain:,.2f} USD more over "
                    f"{_horizon_text(params)} after costs ({_hurdle_text(params, hurdle)}): "
                    f"only the idle cash of {holdings.idle_usd:,.2f} USD is placed"
                )
    x = chosen.x
    assert x is not None
    try:
        amounts = cents_exact(x, chosen_problem, total)
    except CentRoundingError as exc:
        failed = SolveOutcome(SolveStatus.FAILED, None, backend, seconds, message=str(exc))
        return _hold(problem, failed, universe, holdings, common, params.pool_groups)
    x_cents = np.array([float(a) for a in amounts])
    evaluation = evaluate(chosen_problem, x_cents)
    return AllocationReport(
        status=SolveStatus.OPTIMAL
        if chosen.status == SolveStatus.OPTIMAL
        else SolveStatus.FEASIBLE,
        decision=decision,
        reasons=reasons,
        lines=solved_lines(
            chosen_problem, amounts, evaluation, universe, total, params.pool_groups
        ),
        daily_yield_usd=evaluation.daily_yield_usd,
        gas_usd=evaluation.gas_usd,
        conversion_usd=evaluation.conversion_usd,
        objective_usd_per_day=evaluation.objective_usd_per_day,
        binding_limits=binding_limits(chosen_problem, x_cents),
        exactness=exactness,
        solve_seconds=seconds,
        alternatives=alternatives,
        **common,
    )


def _horizon_text(params: AllocationParameters) -> str:
    """The horizon of the gain, in the reason (days stored before `forecast_credibility` have
    1.0 and reproduce their wording byte for byte)."""
    text = f"{params.cost_horizon_days} days"
    if params.forecast_credibility != 1.0:
        text += f" (crediting {params.forecast_credibility:.0%} of the forecast yield)"
    return text


def _hurdle_text(params: AllocationParameters, hurdle: float) -> str:
    """The improvement a full reallocation needs, in the reason (without min_improvement_bps,
    the wording days stored before it had, so they reproduce byte for byte)."""
    text = f"min_improvement_usd {params.min_improvement_usd:,.2f}"
    if params.min_improvement_bps:
        text += (
            f" + min_improvement_bps {params.min_improvement_bps:g} of the capital = {hurdle:,.2f}"
        )
    return text


def _hold(
    problem: Problem,
    outcome: SolveOutcome,
    universe: pd.DataFrame,
    holdings: Holdings,
    common: _Common,
    overrides: Mapping[str, int],
) -> AllocationReport:
    """An infeasible or failed day: say why, keep the current holdings, allocate nothing new."""
    if outcome.status == SolveStatus.INFEASIBLE:
        why = diagnose(problem) or [
            "the limits conflict in combination (no single rule explains it); solver: "
            + (outcome.message or "infeasible")
        ]
        reasons = [f"infeasible: {w}" for w in why]
    else:
        reasons = [f"solver {outcome.backend} failed: {outcome.message or outcome.status}"]
    if problem.forced_exits:
        reasons += [f"pending forced exit (not executed): {e.reason}" for e in problem.forced_exits]
    reasons.append("the current holdings stay in force; no new allocation is written")
    lines = held_lines(holdings, universe, overrides)
    return AllocationReport(
        status=SolveStatus.INFEASIBLE
        if outcome.status == SolveStatus.INFEASIBLE
        else SolveStatus.FAILED,
        decision=Decision.HOLD,
        reasons=reasons,
        lines=lines,
        daily_yield_usd=0.0,
        gas_usd=0.0,
        conversion_usd=0.0,
        objective_usd_per_day=0.0,
        binding_limits=[],
        exactness=list(outcome.exactness),
        solve_seconds=outcome.solve_seconds,
        **common,
    )
