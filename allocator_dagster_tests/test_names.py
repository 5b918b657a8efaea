"""One normal form for people's names, and the self-approval it prevents."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from allocator_dagster.names import MAX_NAME_LENGTH, ActorNameError, clean_name, same_actor
from allocator_dagster.storage import profit_split as store
from allocator_dagster_tests.support.profit_split import propose


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("alice", "alice"),
        ("  Alice \t  Smith\n", "Alice Smith"),
        ("Alice\u200b", "Alice"),  # zero-width space
        ("A\u00adl\u200dice\ufeff", "Alice"),  # soft hyphen, zero-width joiner, BOM
        ("ＡＬＩＣＥ", "ALICE"),  # full-width letters (NFKC)
        ("alice\x1b[2J", "alice[2J"),  # the escape character is removed
        ("\u202eecila", "ecila"),  # bidi override
    ],
)
def test_names_are_cleaned(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean


@pytest.mark.parametrize("raw", ["", "  ", "\u200b\u200b", "\x00\x07"])
def test_empty_names_are_refused(raw: str) -> None:
    with pytest.raises(ActorNameError, match="reviewer is empty"):
        clean_name(raw, "reviewer")


def test_long_names_are_refused() -> None:
    assert clean_name("x" * MAX_NAME_LENGTH) == "x" * MAX_NAME_LENGTH
    # invisible characters do not count, visible ones do
    assert clean_name("x" * MAX_NAME_LENGTH + "\u200b" * 50) == "x" * MAX_NAME_LENGTH
    with pytest.raises(ActorNameError, match="--by is 129 characters long; at most 128"):
        clean_name("x" * 129, "--by")


@pytest.mark.parametrize(
    "other", ["alice", "ALICE", "Alice\u200b", "ａｌｉｃｅ", " a\u00adlice ", "aLiCe"]
)
def test_same_actor_despite_the_spelling(other: str) -> None:
    assert same_actor("Alice", other)


def test_different_actors() -> None:
    assert not same_actor("alice", "alice2")
    assert not same_actor("alice smith", "alicesmith")


@pytest.mark.parametrize("reviewer", ["Alice\u200b", "ＡＬＩＣＥ", "a\u00adlice", "alice\x07"])
def test_nobody_approves_their_own_proposal_under_another_spelling(
    engine: sa.Engine, reviewer: str
) -> None:
    proposal = propose(engine, by="alice")
    with pytest.raises(store.ReviewError, match="cannot approve"):
        store.review_proposal(engine, proposal.id, approve=True, by=reviewer)
    assert store.get_proposal(engine, proposal.id).status == "proposed"


def test_a_long_reviewer_name_is_refused_before_the_database(engine: sa.Engine) -> None:
    proposal = propose(engine, by="alice")
    with pytest.raises(store.ReviewError, match="reviewer's name is 300 characters long"):
        store.review_proposal(engine, proposal.id, approve=True, by="b" * 300)
    with pytest.raises(ValueError, match="proposer's name is 129 characters long"):
        propose(engine, by="c" * 129)
    assert store.get_proposal(engine, proposal.id).status == "proposed"
