"""The LLM proposer against a local server that speaks the chat-completions API, hostile included.

Every unusable answer must fall back to the rules proposer and say why; the API key must never
appear in what is stored, shown or logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from allocator_dagster.defs.profit_split.assets import platform_metrics, profit_split_proposal
from allocator_dagster.defs.resources import DatabaseResource, ProfitSplitConfig
from allocator_dagster.profit_split.llm import LLMConfig, LLMProposer, parse_answer
from allocator_dagster.profit_split.metrics import sample_metrics
from allocator_dagster.profit_split.policy import RulesProposer
from allocator_dagster.profit_split.split import SEED_SPLIT, Split
from allocator_dagster.storage import get_engine
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.schema import profit_allocation_log
from allocator_dagster_tests.support.profit_split import store_as

D = Decimal
API_KEY = "sk-test-6f1d0c2b9a8e7d6c5b4a39281706f5e4"
METRICS = sample_metrics(date(2025, 4, 2), "rapid_growth")
RULES = RulesProposer().propose(METRICS)

Behaviour = Callable[[BaseHTTPRequestHandler], None]


def answer(content: str) -> Behaviour:
    """A 200 chat-completions response whose message content is `content`."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
        raw(200, json.dumps(body).encode())(handler)

    return respond


def raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> Behaviour:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def split_json(**overrides: object) -> str:
    data: dict[str, object] = {
        "reinvestment_pct": 77,
        "dao_pct": 15,
        "lucky_pct": 5,
        "creator_pct": 3,
        "confidence": 0.82,
        "should_rebalance": True,
        "reasoning": "Engagement score 80+ and 7-day community growth above 10 %.",
    }
    data.update(overrides)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


class FakeLLM:
    """The behaviours to play, in order, and the requests received."""

    def __init__(self) -> None:
        self.behaviours: list[Behaviour] = []
        self.requests: list[dict] = []
        self.url = ""

    def will(self, *behaviours: Behaviour) -> FakeLLM:
        self.behaviours.extend(behaviours)
        return self


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            fake.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            behaviour = fake.behaviours.pop(0) if fake.behaviours else raw(500, b"no script")
            # The client may have given up already (timeouts): nothing to answer then.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                behaviour(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield fake
    server.shutdown()
    server.server_close()


def proposer(fake: FakeLLM, **config: object) -> LLMProposer:
    settings = {"url": fake.url, "model": "test-model", "api_key": API_KEY, "timeout_seconds": 5.0}
    settings.update(config)
    return LLMProposer(config=LLMConfig(**settings))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ valid answers


def test_a_valid_answer_becomes_an_llm_proposal(llm: FakeLLM) -> None:
    llm.will(answer(split_json()))
    proposal = proposer(llm).propose(METRICS)
    assert proposal.proposer == "llm"
    assert proposal.split == Split(D(77), D(15), D(5), D(3))
    assert proposal.confidence == D("0.820")
    assert proposal.should_rebalance is True
    assert proposal.fallback_reason is None
    assert "community growth" in proposal.reasoning
    (request,) = llm.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["body"]["model"] == "test-model"
    assert request["body"]["temperature"] == 0
    assert [m["role"] for m in request["body"]["messages"]] == ["system", "user"]
    sent_metrics = json.loads(request["body"]["messages"][1]["content"])["metrics"]
    assert sent_metrics == METRICS.to_json()
    assert API_KEY not in json.dumps(request["body"])


def test_json_in_markdown_fences_is_accepted(llm: FakeLLM) -> None:
    llm.will(answer("```json\n" + split_json() + "\n```"), answer("```\n" + split_json() + "```"))
    for _ in range(2):
        proposal = proposer(llm).propose(METRICS)
        assert proposal.proposer == "llm" and proposal.fallback_reason is None


def test_decimal_values_are_read_exactly(llm: FakeLLM) -> None:
    # 77.1 + 15.3 + 4.8 + 2.8 is not 100 in binary floats; parsed as decimals it is.
    llm.will(
        answer(split_json(reinvestment_pct=77.1, dao_pct=15.3, lucky_pct=4.8, creator_pct=2.8))
    )
    proposal = proposer(llm).propose(METRICS)
    assert proposal.fallback_reason is None
    assert proposal.split == Split(D("77.1"), D("15.3"), D("4.8"), D("2.8"))


def test_the_chat_completions_url_may_be_given_in_full(llm: FakeLLM) -> None:
    llm.will(answer(split_json()))
    proposal = proposer(llm, url=llm.url + "/chat/completions").propose(METRICS)
    assert proposal.proposer == "llm"
    assert llm.requests[0]["path"] == "/v1/chat/completions"


def test_a_chunked_response_is_read_whole(llm: FakeLLM) -> None:
    envelope = json.dumps({"choices": [{"message": {"content": split_json()}}]}).encode()

    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.1"
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for start in range(0, len(envelope), 37):
            piece = envelope[start : start + 37]
            handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")

    llm.will(chunked)
    proposal = proposer(llm).propose(METRICS)
    assert proposal.fallback_reason is None and proposal.proposer == "llm"


# ------------------------------------------------------------------------------ hostile answers

HOSTILE = [
    pytest.param(answer("I think 80/15/3/2 is fine."), "not JSON", id="prose"),
    pytest.param(answer("Here you go: " + split_json()), "not JSON", id="json-after-prose"),
    pytest.param(answer("[77, 15, 5, 3]"), "not a JSON object", id="json-array"),
    pytest.param(
        answer(split_json(reinvestment_pct=95, dao_pct=3, lucky_pct=1, creator_pct=1)),
        "reinvestment percentage 95 is outside its bounds",
        id="out-of-bounds",
    ),
    pytest.param(
        answer(split_json(reinvestment_pct=76.99)),
        "percentages sum to 99.99, not exactly 100",
        id="sum-99.99",
    ),
    pytest.param(
        answer(split_json(confidence=..., reasoning=...)),
        "missing confidence, missing reasoning",
        id="missing-fields",
    ),
    pytest.param(
        answer(split_json(lucky_pct="5")), "lucky_pct is not a number", id="string-percentage"
    ),
    pytest.param(
        answer(split_json(should_rebalance="yes")),
        "should_rebalance is not a boolean",
        id="string-boolean",
    ),
    pytest.param(
        answer(split_json().replace("0.82", "NaN")), "NaN, which is not a number", id="nan"
    ),
    pytest.param(
        answer(split_json().replace("0.82", "1e400")), "could not be read", id="huge-exponent"
    ),
    pytest.param(answer(split_json(confidence=1.5)), "confidence 1.500 is outside", id="conf>1"),
    pytest.param(answer(split_json(reasoning="  ")), "reasoning is empty", id="empty-reasoning"),
    pytest.param(
        answer(split_json(should_rebalance=False)),
        "should_rebalance is false but the split",
        id="inconsistent-no-rebalance",
    ),
    pytest.param(
        answer(split_json(reinvestment_pct=76.995, lucky_pct=5.005)),
        "more than 2 decimals",
        id="three-decimals",
    ),
    pytest.param(raw(500, b'{"error": "overloaded"}'), "HTTP 500", id="http-500"),
    pytest.param(raw(401, b'{"error": "bad key"}'), "HTTP 401", id="http-401"),
    pytest.param(
        raw(302, b"", {"Location": "http://example.invalid/steal"}), "HTTP 302", id="redirect"
    ),
    pytest.param(raw(200, b"<html>gateway</html>"), "chat-completions JSON body", id="html"),
    pytest.param(raw(200, b'{"choices": []}'), "no choices[0].message.content", id="no-choices"),
    pytest.param(
        raw(200, b'{"choices": [{"message": {"content": null}}]}'), "is not text", id="null-content"
    ),
    pytest.param(
        answer(split_json(reasoning="x" * 300_000)), "larger than 262144 bytes", id="huge-answer"
    ),
]


@pytest.mark.parametrize(("behaviour", "reason"), HOSTILE)
def test_unusable_answers_fall_back_to_the_rules(
    llm: FakeLLM, behaviour: Behaviour, reason: str
) -> None:
    llm.will(behaviour)
    proposal = proposer(llm).propose(METRICS)
    assert proposal.proposer == "rules"
    assert proposal.split == RULES.split and proposal.reasoning == RULES.reasoning
    assert proposal.fallback_reason is not None
    assert reason in proposal.fallback_reason
    assert "rules proposer made this proposal instead" in proposal.fallback_reason


def test_a_slow_server_times_out_and_falls_back(llm: FakeLLM) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(1.5)
        answer(split_json())(handler)

    llm.will(slow)
    started = time.monotonic()
    proposal = proposer(llm, timeout_seconds=0.4).propose(METRICS)
    assert time.monotonic() - started < 1.4
    assert proposal.proposer == "rules"
    assert "timed out" in (proposal.fallback_reason or "")


def test_a_server_dripping_bytes_cannot_outlast_the_deadline(llm: FakeLLM) -> None:
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.05)  # each byte well within the read timeout

    llm.will(drip)
    started = time.monotonic()
    proposal = proposer(llm, timeout_seconds=0.5).propose(METRICS)
    assert time.monotonic() - started < 1.5
    assert "timed out" in (proposal.fallback_reason or "")


def test_an_unreachable_endpoint_falls_back() -> None:
    unreachable = LLMConfig(
        url="http://127.0.0.1:9/v1", model="m", api_key=API_KEY, timeout_seconds=1
    )
    proposal = LLMProposer(config=unreachable).propose(METRICS)
    assert proposal.proposer == "rules"
    assert "request failed" in (proposal.fallback_reason or "")


def test_a_missing_configuration_falls_back() -> None:
    proposal = LLMProposer(config=LLMConfig(url="", model="")).propose(METRICS)
    assert "not configured" in (proposal.fallback_reason or "")


def test_parse_answer_rejects_what_is_not_an_exact_number() -> None:
    assert parse_answer(split_json(lucky_pct=5.0)).split.lucky == D("5.0")
    with pytest.raises(Exception, match="lucky_pct is not a number"):
        parse_answer(split_json(lucky_pct=True))


# ------------------------------------------------------------------------------ the API key


def test_the_key_is_scrubbed_from_echoed_answers_and_errors(
    llm: FakeLLM, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    echoed = f"I was called with Bearer {API_KEY}; engagement is high."
    llm.will(
        answer(split_json(reasoning=echoed)),
        raw(500, json.dumps({"error": f"invalid key {API_KEY}"}).encode()),
        answer(split_json(reasoning=f"{API_KEY} " * 2000)),
    )
    caplog.set_level(logging.DEBUG)
    the_proposer = proposer(llm)
    valid = the_proposer.propose(METRICS)
    failed = the_proposer.propose(METRICS)
    too_long = the_proposer.propose(METRICS)
    assert valid.proposer == "llm" and "[redacted]" in valid.reasoning
    assert failed.fallback_reason and "HTTP 500" in failed.fallback_reason
    assert "[redacted]" in failed.fallback_reason
    assert too_long.fallback_reason and "longer than" in too_long.fallback_reason
    assert API_KEY not in repr(the_proposer) and API_KEY not in repr(the_proposer.config)

    engine = get_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    for proposal in (valid, failed, too_long):
        store_as(
            engine,
            proposal,
            by="llm:test-model",
            day=METRICS.metric_date,
            input_metrics=METRICS.to_json(),
        )
    with engine.connect() as conn:
        rows = conn.execute(sa.select(profit_allocation_log)).all()
    assert len(rows) == 4
    assert all(API_KEY not in repr(tuple(row)) for row in rows)
    assert caplog.records, "the fallbacks are logged"
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


def test_the_key_never_reaches_dagster_metadata_logs_or_run_config(
    llm: FakeLLM,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ALLOCATOR_LLM_API_KEY", API_KEY)
    llm.will(
        answer(split_json(reasoning=f"Echo: {API_KEY}. Growth is strong.")),
        raw(500, f"key {API_KEY} rejected".encode()),
    )
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    resources = {
        "database": DatabaseResource(database_url=url),
        "profit_split_config": ProfitSplitConfig(
            proposer="llm",
            llm_url=llm.url,
            llm_model="test-model",
            llm_api_key=dg.EnvVar("ALLOCATOR_LLM_API_KEY"),
            sample_scenario="rapid_growth",
        ),
    }
    instance = dg.DagsterInstance.ephemeral()
    caplog.set_level(logging.DEBUG)
    results = [
        dg.materialize(
            [platform_metrics, profit_split_proposal],
            partition_key=partition,
            resources=resources,
            instance=instance,
        )
        for partition in ("2025-04-02", "2025-04-03")
    ]
    assert all(result.success for result in results)
    assert llm.requests[0]["headers"]["Authorization"] == f"Bearer {API_KEY}"

    proposals = store.list_proposals(get_engine(url), status="proposed")
    assert [p.proposer for p in proposals] == ["rules", "llm"]  # newest first: the fallback
    assert "HTTP 500" in (proposals[0].fallback_reason or "")
    assert "[redacted]" in proposals[1].reasoning
    assert all(API_KEY not in json.dumps(p.to_json()) for p in proposals)

    metadata = [
        event.materialization.metadata
        for result in results
        for event in result.get_asset_materialization_events()
    ]
    assert len(metadata) == 4
    assert any("HTTP 500" in str(m.get("fallback_reason")) for m in metadata)
    everything = [str(m) for m in metadata]
    for run in instance.get_runs():
        everything.append(json.dumps(run.run_config, default=str))
        everything.extend(str(entry) for entry in instance.all_logs(run.run_id))
    everything.extend(record.getMessage() for record in caplog.records)
    assert len(everything) > 20
    assert not [text for text in everything if API_KEY in text]


def test_an_answer_moving_more_than_max_step_falls_back(llm: FakeLLM) -> None:
    # 80/15/3/2 -> 74/15/8/3 moves reinvestment 6 points: more than the rules' step of 5
    llm.will(answer(split_json(reinvestment_pct=74, dao_pct=15, lucky_pct=8, creator_pct=3)))
    proposal = proposer(llm).propose(METRICS)
    assert proposal.proposer == "rules" and proposal.split == RULES.split
    assert proposal.fallback_reason is not None
    assert "reinvestment moves 6.00 points" in proposal.fallback_reason
    assert "maximum step of 5.00" in proposal.fallback_reason
    # within the step, the same kind of answer is used
    llm.will(answer(split_json(reinvestment_pct=75, dao_pct=15, lucky_pct=7, creator_pct=3)))
    assert proposer(llm).propose(METRICS).proposer == "llm"


def test_rules_proposal_for_comparison_is_a_rebalance() -> None:
    # The fallback assertions above compare with this proposal; make sure it is a real change.
    assert RULES.should_rebalance and RULES.split != SEED_SPLIT
