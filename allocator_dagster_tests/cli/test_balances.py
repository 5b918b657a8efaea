"""`allocator balances import`: good files replace the day in one transaction and are recorded;
bad files exit 2 naming file, line and field, and write nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.pool_ingestion import ingest_sample_day, sample_universe
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.balances import imports_of, ledger_source
from allocator_dagster.storage.schema import balance_imports, daily_ledger

DAY = dt.date(2026, 3, 1)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def pools(database_url: str) -> list[str]:
    """The day's pool data (the sample), so imports can be checked; two of its pool ids."""
    engine = get_engine(database_url)
    ingest_sample_day(engine, DAY, sample_universe(7, 60))
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT pool_id FROM pool_daily_metrics ORDER BY pool_id"))
        return [r[0] for r in ids][:2]


def _import(database_url: str, path: Path, by: str = "alice") -> tuple[int, str]:
    return _cli(
        "balances", "import", "--day", DAY.isoformat(), str(path), "--by", by,
        "--database-url", database_url,
    )  # fmt: skip


def _rows(database_url: str) -> tuple[list, list]:
    with get_engine(database_url).connect() as conn:
        ledger = conn.execute(
            sa.select(
                daily_ledger.c.pool_id, daily_ledger.c.amount_usd, daily_ledger.c.source
            ).order_by(daily_ledger.c.pool_id)
        ).all()
        imports = conn.execute(sa.select(balance_imports.c.import_id)).all()
    return ledger, imports


def test_import_csv_then_json_replaces_the_day_and_records_both(
    database_url: str, pools: list[str], tmp_path: Path
) -> None:
    a, b = pools
    csv_file = tmp_path / "holdings.csv"
    csv_file.write_text(f"pool,amount_usd\n{a},1000.50\n{b},2500\nidle_usd,99.99\n")
    code, out = _import(database_url, csv_file)
    assert code == 0, out
    assert "3,600.49 USD in total" in out
    engine = get_engine(database_url)
    with engine.connect() as conn:
        holdings = store.read_holdings(conn, DAY)
        assert holdings is not None
        assert holdings.positions == {a: Decimal("1000.50"), b: Decimal("2500.00")}
        assert holdings.idle_usd == Decimal("99.99")
        assert ledger_source(conn, DAY) == "import"

    json_file = tmp_path / "holdings.json"
    json_file.write_text(
        f'[\n  {{"pool": "{b}", "amount_usd": "10.00"}},\n'
        '  {"pool": "idle_usd", "amount_usd": 5.25}\n]\n'
    )
    code, out = _import(database_url, json_file, by="bob")
    assert code == 0, out
    assert "replacing the import rows" in out
    with engine.connect() as conn:
        holdings = store.read_holdings(conn, DAY)
        records = imports_of(conn, DAY)
    assert holdings is not None
    assert holdings.positions == {b: Decimal("10.00")} and holdings.idle_usd == Decimal("5.25")
    assert [(r.imported_by, r.source_file, r.total_usd) for r in records] == [
        ("alice", "holdings.csv", Decimal("3600.49")),
        ("bob", "holdings.json", Decimal("15.25")),
    ]
    assert records[1].file_sha256 == hashlib.sha256(json_file.read_bytes()).hexdigest()
    code, out = _cli("balances", "show", "--day", DAY.isoformat(), "--database-url", database_url)
    assert code == 0 and "15.25 USD (import)" in out and "by bob" in out, out


BAD_FILES = {
    "unknown pool": ("csv", "pool,amount_usd\n{a},1\nno-such-pool,2\nidle_usd,0\n",
                     "line 3 (pool no-such-pool): field 'pool' is not a pool of the day's pool data"),
    "negative": ("csv", "pool,amount_usd\n{a},-1\nidle_usd,0\n",
                 "line 2 (pool {a}): field 'amount_usd' is negative: -1"),
    "nan": ("csv", "pool,amount_usd\n{a},NaN\nidle_usd,0\n",
            "line 2 (pool {a}): field 'amount_usd' is NaN (must be finite)"),
    "infinite json": ("json", '[{{"pool": "{a}", "amount_usd": Infinity}},\n'
                      ' {{"pool": "idle_usd", "amount_usd": 0}}]',
                      "line 1 (pool {a}): field 'amount_usd' is Infinity (must be finite)"),
    "duplicate": ("csv", "pool,amount_usd\n{a},1\n{b},2\n{a},3\nidle_usd,0\n",
                  "line 4: field 'pool': {a} appears twice (first on line 2)"),
    "two idle rows": ("csv", "pool,amount_usd\nidle_usd,1\nidle_usd,2\n",
                      "line 3: field 'pool': idle_usd appears twice (first on line 2)"),
    "no idle row": ("csv", "pool,amount_usd\n{a},1\n", "field 'pool': no idle_usd row"),
    "not a number": ("csv", "pool,amount_usd\n{a},lots\nidle_usd,0\n",
                     "line 2 (pool {a}): field 'amount_usd' is not a number: 'lots'"),
    "wrong columns": ("csv", "pool,usd\n{a},1\n", "line 1: expected the columns pool,amount_usd"),
    "malformed json": ("json", '[{{"pool": "{a}",\n "amount_usd": 1}}\n{{"pool"',
                       "line 3: malformed JSON"),
    "json not a list": ("json", '{{"idle_usd": 1}}', "line 1: expected a JSON list"),
    "json missing field": ("json", '[\n{{"pool": "{a}"}}]',
                           "line 2: expected an object with the fields pool and amount_usd"),
    "json bool amount": ("json", '[{{"pool": "{a}", "amount_usd": true}}]',
                         "field 'amount_usd' is not a number: 'True'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_exit_2_naming_file_line_and_field_and_write_nothing(
    database_url: str, pools: list[str], tmp_path: Path, case: str
) -> None:
    a, b = pools
    good = tmp_path / "good.csv"
    good.write_text(f"pool,amount_usd\n{a},7\nidle_usd,3\n")
    assert _import(database_url, good)[0] == 0
    before = _rows(database_url)
    suffix, text, message = BAD_FILES[case]
    bad = tmp_path / f"bad.{suffix}"
    bad.write_text(text.format(a=a, b=b))
    code, out = _import(database_url, bad)
    assert code == 2, out
    assert str(bad) in out and message.format(a=a, b=b) in out, out
    assert "Traceback" not in out
    assert _rows(database_url) == before  # the good import stands, no new record


def test_import_needs_the_days_pool_data_and_a_name(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("pool,amount_usd\nidle_usd,3\n")
    code, out = _import(database_url, path)
    assert code == 2 and "no pool data stored for 2026-03-01" in out, out
    code, out = _import(database_url, path, by="\u200b ")
    assert code == 2 and "--by is empty" in out, out
    assert _rows(database_url) == ([], [])


def test_a_failed_write_leaves_the_previous_import(
    database_url: str, pools: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = pools
    good = tmp_path / "good.csv"
    good.write_text(f"pool,amount_usd\n{a},7\nidle_usd,3\n")
    assert _import(database_url, good)[0] == 0
    before = _rows(database_url)
    from allocator_dagster.storage import balances

    def broken_insert(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(balances.balance_imports, "insert", broken_insert)
    other = tmp_path / "other.csv"
    other.write_text(f"pool,amount_usd\n{a},1\nidle_usd,1\n")
    code, out = _import(database_url, other)
    assert code == 2 and "the balances of 2026-03-01 were not imported (nothing changed)" in out
    assert "Traceback" not in out
    assert _rows(database_url) == before  # the ledger rows were not replaced alone
