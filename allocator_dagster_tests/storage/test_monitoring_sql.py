"""Each monitoring query of sql/monitoring runs against the real PostgreSQL and returns exact rows.

The history is built through the storage API (as the graph and the CLI would), with times set
relative to the database's clock so the 30-day windows are deterministic.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.policy import AUTO_APPROVE_REVIEWER, Proposal
from allocator_dagster.profit_split.split import Split
from allocator_dagster.storage import profit_split as store

D = Decimal
SQL_DIR = Path(__file__).resolve().parents[2] / "sql" / "monitoring"
QUERIES = {
    "current_active_split",
    "split_history",
    "pending_proposals",
    "changes_over_time",
    "avg_ai_confidence_30d",
    "approval_rate",
    "current_vs_30d_average",
}
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def run(engine: sa.Engine, name: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text((SQL_DIR / f"{name}.sql").read_text()))]


class History:
    """seed -> P2 (rules, auto-approved 20 days ago) -> P3 (llm, approved 10 days ago, active);
    P4 rejected 39 days ago; P5 (rules, LLM fallback) and P6 (manual) pending."""

    def __init__(self, engine: sa.Engine) -> None:
        with engine.connect() as conn:
            self.now: datetime = conn.execute(sa.text("SELECT now()")).scalar_one()
        self.engine = engine
        self.seed = store.ensure_active_split(engine)
        self.p2 = self._propose("rules", "rules-proposer", (78, 15, 4, 3), "0.800", days_ago=25)
        self.p3 = self._propose("llm", "llm:m", (77, 16, 4, 3), "0.900", days_ago=12)
        self.p4 = self._propose("rules", "rules-proposer", (70, 20, 6, 4), "0.500", days_ago=40)
        self.p5 = self._propose(
            "rules", "rules-proposer", (76, 16, 5, 3), "0.700", days_ago=5, fallback="HTTP 500"
        )
        self.p6 = self._propose("manual", "erin", (79, 15, 4, 2), "1.000", days_ago=1)
        self._review(self.p4, False, "bob", days_ago=39)
        self._review(self.p2, True, AUTO_APPROVE_REVIEWER, days_ago=20)
        self._review(self.p3, True, "carol", days_ago=10)

    def ago(self, days: int) -> datetime:
        return self.now - timedelta(days=days)

    def _propose(
        self,
        proposer: str,
        by: str,
        split: tuple[int, ...],
        confidence: str,
        days_ago: int,
        fallback: str | None = None,
    ) -> int:
        proposal = Proposal(
            Split(*(D(v) for v in split)), D(confidence), True, f"by {by}", proposer, fallback
        )
        return store.store_proposal(
            self.engine,
            proposal,
            proposal_date=self.ago(days_ago).date(),
            proposed_by=by,
            input_metrics={},
            created_at=self.ago(days_ago),
        ).proposal_id

    def _review(self, proposal_id: int, approve: bool, by: str, days_ago: int) -> None:
        store.review_proposal(
            self.engine, proposal_id, approve=approve, by=by, notes="", now=self.ago(days_ago)
        )


@pytest.fixture
def history(engine: sa.Engine) -> History:
    return History(engine)


def test_every_query_file_is_tested() -> None:
    assert {p.stem for p in SQL_DIR.glob("*.sql")} == QUERIES


@on_postgresql
def test_current_active_split(history: History) -> None:
    h = history
    assert run(h.engine, "current_active_split") == [
        (h.p3, D(77), D(16), D(4), D(3), "llm", "llm:m", "carol", h.ago(10), h.ago(10), D("0.9"))
    ]


@on_postgresql
def test_split_history(history: History) -> None:
    h = history
    rows = [row[:8] + (row[10],) for row in run(h.engine, "split_history")]
    assert rows == [
        (
            h.seed.proposal_id,
            "superseded",
            store.SEED_EFFECTIVE_FROM,
            h.ago(20),
            D(80),
            D(15),
            D(3),
            D(2),
            None,
        ),
        (h.p2, "superseded", h.ago(20), h.ago(10), D(78), D(15), D(4), D(3), AUTO_APPROVE_REVIEWER),
        (h.p3, "active", h.ago(10), None, D(77), D(16), D(4), D(3), "carol"),
    ]


@on_postgresql
def test_pending_proposals(history: History) -> None:
    h = history
    rows = run(h.engine, "pending_proposals")
    assert [(r[0], r[2], r[3], r[4], r[12]) for r in rows] == [
        (h.p5, h.ago(5), "rules", "rules-proposer", "HTTP 500"),
        (h.p6, h.ago(1), "manual", "erin", None),
    ]
    assert [r[-4:] for r in rows] == [(D(-1), D(0), D(1), D(0)), (D(2), D(-1), D(0), D(-1))]


@on_postgresql
def test_changes_over_time(history: History) -> None:
    h = history
    rows = run(h.engine, "changes_over_time")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (h.seed.proposal_id, store.SEED_EFFECTIVE_FROM, None),
        (h.p2, h.ago(20), AUTO_APPROVE_REVIEWER),
        (h.p3, h.ago(10), "carol"),
    ]
    assert [r[7:] for r in rows] == [
        (None, None, None, None, None),
        (D(-2), D(0), D(1), D(1), D(2)),
        (D(-1), D(1), D(0), D(0), D(1)),
    ]


@on_postgresql
def test_avg_ai_confidence_30d(history: History) -> None:
    # P4 (40 days old) is outside the window; manual and seed rows are not AI proposals.
    assert run(history.engine, "avg_ai_confidence_30d") == [
        ("llm", 1, D("0.900"), D("0.900"), D("0.900"), 0),
        ("rules", 2, D("0.750"), D("0.700"), D("0.800"), 1),
    ]


@on_postgresql
def test_approval_rate(history: History) -> None:
    assert run(history.engine, "approval_rate") == [
        ("llm", 1, 1, 1, 0, 0, 0, D("1.000")),
        ("manual", 1, 0, 0, 0, 1, 0, None),
        ("rules", 3, 2, 1, 1, 1, 1, D("0.500")),
        ("all", 5, 3, 2, 1, 2, 1, D("0.667")),
    ]


@on_postgresql
def test_current_vs_30d_average(history: History) -> None:
    # Ten days each of 80/15/3/2, 78/15/4/3 and 77/16/4/3 in the last 30 days.
    assert run(history.engine, "current_vs_30d_average") == [
        ("reinvestment", D(77), D("78.33"), D("-1.33")),
        ("dao", D(16), D("15.33"), D("0.67")),
        ("lucky", D(4), D("3.67"), D("0.33")),
        ("creator", D(3), D("2.67"), D("0.33")),
    ]


@on_postgresql
def test_queries_on_an_empty_log(engine: sa.Engine) -> None:
    assert run(engine, "current_active_split") == []
    assert run(engine, "pending_proposals") == []
    assert run(engine, "approval_rate") == [("all", 0, 0, 0, 0, 0, 0, None)]
    assert run(engine, "current_vs_30d_average") == []
