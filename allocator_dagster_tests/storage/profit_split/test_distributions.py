"""A day's profit distribution is replaced atomically and adds up to the profit."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.split import SEED_SPLIT
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.activity import list_activity
from allocator_dagster.storage.schema import profit_distributions
from allocator_dagster_tests.support.profit_split import approve, propose

D = Decimal


def test_a_distribution_replaces_the_day_atomically(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    day = date(2025, 6, 1)
    amounts = {
        "reinvestment": D("80.00"),
        "dao": D("15.00"),
        "lucky": D("3.00"),
        "creator": D("2.00"),
    }
    store.write_distribution(
        engine,
        day,
        proposal_id=seed.id,
        profit_usd=D("100.00"),
        split=SEED_SPLIT,
        amounts=amounts,
        profit_source="configured",
    )
    proposal = propose(engine)
    approve(engine, proposal)
    new_amounts = {
        "reinvestment": D("7.71"),
        "dao": D("1.53"),
        "lucky": D("0.48"),
        "creator": D("0.28"),
    }
    store.write_distribution(
        engine,
        day,
        proposal_id=proposal.id,
        profit_usd=D("10.00"),
        split=proposal.split,
        amounts=new_amounts,
        profit_source="realised_yield",
    )
    rows = store.read_distribution(engine, day)
    assert [(r["category"], r["amount_usd"], r["pct"]) for r in rows] == [
        ("reinvestment", D("7.71"), D("77.10")),
        ("dao", D("1.53"), D("15.30")),
        ("lucky", D("0.48"), D("4.80")),
        ("creator", D("0.28"), D("2.80")),
    ]
    assert {r["proposal_id"] for r in rows} == {proposal.id}
    distributed = [a for a in list_activity(engine) if a.event_type == "distribution"]
    assert [a.payload["profit_usd"] for a in distributed] == ["100.00", "10.00"]
    with pytest.raises(ValueError, match="do not add up"):
        store.write_distribution(
            engine,
            day,
            proposal_id=seed.id,
            profit_usd=D("10.01"),
            split=SEED_SPLIT,
            amounts=new_amounts,
            profit_source="configured",
        )
    # A failing insert rolls the delete back: the day keeps its previous rows.
    bad = dict(new_amounts, reinvestment=D("7.71"))
    with pytest.raises(sa.exc.IntegrityError):
        store.write_distribution(
            engine,
            day,
            proposal_id=uuid.uuid4(),
            profit_usd=D("10.00"),
            split=proposal.split,
            amounts=bad,
            profit_source="configured",
        )
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(profit_distributions)).scalar()
    assert count == 4
    assert store.read_distribution(engine, day) == rows
