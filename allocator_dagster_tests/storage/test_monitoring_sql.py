"""The specification's operator queries (sql/monitoring) run verbatim on PostgreSQL after a
realistic history and give the meaning the specification documents.

The history is built through the storage API (as the graph and the CLI would), with times set
relative to the database's clock so the 30-day windows are deterministic.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.policy import Proposal
from allocator_dagster.profit_split.split import Split
from allocator_dagster.storage import profit_split as store

D = Decimal
SQL_DIR = Path(__file__).resolve().parents[2] / "sql" / "monitoring"
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

# The queries exactly as the specification ("Profit Rebalancer - Dynamic Allocation Manager",
# sections "Query Examples" and "Monitoring") prints them; each file holds one, after comments.
SPECIFICATION = {
    "current_active_allocation": """SELECT * FROM profit_allocation_log
WHERE status = 'active'
ORDER BY effective_from DESC
LIMIT 1;""",
    "allocation_history": """SELECT 
  timestamp,
  status,
  proposed_by,
  reinvestment_pct || '/' || dao_pct || '/' || lucky_pct || '/' || creator_pct as split,
  reasoning,
  confidence
FROM profit_allocation_log
ORDER BY timestamp DESC
LIMIT 20;""",
    "pending_proposals": """SELECT * FROM profit_allocation_log
WHERE status = 'proposed'
ORDER BY timestamp DESC;""",
    "allocation_changes_over_time": """SELECT 
  DATE(effective_from) as date,
  reinvestment_pct,
  dao_pct,
  lucky_pct,
  creator_pct
FROM profit_allocation_log
WHERE status = 'active'
ORDER BY effective_from;""",
    "avg_ai_confidence_30d": """SELECT AVG(confidence) FROM profit_allocation_log
WHERE proposed_by = 'ai' AND timestamp > now() - interval '30 days';""",
    "approval_rate_30d": """SELECT 
  COUNT(*) FILTER (WHERE status = 'active') * 100.0 / COUNT(*) as approval_rate
FROM profit_allocation_log
WHERE proposed_by = 'ai' AND timestamp > now() - interval '30 days';""",
    "current_vs_30d_average": """SELECT 
  'current' as period,
  reinvestment_pct, dao_pct, lucky_pct, creator_pct
FROM profit_allocation_log
WHERE status = 'active'
UNION ALL
SELECT 
  '30d_avg',
  AVG(reinvestment_pct), AVG(dao_pct), AVG(lucky_pct), AVG(creator_pct)
FROM profit_allocation_log
WHERE status = 'active' AND effective_from > now() - interval '30 days';""",
}


def query_text(name: str) -> str:
    """The file's query: its lines after the leading comment lines."""
    lines = (SQL_DIR / f"{name}.sql").read_text().splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip()


def run(engine: sa.Engine, name: str) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text((SQL_DIR / f"{name}.sql").read_text())))


def test_the_files_hold_the_specifications_queries_verbatim() -> None:
    assert {p.stem for p in SQL_DIR.glob("*.sql")} == set(SPECIFICATION)
    for name, text in SPECIFICATION.items():
        assert query_text(name) == text, name


class History:
    """seed (60 days ago) -> P1 (ai, approved 20 days ago) -> P2 (ai, approved 10 days ago,
    in force). P3 (ai, 40 days ago) rejected; P7 (ai, against P1) closed as stale when P2 took
    effect; P4 (ai) and P6 (manual) pending; P5 (the rules, i.e. system) rejected."""

    def __init__(self, engine: sa.Engine) -> None:
        with engine.connect() as conn:
            self.now: datetime = conn.execute(sa.text("SELECT now()")).scalar_one()
        self.engine = engine
        self.seed = store.ensure_active_split(engine, now=self.ago(60))
        self.p3 = self._propose("llm", (70, 20, 6, 4), "0.5", 40, self.seed)
        self._review(self.p3, False, "bob", 39)
        self.p1 = self._propose("llm", (78, 15, 4, 3), "0.8", 25, self.seed)
        self._review(self.p1, True, "carol", 20)
        self.p7 = self._propose("llm", (79, 15, 4, 2), "0.7", 15, self.p1)
        self.p2 = self._propose("llm", (77, 16, 4, 3), "0.9", 12, self.p1)
        self._review(self.p2, True, "dave", 10)
        self.p4 = self._propose("llm", (76, 17, 4, 3), "0.6", 5, self.p2)
        self.p5 = self._propose("rules", (76, 16, 5, 3), "0.7", 3, self.p2)
        self._review(self.p5, False, "dave", 2)
        self.p6 = self._propose("manual", (77, 15, 5, 3), "1", 1, self.p2)

    def ago(self, days: int) -> datetime:
        return self.now - timedelta(days=days)

    def _propose(
        self, proposer: str, split: tuple[int, ...], confidence: str, days_ago: int, based_on
    ) -> store.StoredProposal:
        proposal = Proposal(
            Split(*(D(v) for v in split)), D(confidence), True, f"{proposer} {split}", proposer
        )
        return store.store_proposal(
            self.engine,
            proposal,
            proposal_date=self.ago(days_ago).date(),
            proposer_name="erin" if proposer == "manual" else f"{proposer}-proposer",
            input_metrics={"current_proposal_id": str(based_on.id)},
            based_on=based_on,
            created_at=self.ago(days_ago),
        )

    def _review(self, proposal, approve: bool, by: str, days_ago: int) -> None:
        store.review_proposal(
            self.engine, proposal.id, approve=approve, by=by, now=self.ago(days_ago)
        )

    def date_of(self, moment: datetime) -> date:
        """DATE() of a moment in the database session's time zone, as the query computes it."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT DATE(CAST(:t AS timestamptz))"), {"t": moment}
            ).scalar_one()


@pytest.fixture
def history(engine: sa.Engine) -> History:
    return History(engine)


@on_postgresql
def test_current_active_allocation_is_the_split_in_force(history: History) -> None:
    (row,) = run(history.engine, "current_active_allocation")
    assert row.id == history.p2.id and row.effective_until is None
    assert (row.reinvestment_pct, row.dao_pct, row.lucky_pct, row.creator_pct) == (77, 16, 4, 3)
    assert row.reviewed_by == "dave" and row.proposed_by == "ai"


@on_postgresql
def test_allocation_history(history: History) -> None:
    rows = run(history.engine, "allocation_history")
    assert [(r.status, r.proposed_by, r.split, r.confidence) for r in rows] == [
        ("proposed", "manual", "77/15/5/3", D(1)),
        ("rejected", "system", "76/16/5/3", D("0.7")),
        ("proposed", "ai", "76/17/4/3", D("0.6")),
        ("active", "ai", "77/16/4/3", D("0.9")),
        ("rejected", "ai", "79/15/4/2", D("0.7")),  # closed as stale by P2's activation
        ("active", "ai", "78/15/4/3", D("0.8")),
        ("rejected", "ai", "70/20/6/4", D("0.5")),
        ("active", "system", "80/15/3/2", D(1)),
    ]
    assert [r.timestamp for r in rows] == [history.ago(d) for d in (1, 3, 5, 12, 15, 25, 40, 60)]
    assert rows[-1].reasoning == store.SEED_REASONING


@on_postgresql
def test_pending_proposals(history: History) -> None:
    rows = run(history.engine, "pending_proposals")
    assert [r.id for r in rows] == [history.p6.id, history.p4.id]
    assert all(r.based_on_id == history.p2.id for r in rows)


@on_postgresql
def test_allocation_changes_over_time_lists_every_split_in_force(history: History) -> None:
    rows = run(history.engine, "allocation_changes_over_time")
    assert [tuple(r) for r in rows] == [
        (store.SEED_EFFECTIVE_FROM.date(), 80, 15, 3, 2),
        (history.date_of(history.ago(20)), 78, 15, 4, 3),
        (history.date_of(history.ago(10)), 77, 16, 4, 3),
    ]


@on_postgresql
def test_average_ai_confidence_over_30_days(history: History) -> None:
    # P1 0.8, P7 0.7, P2 0.9, P4 0.6: P3 is older than 30 days, P5 is the rules', P6 a person's
    (row,) = run(history.engine, "avg_ai_confidence_30d")
    assert row[0] == D("0.75")


@on_postgresql
def test_approval_rate_over_30_days(history: History) -> None:
    # two of the four AI proposals of the last 30 days took effect (P1 replaced since, P2 in force)
    (row,) = run(history.engine, "approval_rate_30d")
    assert row.approval_rate == D(50)


@on_postgresql
def test_current_vs_30_day_average(history: History) -> None:
    rows = run(history.engine, "current_vs_30d_average")
    current = sorted(tuple(r)[1:] for r in rows if r.period == "current")
    assert current == [(77, 16, 4, 3), (78, 15, 4, 3), (80, 15, 3, 2)]  # every split in force
    (average,) = [tuple(r)[1:] for r in rows if r.period == "30d_avg"]
    assert average == (D("77.5"), D("15.5"), D(4), D(3))


@on_postgresql
def test_the_queries_on_a_fresh_log(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    assert [r.id for r in run(engine, "current_active_allocation")] == [seed.id]
    assert [r.split for r in run(engine, "allocation_history")] == ["80/15/3/2"]
    assert run(engine, "pending_proposals") == []
    assert run(engine, "avg_ai_confidence_30d")[0][0] is None
