"""DefiLlama's yields API: the client, and the pool history rebuilt from its charts.

`/pools` gives today's universe and `/chart/{pool}` one pool's daily history, both wrapped in
`{"status": "success", "data": [...]}`. The client retries what is worth retrying (429 and 5xx,
honouring Retry-After, with exponential backoff; connection and read errors) through urllib3's
`Retry`, and turns every other failure into one `DefiLlamaError` whose message names the full
URL and what went wrong, so an operator knows at once whether the network, the service or the
data is at fault. One deadline bounds each fetch as a whole (`fetch_deadline`: connects, the wait
for the headers, retries and their pauses, the body), and a message says "after N retries" only
with the retries urllib3 really made. Nothing here touches the database: `pool_ingestion.import_history` stores
what `fetch_history` returns.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from allocator_dagster.parameters import DynamicLists
from allocator_dagster.sources.fetch_deadline import (
    DeadlinePassed,
    DeadlineRetry,
    FetchDeadline,
    deadline_session,
    retries_made,
)
from allocator_dagster.sources.http import retry_policy
from allocator_dagster.sources.records import (
    DEFAULT_LIMITS,
    POOL_COLUMNS,
    PoolSource,
    RecordLimits,
    Rejection,
    apply_apy_rules,
    universe_frame,
    validate_pool_records,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://yields.llama.fi"
CHART_COLUMNS = ("date", "tvlUsd", "apy", "apyBase", "apyReward")
RETRY_AFTER_MAX = 120  # seconds: a Retry-After beyond this is capped, not obeyed for hours
DEADLINE_SECONDS = (
    300.0  # one fetch (connect, headers, retries, body) ends by then, however it drips
)
MAX_BODY_BYTES = 200 * 1024 * 1024  # /pools is ~20 MB; the decompressed body may not exceed this
_READ_CHUNK = 16 * 1024  # compressed bytes per read: a gzip bomb inflates one chunk at a time


class DefiLlamaError(RuntimeError):
    """The yields API could not give a usable answer; the message names the URL and the problem."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"DefiLlama {url}: {problem}")
        self.url = url
        self.problem = problem


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost meaningful exception behind a requests/urllib3 error."""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MaxRetryError) and current.reason is not None:
            current = current.reason
            continue
        inner = current.args[0] if current.args else None
        if isinstance(inner, BaseException):
            current = inner
            continue
        if current.__cause__ is not None:
            current = current.__cause__
            continue
        break
    return current or exc


def _describe(exc: requests.RequestException, timeout: float, retries: int) -> str:
    """What went wrong, in words; "after N retries" only when urllib3 really retried N times."""
    cause = _root_cause(exc)
    after = f" (after {retries} retries)" if retries else ""
    if isinstance(exc, requests.Timeout) or isinstance(
        cause, ReadTimeoutError | ConnectTimeoutError | TimeoutError
    ):
        return f"timed out after {timeout:g} s{after}"
    text = str(cause)
    if isinstance(cause, ConnectionRefusedError) or "Connection refused" in text:
        return f"connection refused{after}: is the service reachable?"
    if isinstance(cause, NewConnectionError) or "Name or service not known" in text:
        return f"cannot connect{after}: {text}"
    if isinstance(cause, ProtocolError | ConnectionError):
        return f"connection failed{after}: {text}"
    return f"request failed{after}: {text}"


class DefiLlamaClient:
    """A small client of the yields API with retries; one instance per run is enough.

    A `session` given by the caller is used as it is (its own adapters decide retries); by
    default the client makes one with urllib3 `Retry` mounted for http and https.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        retries: int = 5,
        backoff_factor: float = 0.5,
        session: requests.Session | None = None,
        limits: RecordLimits = DEFAULT_LIMITS,
        deadline: float = DEADLINE_SECONDS,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.limits = limits
        self.timeout = timeout
        self.retries = retries
        if session is None:
            retry = retry_policy(
                retries,
                backoff_factor,
                backoff_max=60.0,
                retry_after_max=RETRY_AFTER_MAX,
                retry_class=DeadlineRetry,
            )
            assert isinstance(retry, DeadlineRetry)
            session = deadline_session(retry, "allocator-dagster (+treasury allocation)")
        self.session = session

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _get_data(self, path: str) -> list[Any]:
        """The `data` list of a successful envelope, or a DefiLlamaError saying what failed.

        The whole fetch (connects, the wait for the headers, retries and their pauses, the
        body) must end within `deadline` seconds (`fetch_deadline`)."""
        url = self.url(path)
        with FetchDeadline(self.deadline) as deadline:
            raw = self._fetch(url, deadline)
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            snippet = raw[:80].decode("utf-8", "replace").strip().replace("\n", " ")
            raise DefiLlamaError(url, f"the body is not JSON: {snippet!r}") from None
        if not isinstance(payload, dict):
            raise DefiLlamaError(
                url, f"expected an object envelope, got a JSON {type(payload).__name__}"
            )
        status = payload.get("status")
        if status != "success":
            raise DefiLlamaError(url, f"envelope status is {status!r}, expected 'success'")
        data = payload.get("data")
        if not isinstance(data, list):
            found = "missing" if "data" not in payload else f"a {type(data).__name__}"
            raise DefiLlamaError(url, f"envelope 'data' must be a list, it is {found}")
        return data

    def _fetch(self, url: str, deadline: FetchDeadline) -> bytes:
        """The body of a 200 answer, read under `deadline`."""
        try:
            response = self.session.get(url, timeout=self.timeout, stream=True)
        except DeadlinePassed:
            raise DefiLlamaError(url, deadline.problem()) from None
        except requests.RequestException as exc:
            if deadline.expired:
                raise DefiLlamaError(url, deadline.problem()) from exc
            made = retries_made(None, deadline)
            raise DefiLlamaError(url, _describe(exc, self.timeout, made)) from exc
        with response:
            if response.status_code != 200:
                made = retries_made(response, deadline)
                after = f" after {made} retries" if made else ""
                text = self._read_body(url, response, deadline, limit=4096, cut=True)
                body = text.decode("utf-8", "replace")[:120].strip().replace("\n", " ")
                raise DefiLlamaError(
                    url,
                    f"HTTP {response.status_code} {response.reason or ''}{after}: {body!r}".strip(),
                )
            return self._read_body(url, response, deadline, limit=self.max_bytes)

    def _read_body(
        self,
        url: str,
        response: requests.Response,
        deadline: FetchDeadline,
        *,
        limit: int,
        cut: bool = False,
    ) -> bytes:
        """The (decompressed) body, read as it arrives: refused once it exceeds `limit` bytes
        (or cut there, for an error body) or once the fetch's deadline has passed, so neither a
        gzip bomb nor a server dripping a byte at a time can hold the run."""
        chunks: list[bytes] = []
        size = 0
        raw = response.raw
        try:
            while True:
                if deadline.passed():
                    raise DefiLlamaError(url, deadline.problem())
                chunk = raw.read1(_READ_CHUNK, decode_content=True)
                if not chunk:  # end of the body (read1 waits for decoded bytes otherwise)
                    break
                size += len(chunk)
                if size > limit:
                    if cut:
                        chunks.append(chunk)
                        break
                    raise DefiLlamaError(
                        url, f"the answer is larger than the limit of {limit:,} bytes"
                    )
                chunks.append(chunk)
        except requests.RequestException as exc:
            if deadline.expired:
                raise DefiLlamaError(url, deadline.problem()) from exc
            raise DefiLlamaError(url, _describe(exc, self.timeout, 0)) from exc
        except (ProtocolError, ReadTimeoutError, OSError) as exc:
            if deadline.expired:
                raise DefiLlamaError(url, deadline.problem()) from exc
            problem = (
                f"timed out after {self.timeout:g} s"
                if isinstance(exc, ReadTimeoutError | TimeoutError)
                else f"connection failed while reading the answer: {exc}"
            )
            raise DefiLlamaError(url, problem) from exc
        except Exception as exc:  # a broken gzip stream (urllib3's DecodeError)
            if isinstance(exc, DefiLlamaError):
                raise
            if deadline.expired:
                raise DefiLlamaError(url, deadline.problem()) from exc
            raise DefiLlamaError(url, f"the answer cannot be decoded: {exc}") from exc
        if deadline.expired:  # the timer cut the body short: what arrived is not the answer
            raise DefiLlamaError(url, deadline.problem())
        return b"".join(chunks)

    def pool_records(self) -> list[Any]:
        """The raw `/pools` records, unvalidated (for recording fixtures and debugging)."""
        return self._get_data("/pools")

    def pools(self) -> tuple[pd.DataFrame, list[Rejection]]:
        """Today's pool universe from `/pools`, validated, and the records it rejected."""
        frame, rejections = validate_pool_records(
            self._get_data("/pools"), source=PoolSource.DEFILLAMA, limits=self.limits
        )
        for r in rejections[:20]:
            log.warning(
                "DefiLlama /pools row %d (%s) rejected: %s", r.row_number, r.pool_id, r.reason
            )
        if len(rejections) > 20:
            log.warning("DefiLlama /pools: %d more rows rejected", len(rejections) - 20)
        return frame, rejections

    def chart_with_rejections(self, pool_id: str) -> tuple[pd.DataFrame, list[Rejection]]:
        """One pool's daily history from `/chart/{pool}`, and the rows it rejected."""
        if not pool_id or "/" in pool_id:
            raise ValueError(f"not a pool id: {pool_id!r}")
        return validate_chart_rows(
            self._get_data(f"/chart/{pool_id}"), pool_id=pool_id, limits=self.limits
        )

    def chart(self, pool_id: str) -> pd.DataFrame:
        """One pool's daily history (date, tvlUsd, apy, apyBase, apyReward), bad rows logged."""
        frame, rejections = self.chart_with_rejections(pool_id)
        for r in rejections:
            log.warning("DefiLlama /chart/%s row %d rejected: %s", pool_id, r.row_number, r.reason)
        return frame


def _number_or_none(row: dict, name: str, ceiling: float) -> tuple[float | None, str | None]:
    value = row.get(name)
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"field {name!r} must be a number or null, got {value!r}"
    value = float(value)
    if not math.isfinite(value):
        return None, f"field {name!r} is not finite: {value!r}"
    if abs(value) > ceiling:
        return None, f"field {name!r} is beyond the ceiling of {ceiling:g}: {value!r}"
    return value, None


def _parse_day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC)
    return stamp.date()


def validate_chart_rows(
    rows: Iterable[Any], *, pool_id: str, limits: RecordLimits = DEFAULT_LIMITS
) -> tuple[pd.DataFrame, list[Rejection]]:
    """`/chart` rows as a frame with one row per UTC day, sorted; bad rows become rejections.

    Required: a parsable ISO `timestamp` and a finite `tvlUsd` >= 0; APYs may be null but not
    non-finite. MODEL.md's null rules apply as for `/pools`. When a day has several rows the
    last one wins (it is the day's latest snapshot) and the earlier ones are rejected.
    """
    kept: dict[date, tuple[int, list[Any]]] = {}
    rejections: list[Rejection] = []
    for number, row in enumerate(rows):
        if not isinstance(row, dict):
            rejections.append(Rejection(number, pool_id, f"row is a {type(row).__name__}"))
            continue
        day = _parse_day(row.get("timestamp"))
        if day is None:
            reason = f"field 'timestamp' is not an ISO-8601 time: {row.get('timestamp')!r}"
            rejections.append(Rejection(number, pool_id, reason))
            continue
        tvl, problem = _number_or_none(row, "tvlUsd", limits.max_tvl_usd)
        if problem is None and tvl is None:
            problem = "required field 'tvlUsd' is missing or null"
        if problem is None and tvl is not None and tvl < 0:
            problem = f"field 'tvlUsd' is negative: {tvl!r}"
        apys = []
        for name in ("apy", "apyBase", "apyReward"):
            if problem is not None:
                break
            value, problem = _number_or_none(row, name, limits.max_apy_pct)
            apys.append(value)
        if problem is not None:
            rejections.append(Rejection(number, pool_id, f"{day}: {problem}"))
            continue
        apy, base, reward = apply_apy_rules(*apys)
        if day in kept:
            earlier = kept[day][0]
            rejections.append(
                Rejection(earlier, pool_id, f"{day}: superseded by a later row of the same day")
            )
        kept[day] = (number, [day, tvl, apy, base, reward])
    rejections.sort(key=lambda r: r.row_number)
    ordered = [kept[d][1] for d in sorted(kept)]
    values = list(zip(*ordered, strict=True)) if ordered else [()] * len(CHART_COLUMNS)
    frame = pd.DataFrame(
        {
            "date": pd.Series(list(values[0]), dtype=object),
            **{
                name: pd.Series([np.nan if v is None else v for v in col], dtype="float64")
                for name, col in zip(CHART_COLUMNS[1:], values[1:], strict=True)
            },
        }
    )
    return frame, rejections


# ------------------------------------------------------------------ choosing and fetching history


def _pool_tokens(symbol: str, underlying: Iterable[str]) -> tuple[list[str], list[str]]:
    """MODEL.md's token rule: symbol parts upper-case, underlying addresses lower-case."""
    parts = [p.strip().upper() for p in str(symbol).split("-") if p.strip()]
    addresses = [str(a).strip().lower() for a in underlying if str(a).strip()]
    return parts, addresses


def select_pools_for_import(
    universe: pd.DataFrame,
    *,
    top: int | None = None,
    min_tvl: float = 0.0,
    lists: DynamicLists | None = None,
) -> list[str]:
    """The pools worth importing: TVL >= min_tvl, allowed by `lists` if given, largest first.

    With lists, a pool must be on an approved protocol, have all symbol parts (or all
    underlying addresses) approved and no blacklisted or iceboxed token, as in MODEL.md;
    importing history for pools the model can never hold would only cost API calls.
    """
    frame = universe[universe["tvlUsd"] >= min_tvl]
    if lists is not None:
        approved = {t.upper() for t in lists.approved_tokens} | {
            t.lower() for t in lists.approved_tokens
        }
        banned = {t.upper() for t in lists.blacklisted_tokens + lists.icebox_tokens} | {
            t.lower() for t in lists.blacklisted_tokens + lists.icebox_tokens
        }
        protocols = {p.lower() for p in lists.approved_protocols}
        keep = []
        for symbol, tokens, project in zip(
            frame["symbol"], frame["underlyingTokens"], frame["project"], strict=True
        ):
            parts, addresses = _pool_tokens(symbol, tokens or ())
            ok = (
                str(project).lower() in protocols
                and not any(t in banned for t in parts + addresses)
                and (
                    (bool(parts) and all(p in approved for p in parts))
                    or (bool(addresses) and all(a in approved for a in addresses))
                )
            )
            keep.append(ok)
        frame = frame[np.array(keep, dtype=bool)] if len(frame) else frame
    frame = frame.sort_values(["tvlUsd", "pool"], ascending=[False, True], kind="stable")
    ids = frame["pool"].astype(str).tolist()
    return ids if top is None else ids[: max(top, 0)]


def history_day_frames(
    universe: pd.DataFrame, charts: dict[str, pd.DataFrame], *, start: date, end: date
) -> dict[date, pd.DataFrame]:
    """Per day in [start, end], the universe rows rebuilt from the charts (static fields from
    `/pools`, daily tvl and APYs from `/chart`, apyMean30d the mean APY of the last 30 days)."""
    static = universe.set_index("pool", drop=False)
    pieces = []
    for pool_id, chart in sorted(charts.items()):
        if chart.empty or pool_id not in static.index:
            continue
        days = pd.to_datetime(pd.Series(chart["date"].tolist()))
        apy = pd.Series(chart["apy"].to_numpy(), index=days)
        mean30 = apy.rolling("30D", min_periods=1).mean().to_numpy()
        piece = pd.DataFrame(
            {
                "date": chart["date"].tolist(),
                "pool": pool_id,
                "tvlUsd": chart["tvlUsd"].to_numpy(),
                "apy": chart["apy"].to_numpy(),
                "apyBase": chart["apyBase"].to_numpy(),
                "apyReward": chart["apyReward"].to_numpy(),
                "apyMean30d": np.round(mean30, 5),
            }
        )
        pieces.append(piece[(piece["date"] >= start) & (piece["date"] <= end)])
    if not pieces:
        return {}
    rows = pd.concat(pieces, ignore_index=True)
    out: dict[date, pd.DataFrame] = {}
    static_cols = [c for c in POOL_COLUMNS if c not in rows.columns]
    for day, group in rows.groupby("date", sort=True):
        merged = group.drop(columns="date").join(static[static_cols], on="pool")
        columns = {name: merged[name].tolist() for name in POOL_COLUMNS}
        frame = universe_frame(columns)
        out[day] = frame.sort_values("pool", kind="stable").reset_index(drop=True)
    return out


@dataclass(frozen=True)
class FetchedHistory:
    """Every requested pool's `/chart`, and the universe rows rebuilt from them per day."""

    charts: dict[str, pd.DataFrame]
    days: dict[date, pd.DataFrame]
    rejections: tuple[tuple[str, Rejection], ...]

    @property
    def pools_with_history(self) -> int:
        return sum(1 for frame in self.charts.values() if not frame.empty)


def fetch_history(
    client: DefiLlamaClient,
    *,
    pool_ids: Sequence[str],
    start: date,
    end: date,
    progress: Callable[[int, int, str], None] | None = None,
    universe: pd.DataFrame | None = None,
) -> FetchedHistory:
    """Fetch `/chart` for each pool and rebuild the universe of each day start..end.

    Static fields (chain, project, symbol, tokens, flags) come from `/pools` (fetched unless
    `universe` is given). Nothing is stored here: the ingestion layer writes the days once
    every chart has arrived, so an API failure midway leaves the database untouched.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if universe is None:
        universe, _ = client.pools()
    known = set(universe["pool"].tolist())
    unknown = [p for p in pool_ids if p not in known]
    if unknown:
        raise ValueError(f"pool(s) not in the /pools universe: {', '.join(unknown[:5])}")
    charts: dict[str, pd.DataFrame] = {}
    rejected: list[tuple[str, Rejection]] = []
    total = len(pool_ids)
    for done, pool_id in enumerate(pool_ids, start=1):
        frame, rejections = client.chart_with_rejections(pool_id)
        charts[pool_id] = frame
        rejected.extend((pool_id, r) for r in rejections)
        if progress is not None:
            progress(done, total, pool_id)
    days = history_day_frames(universe, charts, start=start, end=end)
    return FetchedHistory(charts, days, tuple(rejected))


def default_history_window(days: int, today: date | None = None) -> tuple[date, date]:
    """The last `days` complete UTC days: (today - days, yesterday)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    today = today or datetime.now(UTC).date()
    return today - timedelta(days=days), today - timedelta(days=1)
