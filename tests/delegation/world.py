"""A small delegation world for tests: a trusted root, an orchestrator, a worker,
an engine over an in-memory store and a spy policy that records every call."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gatekit import Action, Decision, DecisionRequest
from gatekit._models import (
    Check,
    CheckOutcome,
    DataSensitivity,
    OperationClass,
    RiskLevel,
    Status,
    Verdict,
)
from gatekit.delegation import (
    GENERIC_REASON,
    AgentKey,
    DelegationChain,
    DelegationConfig,
    DelegationScope,
    register_key,
)
from gatekit.engine import Engine
from gatekit.policy import Evaluation
from gatekit.store import MemoryStore, Store

NOW = 1_900_000_000.0
AUDIENCE = "gatekit"


class SpyPolicy:
    """Allows everything, and remembers every request it was asked about."""

    def __init__(self) -> None:
        self.calls: list[DecisionRequest] = []

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        self.calls.append(request)
        return Evaluation(Verdict.ALLOW, "the spy allows it", ("spy",), ())


BROAD = DelegationScope(
    max_risk=RiskLevel.MEDIUM,
    operations=frozenset({OperationClass.READ, OperationClass.UPDATE}),
    sensitivities=frozenset({DataSensitivity.INTERNAL, DataSensitivity.PUBLIC}),
    tools=("fs.*",),
    resources=("/data",),
    budget=100,
)
NARROW = DelegationScope(
    max_risk=RiskLevel.LOW,
    operations=frozenset({OperationClass.READ}),
    sensitivities=frozenset({DataSensitivity.INTERNAL}),
    tools=("fs.read",),
    resources=("/data/a",),
    budget=10,
)


def read_action(path: str = "/data/a/report.txt", **fields: Any) -> Action:
    values: dict[str, Any] = {
        "tool": "fs.read",
        "arguments": {"path": path},
        "risk_level": "low",
        "operation_class": "read",
        "data_sensitivity": "internal",
        "agent_id": "worker",
    }
    return Action(**{**values, **fields})


@dataclass
class World:
    store: Store = field(default_factory=MemoryStore)
    policy: SpyPolicy = field(default_factory=SpyPolicy)
    now: float = NOW
    config: DelegationConfig = field(default_factory=DelegationConfig)
    root: AgentKey = field(default_factory=lambda: AgentKey.generate("root"))
    orchestrator: AgentKey = field(default_factory=lambda: AgentKey.generate("orchestrator"))
    worker: AgentKey = field(default_factory=lambda: AgentKey.generate("worker"))

    def __post_init__(self) -> None:
        self.engine = Engine(
            self.policy,
            self.store,
            clock=lambda: datetime.fromtimestamp(self.now, UTC),
            delegation=self.config,
        )
        register_key(self.store, self.root, root=True)
        register_key(self.store, self.orchestrator)
        register_key(self.store, self.worker)

    # -- chains ------------------------------------------------------------------

    def root_chain(
        self, scope: DelegationScope = BROAD, *, to: AgentKey | None = None, ttl: float = 3600
    ) -> DelegationChain:
        delegatee = to or self.orchestrator
        chain = DelegationChain.issue_root(
            self.root,
            delegatee=delegatee.identity,
            delegatee_key_id=delegatee.key_id,
            scope=scope,
            ttl=ttl,
            now=self.now,
        )
        return chain.held_by(delegatee)

    def worker_chain(
        self,
        scope: DelegationScope = NARROW,
        *,
        parent_scope: DelegationScope = BROAD,
        ttl: float = 600,
    ) -> DelegationChain:
        child = self.root_chain(parent_scope).delegate(
            delegatee=self.worker.identity,
            delegatee_key_id=self.worker.key_id,
            scope=scope,
            ttl=ttl,
            now=self.now,
        )
        return child.held_by(self.worker)

    # -- requests ----------------------------------------------------------------

    def request(
        self,
        chain: DelegationChain,
        action: Action | None = None,
        *,
        at: float | None = None,
        nonce: str | None = None,
    ) -> DecisionRequest:
        action = action or read_action()
        envelope = chain.envelope(action, now=self.now if at is None else at, nonce=nonce)
        return DecisionRequest(action=action, action_digest=action.digest(), delegation=envelope)

    def decide(self, request: DecisionRequest) -> Decision:
        return self.engine.decide(request)


def with_envelope(request: DecisionRequest, **changes: Any) -> DecisionRequest:
    assert request.delegation is not None
    envelope = request.delegation.model_copy(update=changes)
    return request.model_copy(update={"delegation": envelope})


# -- hand-made JWS, for what no honest signer produces -----------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, claims, signature = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(claims)), signature


def reassemble(header: dict[str, Any] | str, claims: dict[str, Any] | str, signature: str) -> str:
    """A JWS from parts: dicts are JSON-encoded, strings used as the raw JSON text."""

    def encode(part: dict[str, Any] | str) -> str:
        text = part if isinstance(part, str) else json.dumps(part)
        return b64(text.encode())

    return f"{encode(header)}.{encode(claims)}.{signature}"


def edit(token: str, *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """``token`` with header fields and claims changed, its old signature kept."""
    old_header, old_claims, signature = segments(token)
    return reassemble({**old_header, **(header or {})}, {**old_claims, **claims}, signature)


def assert_refused(world: World, decision: Decision, code: str) -> None:
    assert decision.status is Status.BLOCKED
    assert decision.reason == GENERIC_REASON
    assert Check(name="delegation", outcome=CheckOutcome.BLOCK, detail=code) in decision.checks
    assert world.policy.calls == [], "policy must never see an unverified request"
    records = world.store.decision_records(decision.decision_id)
    assert records and code in records[0].body  # the precise code is in the audit record


def assert_accepted(world: World, decision: Decision) -> None:
    assert decision.status is Status.ALLOWED, decision.checks
    assert any(c.name == "delegation" and c.outcome is CheckOutcome.PASS for c in decision.checks)
    assert world.policy.calls
