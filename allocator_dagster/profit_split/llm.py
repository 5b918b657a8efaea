"""An optional proposer that asks an OpenAI-compatible chat-completions endpoint for a split.

The answer is untrusted input: it is size- and time-limited, parsed with exact decimals, and
must pass the same validation as any proposal. Anything else (an HTTP error, a timeout, prose
instead of JSON, a split that does not sum to 100) falls back to the deterministic rules proposer
and the proposal says why in `fallback_reason`. The API key is sent only in the Authorization
header; it is scrubbed from every text that leaves this module (reasoning, reasons, logs).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import requests
import urllib3

from allocator_dagster.profit_split.metrics import PlatformMetrics
from allocator_dagster.profit_split.policy import (
    CONFIDENCE_QUANTUM,
    CategoryBounds,
    Proposal,
    Proposer,
    RulesProposer,
)
from allocator_dagster.profit_split.split import CATEGORIES, CATEGORY_LABELS, Split
from allocator_dagster.profit_split.validation import validate_proposal

# re-exported: the redaction lived here first, and callers import it from both places
from allocator_dagster.redaction import REDACTED as REDACTED
from allocator_dagster.redaction import redact_secret as redact_secret

logger = logging.getLogger(__name__)

CHAT_COMPLETIONS_PATH = "/chat/completions"


class LLMAnswerError(Exception):
    """Why an LLM answer cannot be used; the message becomes the fallback reason."""


@dataclass(frozen=True)
class LLMConfig:
    """Endpoint settings. `url` is the chat-completions URL or its base (`.../v1`)."""

    url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout_seconds: float = 20.0
    max_response_bytes: int = 256 * 1024

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith(CHAT_COMPLETIONS_PATH) else url + CHAT_COMPLETIONS_PATH


def _prompt(metrics: PlatformMetrics, bounds: CategoryBounds, max_step: Decimal) -> list[dict]:
    categories = "\n".join(
        f"- {c}_pct: {CATEGORY_LABELS[c]}, between {lo} and {hi}"
        for c in CATEGORIES
        for lo, hi in [bounds.range(c)]
    )
    system = (
        "You propose how a crypto platform splits its profit between four wallets.\n"
        f"{categories}\n"
        "Rules: percentages have at most two decimals and sum to exactly 100; move each category "
        f"by at most {max_step} points from the split in force; if no change is warranted, set "
        "should_rebalance to false and repeat the split in force.\n"
        "Answer with one JSON object and nothing else, with the keys reinvestment_pct, dao_pct, "
        "lucky_pct, creator_pct (numbers), confidence (number in [0, 1]), should_rebalance "
        "(boolean) and reasoning (a short paragraph naming the metrics you acted on)."
    )
    user = json.dumps({"metrics": metrics.to_json()}, sort_keys=True)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?\s*```$", re.DOTALL)


def _reject_constant(name: str) -> None:
    raise LLMAnswerError(f"the answer contains {name}, which is not a number")


def parse_answer(content: str) -> Proposal:
    """A Proposal from the model's message text (JSON, optionally in a markdown fence)."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(
            text, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise LLMAnswerError(f"the answer is not JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise LLMAnswerError("the answer is JSON nested too deeply to read") from None
    if not isinstance(data, dict):
        raise LLMAnswerError("the answer is not a JSON object")
    percentages: dict[str, Decimal] = {}
    problems: list[str] = []
    for category in CATEGORIES:
        key = next((k for k in (f"{category}_pct", category) if k in data), None)
        if key is None:
            problems.append(f"missing {category}_pct")
        elif not isinstance(data[key], Decimal):
            problems.append(f"{key} is not a number")
        else:
            percentages[category] = data[key]
    confidence = data.get("confidence")
    if "confidence" not in data:
        problems.append("missing confidence")
    elif not isinstance(confidence, Decimal):
        problems.append("confidence is not a number")
    rebalance = data.get("should_rebalance")
    if "should_rebalance" not in data:
        problems.append("missing should_rebalance")
    elif not isinstance(rebalance, bool):
        problems.append("should_rebalance is not a boolean")
    reasoning = data.get("reasoning")
    if "reasoning" not in data:
        problems.append("missing reasoning")
    elif not isinstance(reasoning, str):
        problems.append("reasoning is not a string")
    if problems:
        raise LLMAnswerError("the answer is incomplete: " + ", ".join(problems))
    assert isinstance(confidence, Decimal) and isinstance(rebalance, bool)
    assert isinstance(reasoning, str)
    if confidence.is_finite():  # a confidence is not money; three decimals is what is stored
        confidence = confidence.quantize(CONFIDENCE_QUANTUM, rounding=ROUND_HALF_EVEN)
    return Proposal(
        split=Split.from_mapping(percentages),
        confidence=confidence,
        should_rebalance=rebalance,
        reasoning=reasoning.strip(),
        proposer=Proposer.LLM,
    )


@dataclass(frozen=True)
class LLMProposer:
    """Asks the model; falls back to `fallback` (the rules) whenever the answer is unusable."""

    config: LLMConfig
    fallback: RulesProposer = field(default_factory=RulesProposer)
    session: requests.Session | None = field(default=None, compare=False, repr=False)

    @property
    def bounds(self) -> CategoryBounds:
        return self.fallback.bounds

    def scrub(self, text: str) -> str:
        """`text` with the API key removed, wherever it appears (see `redact_secret`)."""
        return redact_secret(text, self.config.api_key)

    def propose(self, metrics: PlatformMetrics) -> Proposal:
        """The model's proposal if it is valid, otherwise the rules' proposal and the reason."""
        try:
            proposal = self.ask(metrics)
            result = validate_proposal(
                proposal,
                bounds=self.bounds,
                current=metrics.current_split,
                max_step=self.fallback.max_step,
            )
            if not result.ok:
                raise LLMAnswerError("the proposal is invalid: " + "; ".join(result.errors))
            return replace(proposal, warnings=result.warnings)
        except LLMAnswerError as exc:
            reason = self.scrub(str(exc))
        except (ArithmeticError, ValueError, TypeError, RecursionError) as exc:  # e.g. 1E+400
            reason = self.scrub(f"the answer could not be read ({type(exc).__name__}: {exc})")
        logger.warning("LLM proposal not used, falling back to the rules proposer: %s", reason)
        fallback = self.fallback.propose(metrics)
        return replace(
            fallback,
            fallback_reason=f"LLM answer not used: {reason}. The deterministic rules proposer "
            "made this proposal instead.",
        )

    def ask(self, metrics: PlatformMetrics) -> Proposal:
        """One chat-completions request; raises LLMAnswerError for anything unusable."""
        content = self._message_content(self._post(metrics))
        proposal = parse_answer(content)
        return replace(proposal, reasoning=self.scrub(proposal.reasoning))

    def _post(self, metrics: PlatformMetrics) -> bytes:
        cfg = self.config
        if not cfg.url or not cfg.model:
            raise LLMAnswerError("the LLM URL or model is not configured")
        # identity: the size limit then applies to what is sent, and nothing is decompressed.
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        body = {
            "model": cfg.model,
            "messages": _prompt(metrics, self.bounds, self.fallback.max_step),
            "temperature": 0,
        }
        session = self.session or requests.Session()
        deadline = time.monotonic() + cfg.timeout_seconds
        try:
            with session.post(
                cfg.endpoint,
                json=body,
                headers=headers,
                timeout=(min(5.0, cfg.timeout_seconds), cfg.timeout_seconds),
                stream=True,
                allow_redirects=False,
            ) as response:
                raw = self._read_limited(response, deadline)
                status = response.status_code
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise LLMAnswerError(f"no answer within {cfg.timeout_seconds} s (timed out)") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise LLMAnswerError(f"request failed: {type(exc).__name__}") from None
        finally:
            if self.session is None:
                session.close()
        if status != 200:
            snippet = raw[:200].decode("utf-8", errors="replace")
            raise LLMAnswerError(f"HTTP {status} from the LLM endpoint: {snippet!r}")
        return raw

    def _read_limited(self, response: requests.Response, deadline: float) -> bytes:
        limit = self.config.max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise LLMAnswerError(f"the answer is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise LLMAnswerError(
                    f"no complete answer within {self.config.timeout_seconds} s (timed out)"
                )
            # read1 returns what has arrived (read(n) would wait for n bytes), so a server that
            # drips bytes slowly cannot hold the request past the deadline.
            chunk = response.raw.read1(8192)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise LLMAnswerError(f"the answer is larger than {limit} bytes")
            chunks.append(chunk)

    @staticmethod
    def _message_content(raw: bytes) -> str:
        try:
            envelope: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise LLMAnswerError(
                "the endpoint did not return a chat-completions JSON body"
            ) from None
        except RecursionError:
            raise LLMAnswerError("the response body is JSON nested too deeply to read") from None
        try:
            content = envelope["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMAnswerError("the response has no choices[0].message.content") from None
        if not isinstance(content, str):
            raise LLMAnswerError("choices[0].message.content is not text")
        return content
