"""The LLM proposer against hostile answers: deep nesting, and error bodies that cut the key."""

# The local chat-completions server is profit_split/test_llm's `llm` fixture, imported as llm_server;
# a test's parameter of the same name is how pytest injects it (not a redefinition).
# ruff: noqa: F811

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.profit_split.llm import REDACTED, redact_secret
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.schema import profit_allocation_log
from allocator_dagster_tests.profit_split.test_llm import (
    API_KEY,
    METRICS,
    RULES,
    FakeLLM,
    answer,
    proposer,
    raw,
)
from allocator_dagster_tests.profit_split.test_llm import llm as llm_server  # noqa: F401
from allocator_dagster_tests.support.profit_split import store_as


def _fragments(text: str, secret: str = API_KEY, size: int = 8) -> list[str]:
    return [
        secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size] in text
    ]


def test_redact_secret_removes_every_fragment_of_eight_characters() -> None:
    key = "sk-0123456789abcdef"
    assert redact_secret(f"a {key} b", key) == f"a {REDACTED} b"
    assert redact_secret("x" * 10 + key[:8], key) == "x" * 10 + REDACTED  # a cut prefix
    assert redact_secret("…" + key[5:14] + "…", key) == f"…{REDACTED}…"  # a middle piece
    assert redact_secret(key[:7] + " " + key[-7:], key) == key[:7] + " " + key[-7:]  # 7 < 8
    assert redact_secret("nothing here", "") == "nothing here"
    assert redact_secret("short abc key", "abc") == f"short {REDACTED} key"


def test_a_key_cut_at_200_characters_leaks_no_part_of_it(
    llm_server: FakeLLM, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    body = ("e" * 180 + API_KEY).encode()  # the endpoint's message is cut at 200 characters
    llm_server.will(raw(500, body))
    caplog.set_level(logging.DEBUG)
    proposal = proposer(llm_server).propose(METRICS)
    assert proposal.split == RULES.split
    assert proposal.fallback_reason and "HTTP 500" in proposal.fallback_reason
    assert REDACTED in proposal.fallback_reason
    assert _fragments(proposal.fallback_reason) == []
    assert caplog.records and all(_fragments(r.getMessage()) == [] for r in caplog.records)

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = get_engine(url)
    stored = store_as(
        engine,
        proposal,
        by="llm:test-model",
        day=METRICS.metric_date,
        input_metrics=METRICS.to_json(),
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.select(profit_allocation_log)).all()
    assert all(_fragments(repr(tuple(row))) == [] for row in rows)
    shown = CliRunner().invoke(main, ["proposals", "show", "--database-url", url, str(stored.id)])
    assert shown.exit_code == 0 and "HTTP 500" in shown.output
    assert _fragments(shown.output) == []


@pytest.mark.parametrize("where", ["content", "envelope"])
def test_deeply_nested_json_falls_back(llm_server: FakeLLM, where: str) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    if where == "content":
        llm_server.will(answer(deep))
    else:
        llm_server.will(raw(200, ('{"choices": ' + deep + "}").encode()))
    proposal = proposer(llm_server, max_response_bytes=1_000_000).propose(METRICS)
    assert proposal.split == RULES.split
    assert proposal.fallback_reason and "nested too deeply" in proposal.fallback_reason


def test_nested_json_within_reason_is_still_read(llm_server: FakeLLM) -> None:
    llm_server.will(
        answer(json.dumps({"x": [[[[1]]]]}))
    )  # shallow nesting is an ordinary bad answer
    proposal = proposer(llm_server).propose(METRICS)
    assert proposal.fallback_reason and "incomplete" in proposal.fallback_reason
