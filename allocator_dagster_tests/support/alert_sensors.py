"""An alert sensor evaluated tick after tick as the daemon would, announcing to a local webhook.

`watching(sensor, database_url)` gives a `Watch` on a fresh ephemeral instance and its
`FakeWebhook`; each `tick()` evaluates the sensor once from the cursor the last tick left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg

from allocator_dagster.defs.resources import AlertNotifierResource, DatabaseResource
from allocator_dagster_tests.support.fake_webhook import FakeWebhook


@dataclass
class Watch:
    sensor: Callable[..., Any]
    instance: dg.DagsterInstance
    database_url: str
    hook: FakeWebhook
    cursor: str | None = None

    def tick(self) -> Any:
        """One evaluation from the last cursor; returns what the sensor returned."""
        resources = {
            "database": DatabaseResource(database_url=self.database_url),
            "alert_notifier": AlertNotifierResource(webhook_url=self.hook.url, backoff_seconds=0),
        }
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=resources
        )
        result = self.sensor(context)
        self.cursor = context.cursor
        return result


@contextmanager
def watching(sensor: Callable[..., Any], database_url: str, **webhook: Any) -> Iterator[Watch]:
    """A watch on a new ephemeral instance; `webhook` configures the FakeWebhook."""
    with FakeWebhook(**webhook) as hook:
        yield Watch(sensor, dg.DagsterInstance.ephemeral(), database_url, hook)
