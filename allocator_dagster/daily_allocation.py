"""One day of the allocation chain, without Dagster: balances -> snapshot -> solve -> store.

The Dagster assets call `run_day` for each partition in date order; tests and the benchmark call
it directly. Reproduce mode (the default) solves from the snapshot the day already has, so a
backfill gives the same `result_hash`; fresh mode takes a new snapshot of today's parameters and
lists ("what would we do today with that day's data").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal, get_args

import pandas as pd
import sqlalchemy as sa

from allocator_dagster.allocation_report import AllocationReport
from allocator_dagster.day_balances import (
    BALANCES_SOURCES,
    OBSERVED_ROWS,
    BalancesSource,
    start_balances,
)
from allocator_dagster.day_decision import decide_day, held_aside_for
from allocator_dagster.day_payouts import (
    DayInputError,
    PayoutRule,
    expected_holdings,
    paper_ledger,
    payout_split,
)
from allocator_dagster.integrity import verify_stored_day
from allocator_dagster.model import Holdings
from allocator_dagster.parameters import AllocationParameters
from allocator_dagster.payouts import Payout, pay_out
from allocator_dagster.rebalance import HeldAside
from allocator_dagster.reconciliation import DriftTolerance, Reconciliation, reconcile
from allocator_dagster.snapshots import Snapshot, hash_holdings, hash_universe, take_snapshot
from allocator_dagster.solvers import Backend, solver_versions, to_backend
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.lists import read_lists
from allocator_dagster.storage.pool_listings import listings_before
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster.universe_hash import universe_matches
from allocator_dagster.vanished import unlisted_held

# reproduce: solve from the snapshot the day already has; fresh: snapshot today's parameters.
SnapshotPolicy = Literal["reproduce", "fresh"]
SNAPSHOT_POLICIES: tuple[SnapshotPolicy, ...] = get_args(SnapshotPolicy)
SnapshotUsed = Literal["new", "stored"]
StoredDay = Literal["new", "identical", "replaced", "kept"]


@dataclass(frozen=True)
class AllocationSettings:
    """Configuration of the chain (the Dagster resource builds one)."""

    parameters: AllocationParameters
    backend: Backend = Backend.CONVEX
    initial_capital_usd: Decimal = Decimal("10000000.00")
    paper_trading: bool = True
    balances_source: BalancesSource = "paper"
    drift_tolerance: DriftTolerance = field(default_factory=lambda: DriftTolerance())

    def __post_init__(self) -> None:
        if self.balances_source not in BALANCES_SOURCES:
            raise ValueError(
                f"balances source must be one of {BALANCES_SOURCES}, got {self.balances_source!r}"
            )
        object.__setattr__(self, "backend", to_backend(self.backend))


@dataclass
class DayOutcome:
    day: dt.date
    report: AllocationReport
    snapshot: Snapshot
    snapshot_used: SnapshotUsed
    universe: pd.DataFrame
    holdings: Holdings
    previous_hash: str | None
    inputs_match_snapshot: bool
    next_holdings: Holdings | None
    limit_violations: list[str] = field(default_factory=list)
    written: bool = True
    # observed (imported) holdings against yesterday's plan; None on paper or without a plan
    reconciliation: Reconciliation | None = None
    # the shares of the day's profit that left the treasury (None: a day stored before payouts)
    payout: Payout | None = None

    @property
    def hash_matched(self) -> bool | None:
        return None if self.previous_hash is None else self.previous_hash == self.report.result_hash

    @property
    def stored_day(self) -> StoredDay:
        """What the run did to the day's stored allocation, for the operator who re-runs days:
        `new` (none before), `identical` (reproduced from its stored snapshot, the same result
        hash), `replaced` (a fresh snapshot, or a recomputation the operator accepted), `kept`
        (the re-run differed or the stored day failed its hashes: only the attempt is recorded)."""
        if self.previous_hash is None:
            return "new"
        if not self.written:
            return "kept"
        if self.snapshot_used == "stored" and self.hash_matched:
            return "identical"
        return "replaced"


def run_day(
    engine: sa.Engine,
    day: dt.date,
    settings: AllocationSettings,
    *,
    snapshot_policy: SnapshotPolicy = "reproduce",
    force_reasons: list[str] | None = None,
    successor_in_run: bool = False,
    accept_recomputation: bool = False,
) -> DayOutcome:
    """Run the chain for `day` and store the result in one transaction.

    Reproduce mode never rewrites history: when the day already has an allocation and the
    re-run gives another result, or the stored day fails its integrity check (`integrity`: its
    snapshot, inputs or detail rows no longer match their hashes), only the attempt is
    recorded (the checks then fail) and the stored records stay as evidence.
    `accept_recomputation` is the operator's decision to replace them: the day is decided again
    from the snapshot's parameters and lists as stored now, on the inputs as stored now, under a
    new snapshot. A fresh (or accepted, changed) re-run of a day whose next day already has an
    allocation must include that next day (`successor_in_run`), or the later days would no
    longer match their balances.
    """
    if snapshot_policy not in SNAPSHOT_POLICIES:
        raise ValueError(
            f"snapshot policy must be one of {SNAPSHOT_POLICIES}, got {snapshot_policy!r}"
        )
    universe = _pool_day(engine, day)
    observed = settings.balances_source in OBSERVED_ROWS
    expected = expected_holdings(engine, day) if observed else None
    split = payout_split(engine, day)  # its own transaction: not inside the day's
    with engine.begin() as conn:
        holdings = start_balances(
            conn,
            day,
            settings.balances_source,
            paper_trading=settings.paper_trading,
            initial_capital_usd=settings.initial_capital_usd,
        )
        stored = store.snapshot_in_force(conn, day) if snapshot_policy == "reproduce" else None
        previous = store.read_allocation(conn, day)
        if snapshot_policy == "fresh" and not successor_in_run:
            _refuse_orphaning_the_next_day(conn, day)
        if (
            previous is None
            and not observed
            and snapshot_policy == "reproduce"
            and not (accept_recomputation and successor_in_run)
        ):
            _refuse_moving_the_next_day(conn, day)
        if force_reasons is None and snapshot_policy == "reproduce" and previous is not None:
            # a day forced by the sensor is reproduced with the same reasons
            force_reasons = (previous.report.get("reproduction") or {}).get("force_reasons") or None
        metrics_hash = hash_universe(universe)
        snapshot, snapshot_used, inputs_match = _snapshot_for(
            conn, day, settings, universe, holdings, stored, snapshot_policy, metrics_hash
        )
        integrity = []
        if snapshot_policy == "reproduce" and previous is not None:
            found = verify_stored_day(conn, day, universe, holdings, metrics_hash=metrics_hash)
            integrity = [p.message for p in found]
        if integrity and accept_recomputation:  # the operator adopts what is stored now
            snapshot = replace(
                take_snapshot(
                    day,
                    snapshot.parameters,
                    snapshot.lists,
                    universe,
                    holdings,
                    mode=snapshot.mode,
                    solver_versions=snapshot.solver_versions,
                    metrics_hash=metrics_hash,
                ),
                snapshot_id=None,
            )
            snapshot_used, inputs_match = "new", True
        aside = _held_aside(conn, day, universe, holdings, snapshot.parameters)
        report, problems = _solve(
            day, universe, holdings, snapshot, settings, force_reasons, held_aside=aside
        )
        if snapshot.snapshot_id is None:
            snapshot = replace(snapshot, snapshot_id=store.save_snapshot(conn, snapshot))
        previous_hash = previous.result_hash if previous else None
        reproduction = {
            "policy": snapshot_policy,
            "snapshot_used": snapshot_used,
            "previous_hash": previous_hash,
            "matched": None if previous is None else previous.result_hash == report.result_hash,
            "inputs_match_snapshot": inputs_match,
            "force_reasons": list(force_reasons or []),
        }
        if integrity:
            reproduction["integrity"] = integrity
        if accept_recomputation and (integrity or reproduction["matched"] is False):
            reproduction["accepted"] = True
            if not successor_in_run and reproduction["matched"] is False:
                _refuse_orphaning_the_next_day(conn, day)
        outcome = DayOutcome(
            day=day,
            report=report,
            snapshot=snapshot,
            snapshot_used=snapshot_used,
            universe=universe,
            holdings=holdings,
            previous_hash=previous_hash,
            inputs_match_snapshot=inputs_match,
            next_holdings=None,
            limit_violations=problems,
            reconciliation=None if expected is None else reconcile(expected, holdings),
        )
        recorded = None if previous is None or snapshot_policy == "fresh" else previous.report
        return _store(conn, outcome, settings, reproduction, PayoutRule(split, recorded))


def _pool_day(engine: sa.Engine, day: dt.date) -> pd.DataFrame:
    """The day's stored pool universe; a day without one cannot run."""
    universe = load_pool_day(engine, day)
    if universe.empty:
        raise DayInputError(
            f"no pool metrics stored for {day}: materialise pool_daily_metrics for {day} first"
        )
    return universe


def _refuse_orphaning_the_next_day(conn: sa.Connection, day: dt.date) -> None:
    """A fresh (or accepted) re-run alone would change balances the next day started from."""
    if (following := _allocated_next_day(conn, day)) is not None:
        raise DayInputError(
            f"a fresh re-run of {day} changes the balances of {following}, which "
            f"already has an allocation: re-run {day} together with the days after it (a range up "
            "to the last allocated day), or use snapshot=reproduce"
        )


def _refuse_moving_the_next_day(conn: sa.Connection, day: dt.date) -> None:
    """A new day on the paper ledger becomes the next day's start: a stored next day would no
    longer reproduce, and would be kept on balances it was not decided on (a range extended
    back before the first stored day, from the UI as from the CLI)."""
    if (following := _allocated_next_day(conn, day)) is not None:
        raise DayInputError(moved_day_message(following))


def _allocated_next_day(conn: sa.Connection, day: dt.date) -> dt.date | None:
    """The day after `day` when it has a stored allocation (its start came from `day`)."""
    following = day + dt.timedelta(days=1)
    return following if store.allocated_days(conn, following, following) else None


def moved_day_message(stored: dt.date, more: int = 0) -> str:
    """Why a new day right before the stored day `stored` is refused, and what to do instead."""
    others = f" (and {more} more stored day(s))" if more else ""
    return (
        f"{stored} is stored, decided on the start balances it had; deciding "
        f"{stored - dt.timedelta(days=1)} first would change them (the paper ledger carries each "
        f"day into the next){others}, so it would no longer reproduce: choose a range that starts "
        f"on {stored} or later, or decide the stored days again from the new start, in the same "
        "range, with accept_recomputation (their snapshots' parameters and lists; `allocator run "
        "--accept-recomputation`) or snapshot=fresh (today's; `--fresh-snapshots`)"
    )


def stored_days_moved_by(engine: sa.Engine, days: list[dt.date]) -> list[dt.date]:
    """The stored days whose start balances a paper run of `days` (reproduce mode) would
    change: each stored day right after a day of the range that has no allocation yet, such as
    the first stored day when a range is extended back before it. The new day's paper ledger
    becomes that day's start, so it no longer reproduces: it is kept as it was decided, on
    balances it was not decided on (its checks then fail)."""
    if not days:
        return []
    with engine.connect() as conn:
        stored = set(store.allocated_days(conn, days[0], days[-1] + dt.timedelta(days=1)))
    one = dt.timedelta(days=1)
    return [day + one for day in days if day not in stored and day + one in stored]


def _snapshot_for(
    conn: sa.Connection,
    day: dt.date,
    settings: AllocationSettings,
    universe: pd.DataFrame,
    holdings: Holdings,
    stored: Snapshot | None,
    snapshot_policy: SnapshotPolicy,
    metrics_hash: str,
) -> tuple[Snapshot, SnapshotUsed, bool]:
    """(snapshot, "new" or "stored", whether today's inputs are the snapshot's inputs);
    `metrics_hash` is `hash_universe(universe)`."""
    snapshot_used: SnapshotUsed
    if stored is None:
        versions = {"backend": settings.backend.value, **solver_versions()}  # plain data
        snapshot = take_snapshot(
            day,
            settings.parameters,
            read_lists(conn),
            universe,
            holdings,
            mode="original" if snapshot_policy == "reproduce" else "fresh",
            solver_versions=versions,
            metrics_hash=metrics_hash,
        )
        snapshot_used = "new"
    else:
        snapshot, snapshot_used = stored, "stored"
    inputs_match = snapshot.balances_hash == hash_holdings(holdings) and universe_matches(
        universe, snapshot.metrics_hash, computed=metrics_hash
    )  # a snapshot of either hash scheme (`universe_hash`)
    return snapshot, snapshot_used, inputs_match


def _solve(
    day: dt.date,
    universe: pd.DataFrame,
    holdings: Holdings,
    snapshot: Snapshot,
    settings: AllocationSettings,
    force_reasons: list[str] | None,
    *,
    held_aside: dict[str, HeldAside] | None = None,
) -> tuple[AllocationReport, list[str]]:
    """The decision under the snapshot's parameters and lists (`decide_day`)."""
    backend = Backend(snapshot.solver_versions.get("backend", settings.backend))
    report = decide_day(
        day,
        universe,
        holdings,
        snapshot.parameters,
        snapshot.lists,
        backend,
        force_reasons=force_reasons,
        held_aside=held_aside,
    )
    return report, []


def _held_aside(
    conn: sa.Connection,
    day: dt.date,
    universe: pd.DataFrame,
    holdings: Holdings,
    params: AllocationParameters,
) -> dict[str, HeldAside]:
    """`held_aside_for` with the earlier days' listings read from the stored pool days: the
    unlisted held pools are found once, for both."""
    unlisted = unlisted_held(holdings.held(), universe["pool"].tolist())
    if not unlisted:
        return {}
    n = params.vanished_confirmation_days
    earlier, seen = listings_before(conn, day, list(unlisted), n - 1)
    return held_aside_for(day, unlisted, params, earlier, seen)


def _store(
    conn: sa.Connection,
    outcome: DayOutcome,
    settings: AllocationSettings,
    reproduction: dict,
    rule: PayoutRule,
) -> DayOutcome:
    """Write the allocation with the day's payout and, on paper, the next day's balances.

    In reproduce mode a result that differs from the stored one is only recorded: the stored
    record (and the next day's ledger) stay as they are.
    """
    day, report = outcome.day, outcome.report
    snapshot_id = outcome.snapshot.snapshot_id
    if snapshot_id is None:  # `run_day` saves a new snapshot before it stores the day
        raise RuntimeError(f"{day}: the snapshot was not saved before the allocation")
    refused = reproduction["matched"] is False or reproduction.get("integrity")
    if reproduction["policy"] == "reproduce" and refused and not reproduction.get("accepted"):
        store.record_reproduction(conn, day, {**reproduction, "attempted_hash": report.result_hash})
        return replace(outcome, written=False)
    gross = paper_ledger(outcome.universe, outcome.holdings, report)
    payout = rule.payout(gross.total_usd - outcome.holdings.total_usd)
    extra: dict[str, object] = {"reproduction": reproduction}
    if payout is not None:
        extra["payout"] = payout.as_dict()
    store.write_allocation(conn, day, report, snapshot_id, extra=extra)
    outcome = replace(outcome, payout=payout)
    if not settings.paper_trading or settings.balances_source in OBSERVED_ROWS:
        return outcome  # the next day starts from what the treasury really holds
    next_holdings = gross if payout is None else pay_out(gross, payout.paid_usd)
    store.write_holdings(conn, day + dt.timedelta(days=1), next_holdings, source="paper")
    return replace(outcome, next_holdings=next_holdings)
