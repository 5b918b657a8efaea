"""HTTP for the small JSON APIs of the on-chain balances (Etherscan, DefiLlama's coins).

One session shape (requests + urllib3 `Retry` on connection errors, 429 and 5xx, honouring a
capped Retry-After) and one bounded read: an answer must arrive before the caller's deadline and
stay under a size limit, so a dripping or endless server cannot hold a run. Every failure is a
`FetchError` whose text says what happened without a traceback; the callers name the API.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_AFTER_MAX = 30  # seconds: the callers' deadlines are minutes, not hours
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a balance or a page of prices is a few kilobytes
_CHUNK = 16 * 1024


class FetchError(RuntimeError):
    """No usable JSON answer; the message is the problem (the caller adds which API and call)."""


def retry_policy(
    retries: int,
    backoff_factor: float = 0.5,
    *,
    methods: frozenset[str] = frozenset({"GET"}),
    backoff_max: float = 10.0,
    retry_after_max: int = RETRY_AFTER_MAX,
    retry_class: type[Retry] = Retry,
) -> Retry:
    """The project's one retry rule for outside HTTP: connection errors and 429/5xx answers, with
    backoff and a capped Retry-After; the last answer is returned, so the caller reports it."""
    return retry_class(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,
        respect_retry_after_header=True,
        retry_after_max=retry_after_max,
        raise_on_status=False,
    )


def mounted_session(
    retry: Retry, user_agent: str, adapter_class: type[HTTPAdapter] = HTTPAdapter
) -> requests.Session:
    """A session that applies `retry` (through `adapter_class`) to every http(s) request."""
    session = requests.Session()
    adapter = adapter_class(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


def retrying_session(retries: int, backoff_factor: float = 0.5) -> requests.Session:
    """A session retrying connection errors and 429/5xx answers of GETs with backoff."""
    return mounted_session(
        retry_policy(retries, backoff_factor), "allocator-dagster (+treasury allocation)"
    )


def get_json(
    session: requests.Session,
    url: str,
    *,
    params: dict[str, str] | None = None,
    timeout: float,
    deadline_at: float,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> Any:
    """The JSON of a 200 answer (floats as Decimal), read before `deadline_at` (monotonic)."""
    remaining = deadline_at - time.monotonic()
    if remaining <= 0:
        raise FetchError("no answer within the deadline")
    try:
        response = session.get(url, params=params, timeout=min(timeout, remaining), stream=True)
    except requests.Timeout:
        raise FetchError(f"timed out after {min(timeout, remaining):.3g} s") from None
    except requests.RequestException as exc:
        raise FetchError(f"request failed: {type(exc).__name__}: {exc}") from None
    with response:
        raw = _read(response, deadline_at, max_bytes if response.status_code == 200 else 2048)
        if response.status_code != 200:
            body = raw[:160].decode("utf-8", "replace").strip().replace("\n", " ")
            raise FetchError(f"HTTP {response.status_code} {response.reason or ''}: {body!r}")
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        snippet = raw[:80].decode("utf-8", "replace").strip().replace("\n", " ")
        raise FetchError(f"the answer is not JSON: {snippet!r}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read(response: requests.Response, deadline_at: float, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline_at:
                raise FetchError("no complete answer within the deadline")
            chunk = response.raw.read1(_CHUNK, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            chunks.append(chunk)
            if size > limit:
                if response.status_code != 200:
                    return b"".join(chunks)  # an error body is only quoted, cut
                raise FetchError(f"the answer is larger than {limit:,} bytes")
    except FetchError:
        raise
    except Exception as exc:  # a reset connection, a read timeout, a broken gzip stream
        raise FetchError(f"the answer could not be read: {type(exc).__name__}: {exc}") from None
