"""Alert messages and their delivery to a Slack-compatible webhook (a local HTTP server)."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal

from allocator_dagster import alerts
from allocator_dagster.alerts import Notifier
from allocator_dagster_tests.support.fake_webhook import SECRET, FakeWebhook

DAY = dt.date(2026, 11, 30)


def _notifier(url: str | None, logs: list[str], retries: int = 2) -> Notifier:
    return Notifier(url, log=logs.append, retries=retries, backoff_factor=0, timeout=2)


def test_an_alert_is_posted_as_slack_json_and_logged() -> None:
    alert = alerts.forced_reallocation(DAY, ["USDC blacklisted: exploit"], Decimal("1234567.891"))
    logs: list[str] = []
    with FakeWebhook() as hook:
        delivery = _notifier(hook.url, logs).send(alert)
    assert delivery.outcome == "sent" and delivery.delivered
    assert hook.bodies == [{"text": alert.text}]
    assert "1,234,567.89 USD moved" in alert.text and "USDC blacklisted: exploit" in alert.text
    assert logs == [f"alert: {alert.text}"]


def test_without_a_webhook_alerts_are_only_logged() -> None:
    logs: list[str] = []
    notifier = _notifier(None, logs)
    delivery = notifier.send(alerts.held_day(DAY, "infeasible", ["min_pools=5000 cannot hold"]))
    assert delivery.outcome == "logged" and notifier.target == "the log only"
    assert "No new allocation on 2026-11-30 (infeasible)" in logs[0]


def test_a_failing_webhook_is_retried_then_delivers() -> None:
    logs: list[str] = []
    with FakeWebhook(statuses=[500, 503]) as hook:
        delivery = _notifier(hook.url, logs).send(alerts.held_day(DAY, "failed", ["x"]))
    assert delivery.outcome == "sent" and hook.requests == 3 and len(hook.bodies) == 1


def test_a_webhook_that_keeps_failing_is_given_up_without_showing_its_url() -> None:
    logs: list[str] = []
    with FakeWebhook(default_status=500) as hook:
        delivery = _notifier(hook.url, logs, retries=2).send(alerts.held_day(DAY, "failed", []))
    assert delivery.outcome == "failed" and hook.requests == 3  # bounded: 1 + 2 retries
    assert delivery.detail == "webhook at 127.0.0.1 answered HTTP 500 after 3 attempt(s)"
    assert all(SECRET not in line and "/services/" not in line for line in logs)

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/B000/{SECRET}"
    unreachable = _notifier(url, logs, retries=1).send(alerts.held_day(DAY, "failed", []))
    assert unreachable.outcome == "failed"
    assert (
        unreachable.detail
        == "webhook at 127.0.0.1 unreachable after 2 attempt(s) (ConnectionError)"
    )
    assert all(SECRET not in line for line in [*logs, unreachable.detail])


def test_outside_text_cannot_ping_or_forge_links_or_control_the_terminal() -> None:
    alert = alerts.forced_reallocation(
        DAY, ["<!channel> <https://evil|click> & \x1b[2J\u202e"], Decimal("0")
    )
    assert "<!channel>" not in alert.text and "&lt;!channel&gt;" in alert.text
    assert "&lt;https://evil|click&gt; &amp; \\x1b[2J\\u202e" in alert.text


def test_the_messages_say_what_needs_a_person() -> None:
    waiting = alerts.proposal_waiting(
        "9b40e84a-0000-0000-0000-000000000000",
        "2026-11-30",
        "reinvestment 60% · dao 25% · lucky 10% · creator 5%",
        "allocator proposals review 9b40e84a-0000-0000-0000-000000000000 --approve|--reject "
        "--by NAME --notes TEXT",
    )
    assert "waits for review" in waiting.text
    assert "`allocator proposals review 9b40e84a-0000-0000-0000-000000000000 --approve" in (
        waiting.text
    )
    failed = alerts.run_failed("abc", "daily_allocation_job", "2026-11-01..2026-11-14", "boom\nat")
    assert "`daily_allocation_job` for 2026-11-01..2026-11-14 (run abc). boom." in failed.text
    check = alerts.check_failed("asset_allocations", "limits_hold", "2026-11-30", "r1", "cap x")
    assert "Blocking check `limits_hold` of `asset_allocations` failed on 2026-11-30" in check.text
    many = alerts.forced_reallocation(DAY, [f"r{i}" for i in range(15)], Decimal("1"))
    assert "r9; and 5 more" in many.text and "r10" not in many.text
    assert alerts.usd_moved([{"delta_usd": "-10.05"}, {"delta_usd": "2.50"}]) == Decimal("12.55")
