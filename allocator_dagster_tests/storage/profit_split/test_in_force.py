"""The split in force: the seed is created once, also when first runs race."""

from __future__ import annotations

import threading
import uuid

import sqlalchemy as sa

from allocator_dagster.profit_split.split import SEED_SPLIT
from allocator_dagster.storage import profit_split as store
from allocator_dagster_tests.support.profit_split import events, statuses


def test_the_seed_split_is_created_once(engine: sa.Engine) -> None:
    assert store.active_split(engine) is None
    seed = store.ensure_active_split(engine)
    assert seed.status == "active" and seed.proposer == "seed" and seed.split == SEED_SPLIT
    assert seed.proposed_by == "system" and seed.reviewed_by == "system"
    assert seed.effective_from == store.SEED_EFFECTIVE_FROM and seed.effective_until is None
    assert store.ensure_active_split(engine).id == seed.id
    assert len(statuses(engine)) == 1
    assert events(engine) == [("activation", "system", str(seed.id))]


def test_concurrent_seeding_leaves_one_seed(engine: sa.Engine) -> None:
    results: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def seed() -> None:
        try:
            results.append(store.ensure_active_split(engine).id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=seed) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(set(results)) == 1 and len(statuses(engine)) == 1
