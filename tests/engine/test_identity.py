"""Separation of duties compares identities as people read them."""

from __future__ import annotations

import pytest

from gatekit import Action, DecisionRequest, LocalBackend, ReviewConflict, ValidationError
from gatekit.engine import same_identity
from gatekit.store import MemoryStore


@pytest.mark.parametrize(
    "reviewer",
    ["agent-1", "Agent-1", "AGENT-1", "agent-1 ", " agent-1", "\uff41\uff47\uff45\uff4e\uff54-1"],
    ids=["same", "title", "upper", "trailing", "leading", "fullwidth"],
)
def test_an_agent_cannot_approve_its_own_request_under_another_spelling(reviewer: str) -> None:
    backend = LocalBackend(store=MemoryStore())
    action = Action(tool="pay", risk_level="high", agent_id="agent-1")
    pending = backend.decide(DecisionRequest.for_action(action))
    with pytest.raises(ReviewConflict, match="separation of duties"):
        backend.approve(pending.approval_id, reviewer=reviewer)
    assert backend.approve(pending.approval_id, reviewer="alice").status.value == "approved"


@pytest.mark.parametrize(
    "identity", ["agent\u200b-1", "agent-1\u202e", "agent\x00-1"], ids=["zwsp", "bidi", "nul"]
)
def test_invisible_characters_are_refused_at_the_edge(identity: str) -> None:
    with pytest.raises(ValidationError, match="invisible or control character"):
        Action(tool="pay", agent_id=identity)
    backend = LocalBackend(store=MemoryStore())
    pending = backend.decide(DecisionRequest.for_action(Action(tool="pay", risk_level="high")))
    with pytest.raises(ValidationError, match="invisible or control character"):
        backend.approve(pending.approval_id, reviewer=identity)


def test_different_people_are_different() -> None:
    assert not same_identity("agent-1", "agent-2")
    assert same_identity("Ärger", "a\u0308rger")  # composed and decomposed forms
