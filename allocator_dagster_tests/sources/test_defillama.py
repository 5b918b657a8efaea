"""The DefiLlama client against a local fake of the yields API: data, failures, retries, import."""

from __future__ import annotations

import gzip
import json
import math
import socket
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from allocator_dagster.cli import main as cli
from allocator_dagster.parameters import DynamicLists
from allocator_dagster.pool_ingestion import import_history
from allocator_dagster.sources.defillama import (
    DefiLlamaClient,
    DefiLlamaError,
    default_history_window,
    select_pools_for_import,
    validate_chart_rows,
)
from allocator_dagster.storage.pool_days import stored_pool_days
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster.storage.pool_writes import replace_pool_day
from allocator_dagster.storage.schema import pool_daily_metrics
from allocator_dagster_tests.support import fake_defillama as fake_server
from allocator_dagster_tests.support.fake_defillama import FakeDefiLlama

fake_defillama = fake_server.fake_defillama  # the fixture: a fresh fake API for each test

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "defillama"
CHART_POOLS = sorted(p.stem for p in (FIXTURES / "chart").glob("*.json"))
SAVE_DAY = date(2026, 7, 31)


def client_for(server: FakeDefiLlama, **kwargs) -> DefiLlamaClient:
    options = {"timeout": 2.0, "retries": 3, "backoff_factor": 0.0} | kwargs
    return DefiLlamaClient(base_url=server.base_url, **options)


# ------------------------------------------------------------------ data


def test_pools_parses_the_recorded_response(fake_defillama: FakeDefiLlama) -> None:
    frame, rejections = client_for(fake_defillama).pools()
    recorded = json.loads((FIXTURES / "pools.json").read_text(encoding="utf-8"))["data"]
    assert rejections == []
    assert sorted(frame["pool"]) == sorted(r["pool"] for r in recorded)
    assert frame.attrs["source"] == "defillama"
    assert any(not s.isascii() for s in frame["symbol"])
    assert fake_defillama.count("/pools") == 1


def test_pools_rejects_bad_records_with_reasons(fake_defillama: FakeDefiLlama) -> None:
    good = {"pool": "g", "chain": "Base", "project": "aave-v3", "symbol": "USDC", "tvlUsd": 1e6}
    no_symbol = {k: v for k, v in good.items() if k != "symbol"} | {"pool": "m"}
    fake_defillama.set_data(
        "/pools",
        [
            good,
            good | {"pool": "n", "tvlUsd": math.nan},
            good | {"pool": "x", "tvlUsd": -1},
            no_symbol,
        ],
    )
    frame, rejections = client_for(fake_defillama).pools()
    assert frame["pool"].tolist() == ["g"]
    assert [(r.row_number, r.pool_id, r.reason) for r in rejections] == [
        (1, "n", "field 'tvlUsd' is not finite: nan"),
        (2, "x", "field 'tvlUsd' is negative: -1.0"),
        (3, "m", "required field 'symbol' is missing"),
    ]


def test_chart_parses_and_applies_null_rules(fake_defillama: FakeDefiLlama) -> None:
    chart = client_for(fake_defillama).chart(CHART_POOLS[0])
    assert list(chart.columns) == ["date", "tvlUsd", "apy", "apyBase", "apyReward"]
    assert len(chart) == 90
    assert chart["date"].iloc[-1] == SAVE_DAY and chart["date"].is_monotonic_increasing
    assert chart["apy"].notna().all()


def test_chart_rejects_bad_rows(fake_defillama: FakeDefiLlama) -> None:
    rows = [
        {
            "timestamp": "2026-07-01T23:00:00.000Z",
            "tvlUsd": 10,
            "apy": 1.0,
            "apyBase": None,
            "apyReward": 1.0,
        },
        {"timestamp": "2026-07-02T23:00:00.000Z", "tvlUsd": math.nan, "apy": 1.0},
        {"timestamp": "2026-07-03T23:00:00.000Z", "tvlUsd": -3, "apy": 1.0},
        {"timestamp": "2026-07-04T23:00:00.000Z", "apy": 1.0},
        {"timestamp": "not a time", "tvlUsd": 1, "apy": 1.0},
        {"timestamp": "2026-07-05T01:00:00.000Z", "tvlUsd": 5, "apy": math.inf},
        {"timestamp": "2026-07-06T01:00:00.000Z", "tvlUsd": 5, "apy": 2.0},
        {"timestamp": "2026-07-06T23:00:00.000Z", "tvlUsd": 6, "apyBase": 2.5},
    ]
    fake_defillama.set_data("/chart/p1", rows)
    frame, rejections = client_for(fake_defillama).chart_with_rejections("p1")
    assert frame["date"].tolist() == [date(2026, 7, 1), date(2026, 7, 6)]
    assert frame.iloc[0][["apy", "apyBase", "apyReward"]].tolist() == [1.0, 0.0, 1.0]
    assert frame.iloc[1][["tvlUsd", "apy", "apyBase", "apyReward"]].tolist() == [6.0, 2.5, 2.5, 0.0]
    assert [(r.row_number, r.reason) for r in rejections] == [
        (1, "2026-07-02: field 'tvlUsd' is not finite: nan"),
        (2, "2026-07-03: field 'tvlUsd' is negative: -3.0"),
        (3, "2026-07-04: required field 'tvlUsd' is missing or null"),
        (4, "field 'timestamp' is not an ISO-8601 time: 'not a time'"),
        (5, "2026-07-05: field 'apy' is not finite: inf"),
        (6, "2026-07-06: superseded by a later row of the same day"),
    ]


def test_validate_chart_rows_empty() -> None:
    frame, rejections = validate_chart_rows([], pool_id="p")
    assert frame.empty and list(frame.columns) == ["date", "tvlUsd", "apy", "apyBase", "apyReward"]
    assert rejections == []


# ------------------------------------------------------------------ failures


def test_retries_429_then_succeeds(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.fail(429, times=3, retry_after="0")
    frame, _ = client_for(fake_defillama, retries=5).pools()
    assert len(frame) > 0
    assert fake_defillama.count("/pools") == 4  # three 429s, then the answer


def test_retry_after_is_respected(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.fail(429, times=1, retry_after="1")
    started = time.perf_counter()
    client_for(fake_defillama, retries=2).pools()
    assert time.perf_counter() - started >= 0.9
    assert fake_defillama.count("/pools") == 2


def test_persistent_500_names_the_endpoint(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.fail(500)
    client = client_for(fake_defillama, retries=2)
    with pytest.raises(DefiLlamaError) as info:
        client.pools()
    message = str(info.value)
    assert f"{fake_defillama.base_url}/pools" in message
    assert "HTTP 500" in message and "after 2 retries" in message
    assert fake_defillama.count("/pools") == 3  # the first try and two retries


def test_404_is_not_retried(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.fail(404, path="/chart/")
    with pytest.raises(DefiLlamaError, match=r"/chart/abc: HTTP 404"):
        client_for(fake_defillama).chart("abc")
    assert fake_defillama.count("/chart/") == 1


def test_malformed_json(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.malformed()
    with pytest.raises(DefiLlamaError, match=r"/pools: the body is not JSON: '<html>upstream"):
        client_for(fake_defillama).pools()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "error", "data": []}, "envelope status is 'error', expected 'success'"),
        ({"status": "success"}, "envelope 'data' must be a list, it is missing"),
        ({"status": "success", "data": {"a": 1}}, "envelope 'data' must be a list, it is a dict"),
        ([1, 2, 3], "expected an object envelope, got a JSON list"),
    ],
)
def test_wrong_envelope(fake_defillama: FakeDefiLlama, body, expected: str) -> None:
    fake_defillama.wrong_envelope(body)
    with pytest.raises(DefiLlamaError) as info:
        client_for(fake_defillama).chart("p1")
    assert str(info.value) == f"DefiLlama {fake_defillama.base_url}/chart/p1: {expected}"


def test_timeout(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.slow(1.5)
    client = client_for(fake_defillama, timeout=0.3, retries=1)
    started = time.perf_counter()
    with pytest.raises(DefiLlamaError) as info:
        client.pools()
    assert time.perf_counter() - started < 1.4
    assert str(info.value).startswith(
        f"DefiLlama {fake_defillama.base_url}/pools: timed out after 0.3 s"
    )
    assert fake_defillama.count("/pools") == 2  # read timeouts are retried too


def test_connection_refused_names_the_url() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = DefiLlamaClient(base_url=f"http://127.0.0.1:{port}", retries=1, backoff_factor=0)
    with pytest.raises(DefiLlamaError) as info:
        client.pools()
    assert str(info.value).startswith(
        f"DefiLlama http://127.0.0.1:{port}/pools: connection refused"
    )


def test_bad_pool_id_is_refused_before_any_request(fake_defillama: FakeDefiLlama) -> None:
    with pytest.raises(ValueError, match="not a pool id"):
        client_for(fake_defillama).chart("../pools")
    assert fake_defillama.count() == 0


# ------------------------------------------------------------------ choosing and importing


def test_select_pools_for_import(fake_defillama: FakeDefiLlama) -> None:
    universe, _ = client_for(fake_defillama).pools()
    top = select_pools_for_import(universe, top=5)
    assert top == universe.sort_values("tvlUsd", ascending=False)["pool"].head(5).tolist()
    big = select_pools_for_import(universe, min_tvl=1e9)
    assert big and all(universe.set_index("pool").loc[big, "tvlUsd"] >= 1e9)
    lists = DynamicLists(approved_tokens=["STETH", "USDC"], approved_protocols=["lido", "aave-v3"])
    chosen = universe.set_index("pool").loc[select_pools_for_import(universe, lists=lists)]
    assert len(chosen) > 0
    assert set(chosen["project"]) <= {"lido", "aave-v3"}
    assert all(set(s.upper().split("-")) <= {"STETH", "USDC"} for s in chosen["symbol"])
    banned = DynamicLists(
        approved_tokens=["STETH", "USDC"], approved_protocols=["lido"], blacklisted_tokens=["steth"]
    )
    assert select_pools_for_import(universe, lists=banned) == []


def test_import_history_writes_days_and_is_idempotent(
    fake_defillama: FakeDefiLlama,
    engine: sa.Engine,
) -> None:
    client = client_for(fake_defillama)
    universe, _ = client.pools()
    # An existing full snapshot for the last day must keep its other pools.
    replace_pool_day(engine, SAVE_DAY, universe, [], source="defillama")
    seen: list[tuple[int, int, str]] = []
    start = date(2026, 7, 1)
    summary = import_history(
        client,
        engine,
        pool_ids=CHART_POOLS,
        start=start,
        end=SAVE_DAY,
        progress=lambda done, total, pool: seen.append((done, total, pool)),
    )
    assert seen == [(i + 1, len(CHART_POOLS), p) for i, p in enumerate(CHART_POOLS)]
    assert summary.days_written == 31 and summary.rows_written == 31 * len(CHART_POOLS)
    assert (summary.first_day, summary.last_day) == (start, SAVE_DAY)
    assert stored_pool_days(engine) == [date(2026, 7, d) for d in range(1, 32)]

    first_day = load_pool_day(engine, start)
    assert sorted(first_day["pool"]) == CHART_POOLS
    static = universe.set_index("pool")
    for row in first_day.itertuples(index=False):
        assert row.chain == static.loc[row.pool, "chain"]
        assert row.underlyingTokens == static.loc[row.pool, "underlyingTokens"]
    last_day = load_pool_day(engine, SAVE_DAY)
    assert len(last_day) == len(universe)  # the snapshot's other pools are still there
    # The chart's last day is the record itself.
    for pool in CHART_POOLS:
        assert last_day.set_index("pool").loc[pool, "tvlUsd"] == static.loc[pool, "tvlUsd"]

    with engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(pool_daily_metrics)).scalar()
    again = import_history(client, engine, pool_ids=CHART_POOLS, start=start, end=SAVE_DAY)
    assert again.rows_written == summary.rows_written
    with engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(pool_daily_metrics)).scalar()
    assert after == before
    pd.testing.assert_frame_equal(
        load_pool_day(engine, start).drop(columns=[]), first_day, check_exact=True
    )


def test_import_history_failure_writes_nothing(
    fake_defillama: FakeDefiLlama, engine: sa.Engine
) -> None:
    fake_defillama.fail(500, path=f"/chart/{CHART_POOLS[-1]}")
    client = client_for(fake_defillama, retries=1)
    with pytest.raises(DefiLlamaError, match=CHART_POOLS[-1]):
        import_history(client, engine, pool_ids=CHART_POOLS, start=date(2026, 7, 1), end=SAVE_DAY)
    assert stored_pool_days(engine) == []


def test_import_history_refuses_unknown_pools(
    fake_defillama: FakeDefiLlama, engine: sa.Engine
) -> None:
    with pytest.raises(ValueError, match="not in the /pools universe: nope"):
        import_history(
            client_for(fake_defillama), engine, pool_ids=["nope"], start=SAVE_DAY, end=SAVE_DAY
        )


def test_default_history_window() -> None:
    assert default_history_window(3, today=date(2026, 8, 1)) == (
        date(2026, 7, 29),
        date(2026, 7, 31),
    )
    with pytest.raises(ValueError):
        default_history_window(0)


# ------------------------------------------------------------------ command line


def test_cli_import_history(fake_defillama: FakeDefiLlama, tmp_path: Path, monkeypatch) -> None:
    import allocator_dagster.cli.pools as pools_cli

    monkeypatch.setattr(
        pools_cli, "default_history_window", lambda days: default_history_window(days, SAVE_DAY)
    )
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    args = ["pools", "import-history", "--days", "5", "--top", "3", "--min-tvl", "0"]
    args += ["--base-url", fake_defillama.base_url, "--database-url", url]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "importing 3 pools" in result.output
    assert "stored" in result.output and "over 5 days (2026-07-26 .. 2026-07-30)" in result.output


def test_cli_import_history_reports_api_errors(
    fake_defillama: FakeDefiLlama, tmp_path: Path
) -> None:
    fake_defillama.fail(503, retry_after="0")
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    args = [
        "pools",
        "import-history",
        "--days",
        "2",
        "--retries",
        "2",
        "--base-url",
        fake_defillama.base_url,
    ]
    result = CliRunner().invoke(cli, [*args, "--database-url", url])
    assert result.exit_code == 2  # one line and exit 2, as every command's error
    assert f"error: DefiLlama {fake_defillama.base_url}/pools: HTTP 503" in result.output
    assert "after 2 retries" in result.output
    assert fake_defillama.count("/pools") == 3


def test_a_dripping_server_meets_one_deadline(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.drip(b"          ", every=0.1, steps=60, path="/pools")  # 6 s in all
    client = client_for(fake_defillama, timeout=2.0, retries=0, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(DefiLlamaError) as failed:
        client.pools()
    assert time.monotonic() - started < 3.0  # never waits for the whole drip
    assert failed.value.problem == "no complete answer within the deadline of 1 s"


def test_a_gzip_bomb_is_refused_at_the_size_limit(fake_defillama: FakeDefiLlama) -> None:
    inflated = b'{"status": "success", "data": [' + b" " * 20_000_000 + b"]}"
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 100_000
    fake_defillama.gzipped(bomb, path="/pools")
    client = client_for(fake_defillama, max_bytes=1_000_000)
    with pytest.raises(DefiLlamaError) as failed:
        client.pools()
    assert failed.value.problem == "the answer is larger than the limit of 1,000,000 bytes"
    small = gzip.compress(b'{"status": "success", "data": []}')
    fake_defillama._faults.clear()
    fake_defillama.gzipped(small, path="/pools")
    frame, rejections = client.pools()  # a gzip answer under the limit is read as usual
    assert frame.empty and rejections == []


# ------------------------------------------------------------------ one deadline, real retry counts


def test_a_server_that_sleeps_before_its_headers_meets_the_deadline(
    fake_defillama: FakeDefiLlama,
) -> None:
    fake_defillama.slow(4.0, path="/pools")  # accepts, then nothing for 4 s on every try
    client = client_for(fake_defillama, timeout=10.0, retries=5, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(DefiLlamaError) as failed:
        client.pools()
    assert time.monotonic() - started < 3.0  # was: 4 s, then the answer (or 6 x 10 s)
    assert failed.value.problem == "no complete answer within the deadline of 1 s"


def test_a_server_that_drips_its_headers_meets_the_deadline(
    fake_defillama: FakeDefiLlama,
) -> None:
    fake_defillama.drip_headers(every=0.1, steps=60, path="/pools")  # 6 s of header bytes
    client = client_for(fake_defillama, timeout=2.0, retries=0, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(DefiLlamaError) as failed:
        client.pools()
    assert time.monotonic() - started < 3.0  # was: the whole drip, then the answer
    assert failed.value.problem == "no complete answer within the deadline of 1 s"


def test_headers_that_drip_within_the_deadline_are_read(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.drip_headers(every=0.01, steps=5, path="/pools")
    frame, _ = client_for(fake_defillama, retries=0, deadline=5.0).pools()
    assert len(frame) > 0


def test_a_retry_pause_past_the_deadline_is_not_taken(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.fail(503, retry_after="5", path="/pools")
    client = client_for(fake_defillama, retries=5, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(DefiLlamaError) as failed:
        client.pools()
    assert time.monotonic() - started < 3.0  # was: 5 s asleep, then more tries
    assert failed.value.problem == (
        "no complete answer within the deadline of 1 s "
        "(the server asked to wait 5 s before the next try)"
    )
    assert fake_defillama.count("/pools") == 1


def test_a_first_try_failure_does_not_claim_retries(fake_defillama: FakeDefiLlama) -> None:
    # TLS against a plain-HTTP server fails on the first try and is not retried (`other=0`)
    https = fake_defillama.base_url.replace("http://", "https://")
    client = DefiLlamaClient(base_url=https, timeout=2.0, retries=5, backoff_factor=0.0)
    with pytest.raises(DefiLlamaError) as failed:
        client.pools()
    assert "retries" not in failed.value.problem  # was: "request failed (after 5 retries): ..."
    assert fake_defillama.count("/pools") == 0


def test_the_retry_count_is_the_number_really_made(fake_defillama: FakeDefiLlama) -> None:
    fake_defillama.fail(500, path="/pools")
    with pytest.raises(DefiLlamaError) as once:
        client_for(fake_defillama, retries=0).pools()
    assert once.value.problem.startswith("HTTP 500") and "retries" not in once.value.problem
    assert fake_defillama.count("/pools") == 1

    fake_defillama.slow(3.0, path="/chart/")  # read timeouts: two retries, then the last try
    with pytest.raises(DefiLlamaError) as timed_out:
        client_for(fake_defillama, timeout=0.2, retries=2).chart("abc")
    assert timed_out.value.problem == "timed out after 0.2 s (after 2 retries)"
    assert fake_defillama.count("/chart/") == 3
