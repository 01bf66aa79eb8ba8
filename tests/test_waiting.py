"""Waiting for a human is never silent: the wait says what it waits for and how to
approve it, and a timeout still names the open review."""

from __future__ import annotations

import logging

import pytest

from gatekit import ApprovalTimeout, Client, LocalBackend
from gatekit.store import MemoryStore


def test_a_wait_for_review_says_which_approval_and_how_to_approve(caplog) -> None:
    client = Client(LocalBackend(store=MemoryStore()))
    ran: list[int] = []
    with (
        caplog.at_level(logging.WARNING, logger="gatekit"),
        pytest.raises(ApprovalTimeout) as timeout,
        client.guard(tool="pay_invoice", risk_level="high", timeout=0.3),
    ):
        ran.append(1)
    assert ran == []
    approval_id = timeout.value.approval_id
    assert approval_id is not None and approval_id.startswith("apr_")
    said = [r.getMessage() for r in caplog.records if r.name == "gatekit"]
    assert any(
        "pay_invoice" in line
        and approval_id in line
        and f"gatekit approvals approve {approval_id}" in line
        for line in said
    ), said
