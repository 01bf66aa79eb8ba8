"""Policy counters live in the store: a budget holds across processes and replicas,
and trust and approval memory survive a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gatekit import Action, Client, DecisionRequest, LocalBackend, Settings, Status

WORKER = Path(__file__).with_name("budget_worker.py")
BUDGET = 20

BUDGET_POLICY = f"""
default: allow
limits:
  - id: daily-spend
    per: agent
    tools: [pay]
    sum: amount
    window: 1d
    max_total: {BUDGET}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_budget_holds_across_two_processes_on_one_sqlite_data_dir(tmp_path):
    policy = write(tmp_path, "policy.yaml", BUDGET_POLICY)
    go = tmp_path / "go"
    env = {**os.environ, "GATEKIT_DATA_DIR": str(tmp_path / "shared")}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(go), str(policy), "4"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    allowed = 0
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        allowed += json.loads(out.strip().splitlines()[-1])["allowed"]
    # 2 processes x 8 threads x 4 calls = 64 attempts at 1 each, against a budget of 20.
    assert allowed == BUDGET


@pytest.mark.postgres
def test_a_budget_holds_across_two_backends_on_one_postgresql(tmp_path, postgres_url):
    policy = write(tmp_path, "policy.yaml", BUDGET_POLICY)
    settings = Settings(data_dir=tmp_path / "state", database_url=postgres_url, policy=policy)
    replicas = [LocalBackend(settings=settings), LocalBackend(settings=settings)]
    clients = [Client(replica, agent_id="payer") for replica in replicas]

    def spend(client: Client) -> int:
        return sum(
            client.decide(tool="pay", risk_level="low", arguments={"amount": 1}).status
            is Status.ALLOWED
            for _ in range(4)
        )

    try:
        with ThreadPoolExecutor(16) as pool:
            allowed = sum(pool.map(spend, [c for c in clients for _ in range(8)]))
    finally:
        for replica in replicas:
            replica.close()
    assert allowed == BUDGET


def _decide(backend: LocalBackend, **fields: object) -> Status:
    action = Action(agent_id="agent-7", **fields)  # type: ignore[arg-type]
    return backend.decide(DecisionRequest.for_action(action)).status


def test_trust_quarantine_survives_a_restart(tmp_path):
    policy = write(
        tmp_path,
        "policy.yaml",
        """
default: allow
rules:
  - {id: no-wipe, match: {tools: [wipe]}, verdict: block}
trust: {window: 1h, reduced_after: 1, quarantine_after: 2, quarantine_for: 1h}
""",
    )
    settings = Settings(data_dir=tmp_path / "state", policy=policy)
    first = LocalBackend(settings=settings)
    assert _decide(first, tool="wipe", risk_level="low") is Status.BLOCKED
    assert _decide(first, tool="wipe", risk_level="low") is Status.BLOCKED
    first.close()

    restarted = LocalBackend(settings=settings)
    decision = restarted.decide(
        DecisionRequest.for_action(Action(tool="read", risk_level="low", agent_id="agent-7"))
    )
    restarted.close()
    assert decision.status is Status.BLOCKED
    assert decision.trust_level == "quarantined"


def test_approval_memory_survives_a_restart(tmp_path):
    policy = write(
        tmp_path,
        "policy.yaml",
        "default: review\napproval_memory: {after: 1}\n",
    )
    settings = Settings(data_dir=tmp_path / "state", policy=policy)
    action = Action(tool="export", risk_level="medium", agent_id="agent-7", arguments={"id": 1})
    first = LocalBackend(settings=settings)
    pending = first.decide(DecisionRequest.for_action(action))
    assert pending.status is Status.PENDING_REVIEW
    first.approve(pending.approval_id, reviewer="alice")
    first.close()

    restarted = LocalBackend(settings=settings)
    again = restarted.decide(DecisionRequest.for_action(action))
    restarted.close()
    assert again.status is Status.ALLOWED
    assert again.rule_ids == ["approval-memory"]
