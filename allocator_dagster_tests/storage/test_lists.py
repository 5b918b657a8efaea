"""The dynamic lists as stored: values validated and normalised, refused changes leave no history."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from allocator_dagster.storage import get_engine
from allocator_dagster.storage.lists import ListChangeError, change_list, list_entries
from allocator_dagster.storage.schema import dynamic_list_changes


def test_list_values_are_validated_and_stored_safely(database_url: str) -> None:
    engine = get_engine(database_url)
    change_list(
        engine,
        "blacklisted_tokens",
        "O'REILLY\"",
        action="add",
        reason="quotes; and ' marks",
        by="x",
    )
    change_list(engine, "blacklisted_tokens", "USD₮0", action="add", reason="non-ASCII", by="x")
    change_list(
        engine,
        "blacklisted_tokens",
        "0xDC035D45D973E3EC169D2276DDAB16F1E407384F",
        action="add",
        reason="r",
        by="x",
    )
    values = [r["value"] for r in list_entries(engine, "blacklisted_tokens")]
    assert values == sorted(["O'REILLY\"", "USD₮0", "0xdc035d45d973e3ec169d2276ddab16f1e407384f"])
    for bad_list, bad in [
        ("blacklisted_tokens", "USDC-USDT"),
        ("blacklisted_tokens", "a b"),
        ("approved_protocols", "Aave V3"),
        ("approved_protocols", "x;DROP TABLE"),
    ]:
        with pytest.raises(ListChangeError):
            change_list(engine, bad_list, bad, action="add", reason="r", by="x")
    with pytest.raises(ListChangeError, match="already"):
        change_list(engine, "blacklisted_tokens", "usd₮0", action="add", reason="r", by="x")
    with pytest.raises(ListChangeError, match="not in"):
        change_list(engine, "icebox_tokens", "USDC", action="remove", reason="r", by="x")
    with engine.connect() as conn:  # refused changes leave no history
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(dynamic_list_changes)).scalar_one()
            == 3
        )
