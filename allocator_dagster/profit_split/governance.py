"""Who may review a proposal and how many approvals it needs ("multi-signature for large changes").

One policy for every review path (command line, Dagster job, auto-approval): it is read from the
environment by both, so neither can be used to get around the other.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from allocator_dagster import names as actor_names
from allocator_dagster.names import MAX_NAME_LENGTH
from allocator_dagster.profit_split.policy import AUTO_APPROVE_REVIEWER

REVIEWERS_ENV = "ALLOCATOR_REVIEWERS"
MULTISIG_THRESHOLD_ENV = "ALLOCATOR_MULTISIG_THRESHOLD_PCT"
MULTISIG_APPROVALS_ENV = "ALLOCATOR_MULTISIG_APPROVALS"
SYSTEM_ACTOR = "system"
# Names only the software acts under; a person cannot review under them.
RESERVED_NAMES = frozenset({SYSTEM_ACTOR, AUTO_APPROVE_REVIEWER, "seed"})
MAX_NAME_CHARS = MAX_NAME_LENGTH


def clean_name(name: str) -> str:
    """A person's name as stored (the one normal form of allocator_dagster.names; may be empty)."""
    return actor_names.normal_form(name)


def name_key(name: str) -> str:
    """The identity of a name: two spellings with the same key are the same person."""
    return actor_names.name_key(name)


def check_name(name: str, what: str = "reviewer") -> str:
    """The cleaned name, or ValueError saying why it cannot be used (names.clean_name)."""
    return actor_names.clean_name(name, f"the {what}'s name")


def check_notes(notes: str) -> str | None:
    """The review notes as stored (None when blank), or ValueError naming the first character
    no database stores as text: NUL (PostgreSQL refuses it) or a lone surrogate (not UTF-8).

    Unlike a name, notes are the reviewer's own words: refused, never silently cleaned.
    """
    text = notes.strip()
    for position, char in enumerate(text, start=1):
        if char == "\x00" or "\ud800" <= char <= "\udfff":
            raise ValueError(
                f"the review notes contain U+{ord(char):04X} at character {position}, which "
                "cannot be stored; remove it"
            )
    return text or None


class PolicyError(ValueError):
    """A review policy that cannot work (bad threshold or approval count)."""


@dataclass(frozen=True)
class ReviewPolicy:
    """`approvals` distinct approvals when the largest move is `threshold_pct` points or more.

    `threshold_pct` None: one approval is always enough. `reviewers` empty: anyone may review
    (except the proposer approving their own proposal, which never counts).
    """

    threshold_pct: Decimal | None = None
    approvals: int = 2
    reviewers: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.threshold_pct is not None and not 0 <= self.threshold_pct <= 100:
            raise PolicyError(
                f"the multi-signature threshold {self.threshold_pct} is not in [0, 100]"
            )
        if not 1 <= self.approvals <= 20:
            raise PolicyError(f"the number of approvals {self.approvals} is not between 1 and 20")
        object.__setattr__(self, "reviewers", frozenset(name_key(r) for r in self.reviewers))

    def required_approvals(self, largest_change: Decimal) -> int:
        """How many distinct approvals a change of `largest_change` points needs."""
        if self.threshold_pct is not None and largest_change >= self.threshold_pct:
            return self.approvals
        return 1

    def may_review(self, reviewer: str) -> bool:
        return not self.reviewers or name_key(reviewer) in self.reviewers

    def describe(self) -> str:
        who = ", ".join(sorted(self.reviewers)) if self.reviewers else "anyone"
        if self.threshold_pct is None:
            return f"one approval; reviewers: {who}"
        return (
            f"{self.approvals} distinct approvals for moves of {self.threshold_pct} points or "
            f"more, otherwise one; reviewers: {who}"
        )

    @classmethod
    def from_settings(
        cls,
        threshold_pct: str | None,
        approvals: str | int | None,
        reviewers: str | Iterable[str] | None,
    ) -> ReviewPolicy:
        """From text settings (environment, resource fields); errors name the setting."""
        threshold = None
        if threshold_pct not in (None, ""):
            try:
                threshold = Decimal(str(threshold_pct).strip())
            except InvalidOperation:
                raise PolicyError(
                    f"{MULTISIG_THRESHOLD_ENV}={threshold_pct!r} is not a number of points"
                ) from None
            if not threshold.is_finite():
                raise PolicyError(f"{MULTISIG_THRESHOLD_ENV}={threshold_pct!r} is not finite")
        count = 2
        if approvals not in (None, ""):
            try:
                count = int(str(approvals).strip())
            except ValueError:
                raise PolicyError(
                    f"{MULTISIG_APPROVALS_ENV}={approvals!r} is not a whole number"
                ) from None
        if isinstance(reviewers, str):
            reviewers = reviewers.split(",")
        names = frozenset(clean_name(r) for r in reviewers or () if clean_name(r))
        return cls(threshold_pct=threshold, approvals=count, reviewers=names)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReviewPolicy:
        env = os.environ if environ is None else environ
        return cls.from_settings(
            env.get(MULTISIG_THRESHOLD_ENV), env.get(MULTISIG_APPROVALS_ENV), env.get(REVIEWERS_ENV)
        )
