"""Secrets out of every text that leaves the process: an API key and any long piece of it.

One definition for every client that holds a key (the LLM proposer, the Etherscan client):
messages, logs and metadata pass through `redact_secret` before they are shown or stored.
"""

from __future__ import annotations

REDACTED = "[redacted]"

# A fragment of at least this many characters of the API key is redacted: an error body cut at
# 200 characters can end with the key's first characters, and a few of them narrow a search.
KEY_FRAGMENT = 8


def redact_secret(text: str, secret: str, fragment: int = KEY_FRAGMENT) -> str:
    """`text` with `secret` and every run of `fragment` or more of its consecutive characters
    replaced by REDACTED (a secret shorter than `fragment` is redacted where it appears whole)."""
    if not secret or not text:
        return text
    size = min(fragment, len(secret))
    grams = {secret[i : i + size] for i in range(len(secret) - size + 1)}
    covered = [False] * len(text)
    for i in range(len(text) - size + 1):
        if text[i : i + size] in grams:
            covered[i : i + size] = [True] * size
    out: list[str] = []
    i = 0
    while i < len(text):
        if covered[i]:
            out.append(REDACTED)
            while i < len(text) and covered[i]:
                i += 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
