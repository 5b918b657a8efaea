"""Alerts: the one-line messages that tell a person something needs them, and their delivery.

Plain Python, no Dagster import: the sensors in `defs/alerts/` find the events and call these.
A message goes to a Slack-compatible incoming webhook (`POST {"text": ...}`) when one is
configured, and is always logged. The webhook URL carries its secret in the path
(`/services/T…/B…/XXXX`), so no message, log line or error here ever contains it: failures are
described by the webhook's host and what went wrong, never by the URL or a library's text
(requests puts the path in its exceptions).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import requests

from allocator_dagster.redaction import redact_secret
from allocator_dagster.sources.http import mounted_session, retry_policy
from allocator_dagster.terminal import shown

WEBHOOK_ENV = "ALLOCATOR_ALERT_WEBHOOK_URL"
RETRY_AFTER_MAX = 30  # seconds: a sensor tick must end; a longer Retry-After is capped
MAX_TEXT = 3000  # characters of one message (Slack truncates far later; a person reads this much)
MAX_REASONS = 10


@dataclass(frozen=True)
class Alert:
    """One message about one event; `key` names the event (the same event, the same key)."""

    key: str
    text: str


@dataclass(frozen=True)
class Delivery:
    """What became of one alert: sent to the webhook, only logged, or not delivered (and why)."""

    alert: Alert
    outcome: str  # "sent" | "logged" | "failed"
    detail: str = ""

    @property
    def delivered(self) -> bool:
        return self.outcome in ("sent", "logged")


def slack_safe(value: object) -> str:
    """Outside text as Slack shows it literally: control characters escaped (`shown`) and
    `&`, `<`, `>` escaped, so a reason cannot ping `<!channel>` or forge a link."""
    return shown(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _reasons(reasons: Iterable[object]) -> str:
    listed = [slack_safe(r) for r in reasons]
    more = len(listed) - MAX_REASONS
    text = "; ".join(listed[:MAX_REASONS]) or "none given"
    return text + (f"; and {more} more" if more > 0 else "")


def _usd(amount: Decimal) -> str:
    return f"{amount:,.2f} USD"


# ------------------------------------------------------------------ the events


def run_failed(
    run_id: str, job: str, partitions: str | None, error: str | None, *, stage: str = "run"
) -> Alert:
    """A run of the code location failed (either graph, or a review)."""
    where = f" for {slack_safe(partitions)}" if partitions else ""
    why = slack_safe((error or "no error message").strip().splitlines()[0] if error else "")
    return Alert(
        key=f"run-failed:{run_id}",
        text=_bounded(
            f":rotating_light: {stage.capitalize()} failed: `{slack_safe(job)}`{where} "
            f"(run {run_id}). {why or 'no error message'}. "
            f"Its log: the run's page in the Dagster UI, or `dagster run list`."
        ),
    )


def check_failed(
    asset: str,
    check: str,
    partition: str | None,
    run_id: str,
    description: str | None,
    *,
    kind: str = "Blocking",
) -> Alert:
    """A blocking asset check failed (what it guarded did not flow on), or a freshness check
    (a day is missing past its deadline)."""
    where = f" on {slack_safe(partition)}" if partition else ""
    why = slack_safe(description.strip()) if description and description.strip() else ""
    return Alert(
        key=f"check-failed:{run_id}:{asset}:{check}:{partition or ''}",
        text=_bounded(
            f":no_entry: {kind} check `{slack_safe(check)}` of `{slack_safe(asset)}` failed"
            f"{where} (run {run_id})." + (f" {why}" if why else "")
        ),
    )


def forced_reallocation(day: dt.date, reasons: Iterable[object], usd_moved: Decimal) -> Alert:
    """A day reallocated because a held pool became ineligible (a list change, a forced exit)."""
    return Alert(
        key=f"forced:{day.isoformat()}",
        text=_bounded(
            f":warning: Forced reallocation on {day.isoformat()}: {_usd(usd_moved)} moved. "
            f"Reasons: {_reasons(reasons)}."
        ),
    )


def held_day(day: dt.date, status: str, reasons: Iterable[object]) -> Alert:
    """A day with no new allocation (infeasible or failed): the holdings stay as they are."""
    return Alert(
        key=f"held:{day.isoformat()}",
        text=_bounded(
            f":double_vertical_bar: No new allocation on {day.isoformat()} ({slack_safe(status)}): "
            f"the holdings are kept. Why: {_reasons(reasons)}. "
            f"Details: `allocator plan show --day {day.isoformat()}` or the asset_allocations "
            f"partition in the UI."
        ),
    )


def proposal_waiting(proposal_id: str, day: str, split: str, review_command: str) -> Alert:
    """A profit-split proposal that needs a reviewer."""
    return Alert(
        key=f"proposal:{proposal_id}",
        text=_bounded(
            f":ballot_box_with_ballot: Profit-split proposal {slack_safe(proposal_id)} for "
            f"{slack_safe(day)} waits for review: {slack_safe(split)}. "
            f"Review it: `{slack_safe(review_command)}`"
        ),
    )


def usd_moved(lines: Iterable[dict]) -> Decimal:
    """The USD a stored report's allocation lines move: the sum of |delta| (exact cents)."""
    return sum((abs(Decimal(str(line.get("delta_usd", "0")))) for line in lines), Decimal(0))


# ------------------------------------------------------------------ delivery


def webhook_host(url: str) -> str:
    """Where a webhook points, without its secret: the host name only."""
    try:
        return urlsplit(url).hostname or "<no host>"
    except ValueError:
        return "<invalid URL>"


class _HideWebhookPaths(logging.Filter):
    """urllib3 logs each request's path at DEBUG ("POST /services/T…/B…/secret", "Retry: …"):
    a webhook's path is replaced before any handler sees the record."""

    paths: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for path in self.paths:
            redacted = redact_secret(redacted, path)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_HIDE = _HideWebhookPaths()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection"):
    logging.getLogger(_name).addFilter(_HIDE)


def _hide_path(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    secret = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(secret) > 1:
        _HIDE.paths.add(secret)


def _session(retries: int, backoff_factor: float) -> requests.Session:
    retry = retry_policy(
        retries,
        backoff_factor,
        methods=frozenset({"POST"}),  # a duplicate alert beats a lost one
        retry_after_max=RETRY_AFTER_MAX,
    )
    return mounted_session(retry, "allocator-dagster alerts")


class Notifier:
    """Sends alerts to a Slack-compatible webhook (bounded retries), and logs every one.

    Without a URL it only logs. `send` never raises: an alert still undelivered after the
    bounded retries is a `Delivery` saying so (and the log line), so a sensor tick or a run is
    never failed by a webhook.
    """

    def __init__(
        self,
        webhook_url: str | None,
        *,
        log: Callable[[str], None],
        timeout: float = 5.0,
        retries: int = 2,
        backoff_factor: float = 0.5,
    ) -> None:
        self._url = (webhook_url or "").strip() or None
        self._log = log
        self._timeout = timeout
        self._retries = retries
        self._session = _session(retries, backoff_factor) if self._url else None
        if self._url:
            _hide_path(self._url)

    @property
    def target(self) -> str:
        """What the notifier sends to, safe to print: a host, or that it only logs."""
        return f"webhook at {webhook_host(self._url)}" if self._url else "the log only"

    def send(self, alert: Alert) -> Delivery:
        self._log(f"alert: {alert.text}")
        if self._url is None or self._session is None:
            return Delivery(alert, "logged")
        attempts = f"after {self._retries + 1} attempt(s)"
        try:
            response = self._session.post(
                self._url, json={"text": alert.text}, timeout=self._timeout
            )
        except requests.RequestException as exc:  # its text holds the URL: name the kind only
            detail = f"{self.target} unreachable {attempts} ({type(exc).__name__})"
            self._log(f"alert not delivered: {detail}")
            return Delivery(alert, "failed", detail)
        if response.ok:
            return Delivery(alert, "sent")
        detail = f"{self.target} answered HTTP {response.status_code} {attempts}"
        self._log(f"alert not delivered: {detail}")
        return Delivery(alert, "failed", detail)
