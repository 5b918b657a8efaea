"""What `allocator run`'s footer says a run did to its days, from what each day recorded."""

from __future__ import annotations

from allocator_dagster.cli.run_days import allocation_summary, profit_split_summary


def _days(*records: tuple[str, bool | None]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for k, (stored, matched) in enumerate(records):
        meta: dict[str, object] = {"stored_day": stored}
        if matched is not None:
            meta["hash_matched"] = matched
        out[f"2026-05-{k + 1:02d}"] = meta
    return out


def test_thirty_identical_days() -> None:
    days = _days(*[("identical", True)] * 30)
    assert allocation_summary(days, fresh=False, accepted=False) == (
        "30 days: 30 reproduced from their snapshots, identical"
    )


def test_a_mix_names_each_kind_once() -> None:
    days = _days(("new", None), ("identical", True), ("kept", False), ("kept", True))
    assert allocation_summary(days, fresh=False, accepted=False) == (
        "4 days: 1 stored for the first time, 1 reproduced from its snapshot, identical, "
        "2 not reproduced: the stored days are kept (the failed checks say why; "
        "--accept-recomputation replaces them)"
    )


def test_replaced_days_say_why_and_whether_their_results_changed() -> None:
    same = _days(("replaced", True))
    assert allocation_summary(same, fresh=True, accepted=False) == (
        "1 day: 1 replaced by fresh snapshots (the same result)"
    )
    mixed = _days(("replaced", True), ("replaced", False), ("replaced", False))
    assert allocation_summary(mixed, fresh=False, accepted=True) == (
        "3 days: 3 replaced by the recomputation accepted (1 with the same result)"
    )
    changed = _days(("replaced", False), ("replaced", False))
    assert allocation_summary(changed, fresh=True, accepted=False).endswith("(different results)")


def test_nothing_recorded_says_nothing() -> None:
    assert allocation_summary({}, fresh=False, accepted=False) == ""
    assert profit_split_summary({"2026-05-01": {"outcome": "maintain"}}) == ""


def test_profit_split_days_decided_now_or_before() -> None:
    days = {"2026-05-01": {"reused": True}, "2026-05-02": {"reused": False}}
    assert profit_split_summary(days) == "2 days: 1 decided now, 1 decided before (kept as it was)"
