"""Rate limits, budgets, trust levels and approval memory, through the embedded engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gatekit import (
    Action,
    Blocked,
    Client,
    DecisionRequest,
    LocalBackend,
    RateLimited,
    Status,
)
from gatekit.policy import MemoryPolicyState, RulePolicy

Compile = Callable[[str], RulePolicy]


def _decide(backend: LocalBackend, **fields: Any) -> Any:
    fields.setdefault("tool", "tool")
    fields.setdefault("agent_id", "bot")
    return backend.decide(DecisionRequest.for_action(Action(**fields)))


# -- rate limits ------------------------------------------------------------------------

CALLS = """\
default: allow
limits:
  - id: per-agent
    per: agent
    window: 60s
    max_calls: 3
    reason: three calls a minute
"""


def test_calls_per_window_then_retry_after(compile_policy: Compile, clock: Any) -> None:
    backend = LocalBackend(policy=compile_policy(CALLS))
    for _second in range(3):
        assert _decide(backend).status is Status.ALLOWED
        clock.advance(10)
    blocked = _decide(backend)
    assert blocked.status is Status.BLOCKED
    assert blocked.rule_ids == ["limit.per-agent"]
    assert blocked.retry_after == pytest.approx(30)  # the first call leaves the window at t=60
    assert blocked.reason.startswith("three calls a minute")
    (check,) = blocked.checks
    assert check.name == "limit.per-agent"
    assert "would exceed 3" in check.detail
    clock.advance(30)
    assert _decide(backend).status is Status.ALLOWED


def test_limits_are_per_agent(compile_policy: Compile) -> None:
    backend = LocalBackend(policy=compile_policy(CALLS))
    for _ in range(3):
        _decide(backend, agent_id="a")
    assert _decide(backend, agent_id="a").status is Status.BLOCKED
    assert _decide(backend, agent_id="b").status is Status.ALLOWED


def test_per_tool_and_scoped_limits(compile_policy: Compile) -> None:
    policy = compile_policy(
        "default: allow\nlimits:\n"
        "  - {id: exports, per: tool, tools: [export_*], window: 1h, max_calls: 1}\n"
    )
    backend = LocalBackend(policy=policy)
    assert _decide(backend, tool="export_a", agent_id="x").status is Status.ALLOWED
    assert _decide(backend, tool="export_a", agent_id="y").status is Status.BLOCKED
    assert _decide(backend, tool="export_b", agent_id="x").status is Status.ALLOWED
    assert _decide(backend, tool="read", agent_id="x").status is Status.ALLOWED


def test_the_client_raises_rate_limited_and_the_tool_does_not_run(
    compile_policy: Compile,
) -> None:
    client = Client(LocalBackend(policy=compile_policy(CALLS)), agent_id="bot")
    ran: list[int] = []
    for call in range(3):
        with client.guard(tool="t"):
            ran.append(call)
    with pytest.raises(RateLimited) as caught, client.guard(tool="t"):
        ran.append(99)
    assert ran == [0, 1, 2]
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0


def test_blocked_calls_do_not_use_the_quota(compile_policy: Compile) -> None:
    policy = compile_policy(
        CALLS + "rules:\n  - {id: deny, match: {tools: [bad]}, verdict: block}\n"
    )
    backend = LocalBackend(policy=policy)
    for _ in range(5):
        assert _decide(backend, tool="bad").status is Status.BLOCKED
    assert _decide(backend).status is Status.ALLOWED


def test_a_rule_block_is_not_rate_limited(compile_policy: Compile) -> None:
    """retry_after only when waiting would help: a rule that blocks too means no retry."""
    policy = compile_policy(
        CALLS + "rules:\n  - {id: deny, match: {tools: [bad]}, verdict: block}\n"
    )
    backend = LocalBackend(policy=policy)
    for _ in range(3):
        _decide(backend)
    blocked = _decide(backend, tool="bad")
    assert blocked.rule_ids == ["deny", "limit.per-agent"]
    assert blocked.retry_after is None


BUDGET = """\
default: allow
limits:
  - id: daily-spend
    per: agent
    tools: [pay]
    sum: amount
    window: 1d
    max_total: 1000
"""


def test_budget_sums_an_argument(compile_policy: Compile, clock: Any) -> None:
    backend = LocalBackend(policy=compile_policy(BUDGET))
    assert _decide(backend, tool="pay", arguments={"amount": 600}).status is Status.ALLOWED
    clock.advance(3600)
    assert _decide(backend, tool="pay", arguments={"amount": 300}).status is Status.ALLOWED
    over = _decide(backend, tool="pay", arguments={"amount": 200})
    assert over.status is Status.BLOCKED
    assert "900 + 200 would exceed 1000" in over.checks[0].detail
    assert over.retry_after == pytest.approx(86400 - 3600)
    assert _decide(backend, tool="pay", arguments={"amount": 100}).status is Status.ALLOWED


def test_one_call_above_the_budget_cannot_be_retried(compile_policy: Compile) -> None:
    backend = LocalBackend(policy=compile_policy(BUDGET))
    decision = _decide(backend, tool="pay", arguments={"amount": 5000})
    assert decision.status is Status.BLOCKED
    assert decision.retry_after is None


@pytest.mark.parametrize("arguments", [{}, {"amount": "12"}, {"amount": -5}, {"amount": True}])
def test_a_budget_without_a_number_blocks(compile_policy: Compile, arguments: Any) -> None:
    backend = LocalBackend(policy=compile_policy(BUDGET))
    decision = _decide(backend, tool="pay", arguments=arguments)
    assert decision.status is Status.BLOCKED
    assert decision.checks[0].path == "args.amount"


def test_rechecking_an_approval_does_not_spend_twice(compile_policy: Compile) -> None:
    policy = compile_policy(BUDGET.replace("default: allow", "default: review"))
    backend = LocalBackend(policy=policy)
    request = DecisionRequest.for_action(
        Action(tool="pay", agent_id="bot", arguments={"amount": 700})
    )
    pending = backend.decide(request)
    assert pending.status is Status.PENDING_REVIEW  # counted: 700 of 1000
    backend.approve(pending.approval_id or "", reviewer="ann")
    assert backend.consume(pending.decision_id, request).consumed_at is not None
    assert _decide(backend, tool="pay", arguments={"amount": 300}).status is Status.PENDING_REVIEW
    assert _decide(backend, tool="pay", arguments={"amount": 1}).status is Status.BLOCKED


# -- trust -------------------------------------------------------------------------------

TRUST = """\
default: allow
rules:
  - {id: forbidden, match: {tools: [rm_rf]}, verdict: block}
trust:
  window: 10m
  reduced_after: 2
  quarantine_after: 4
  quarantine_for: 15m
"""


def test_trust_drops_to_reduced_then_quarantined(compile_policy: Compile, clock: Any) -> None:
    backend = LocalBackend(policy=compile_policy(TRUST))
    normal = _decide(backend, tool="read")
    assert (normal.status, normal.trust_level) == (Status.ALLOWED, "normal")

    for _ in range(2):
        assert _decide(backend, tool="rm_rf").status is Status.BLOCKED
    reduced = _decide(backend, tool="read")
    assert (reduced.status, reduced.trust_level) == (Status.PENDING_REVIEW, "reduced")
    assert reduced.rule_ids == ["trust.reduced"]
    assert "reduced trust" in reduced.reason

    for _ in range(2):
        _decide(backend, tool="rm_rf")
    quarantined = _decide(backend, tool="read")
    assert (quarantined.status, quarantined.trust_level) == (Status.BLOCKED, "quarantined")
    assert quarantined.rule_ids == ["trust.quarantined"]
    assert quarantined.retry_after is None
    assert _decide(backend, tool="read", agent_id="other").status is Status.ALLOWED


def test_quarantine_ends_after_the_cooldown_then_probation(
    compile_policy: Compile, clock: Any
) -> None:
    backend = LocalBackend(policy=compile_policy(TRUST))
    for _ in range(4):
        _decide(backend, tool="rm_rf")
    clock.advance(14 * 60)
    # Attempts during quarantine are blocked but do not extend it.
    for _ in range(10):
        assert _decide(backend, tool="read").status is Status.BLOCKED
    clock.advance(61)
    probation = _decide(backend, tool="read")
    assert (probation.status, probation.trust_level) == (Status.PENDING_REVIEW, "reduced")
    clock.advance(10 * 60)
    assert _decide(backend, tool="read").trust_level == "normal"


def test_old_blocks_leave_the_window(compile_policy: Compile, clock: Any) -> None:
    backend = LocalBackend(policy=compile_policy(TRUST))
    for _ in range(2):
        _decide(backend, tool="rm_rf")
    assert _decide(backend, tool="read").trust_level == "reduced"
    clock.advance(601)
    assert _decide(backend, tool="read").trust_level == "normal"


def test_quarantine_blocks_even_what_a_rule_allows_and_through_the_client(
    compile_policy: Compile,
) -> None:
    backend = LocalBackend(policy=compile_policy(TRUST))
    client = Client(backend, agent_id="bot", dlp_mode="off")
    for _ in range(4):
        assert client.decide(tool="rm_rf").status is Status.BLOCKED
    ran = []
    with pytest.raises(Blocked, match="quarantined"), client.guard(tool="read"):
        ran.append(1)
    assert ran == []


# -- approval memory ---------------------------------------------------------------------------

MEMORY = """\
default: review
approval_memory:
  after: 2
"""


def _approve(backend: LocalBackend, request: DecisionRequest, reviewer: str = "ann") -> None:
    decision = backend.decide(request)
    assert decision.status is Status.PENDING_REVIEW
    backend.approve(decision.approval_id or "", reviewer=reviewer)


def _request(**fields: Any) -> DecisionRequest:
    fields.setdefault("tool", "refund")
    fields.setdefault("agent_id", "bot")
    fields.setdefault("arguments", {"order": "A-1", "amount": 20})
    return DecisionRequest.for_action(Action(**fields))


def test_an_action_approved_n_times_is_then_allowed(compile_policy: Compile) -> None:
    backend = LocalBackend(policy=compile_policy(MEMORY))
    _approve(backend, _request())
    _approve(backend, _request())
    remembered = backend.decide(_request())
    assert remembered.status is Status.ALLOWED
    assert remembered.rule_ids == ["approval-memory"]
    assert "approved by humans 2 times" in remembered.reason


def test_a_different_action_is_not_remembered(compile_policy: Compile) -> None:
    backend = LocalBackend(policy=compile_policy(MEMORY))
    _approve(backend, _request())
    _approve(backend, _request())
    other = backend.decide(_request(arguments={"order": "A-1", "amount": 21}))
    assert other.status is Status.PENDING_REVIEW
    assert backend.decide(_request(agent_id="other")).status is Status.PENDING_REVIEW


@pytest.mark.parametrize("risk", ["high", "critical"])
def test_never_for_high_or_critical(compile_policy: Compile, risk: str) -> None:
    backend = LocalBackend(policy=compile_policy(MEMORY))
    for _ in range(5):
        _approve(backend, _request(risk_level=risk))
    assert backend.decide(_request(risk_level=risk)).status is Status.PENDING_REVIEW


def test_a_rejection_resets_the_memory(compile_policy: Compile) -> None:
    backend = LocalBackend(policy=compile_policy(MEMORY))
    _approve(backend, _request())
    pending = backend.decide(_request())
    backend.reject(pending.approval_id or "", reviewer="bob")
    _approve(backend, _request())
    assert backend.decide(_request()).status is Status.PENDING_REVIEW
    _approve(backend, _request())
    assert backend.decide(_request()).status is Status.ALLOWED


def test_memory_never_lifts_a_block(compile_policy: Compile) -> None:
    policy = compile_policy(
        MEMORY + "rules:\n  - {id: deny, match: {tools: [refund]}, when: "
        "args.amount > 100, verdict: block}\n"
    )
    backend = LocalBackend(policy=policy)
    _approve(backend, _request())
    _approve(backend, _request())
    assert backend.decide(_request()).status is Status.ALLOWED
    assert backend.decide(_request(arguments={"amount": 500})).status is Status.BLOCKED


def test_memory_window(compile_policy: Compile, clock: Any) -> None:
    backend = LocalBackend(policy=compile_policy(MEMORY + "  window: 1d\n"))
    _approve(backend, _request())
    clock.advance(2 * 86400)
    _approve(backend, _request())
    assert backend.decide(_request()).status is Status.PENDING_REVIEW


def test_state_can_be_shared_between_engines(clock: Any) -> None:
    """Two engines with the same state (as a durable store would give) see each other."""
    from gatekit.policy import parse_policy

    state = MemoryPolicyState()
    first = LocalBackend(policy=parse_policy(CALLS, state=state, clock=clock))
    second = LocalBackend(policy=parse_policy(CALLS, state=state, clock=clock))
    _decide(first)
    _decide(second)
    _decide(first)
    assert _decide(second).status is Status.BLOCKED


def test_budget_on_a_nested_argument(compile_policy: Compile) -> None:
    policy = compile_policy(
        "default: allow\nlimits:\n"
        "  - {id: spend, sum: args.payment.amount, window: 1d, max_total: 100}\n"
    )
    backend = LocalBackend(policy=policy)
    paid = _decide(backend, arguments={"payment": {"amount": 80}})
    assert paid.status is Status.ALLOWED
    assert _decide(backend, arguments={"payment": {"amount": 30}}).status is Status.BLOCKED


def test_concurrent_decisions_never_overshoot_by_more_than_the_calls_in_flight(
    compile_policy: Compile,
) -> None:
    import threading

    backend = LocalBackend(policy=compile_policy(CALLS.replace("max_calls: 3", "max_calls: 50")))
    statuses: list[Status] = []
    lock = threading.Lock()

    def agent() -> None:
        for _ in range(25):
            status = _decide(backend).status
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=agent) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    allowed = statuses.count(Status.ALLOWED)
    assert len(statuses) == 100
    assert 50 <= allowed <= 50 + len(threads)


def test_memory_state_is_thread_safe() -> None:
    import threading

    state = MemoryPolicyState()

    def add() -> None:
        for i in range(1000):
            state.record("k", 1.0, float(i), 10_000)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state.total("k", -1) == 4000


def test_memory_state_windows() -> None:
    state = MemoryPolicyState()
    for second in range(10):
        state.record("k", 2.0, float(second), keep_for=5)
    # keep_for forgot seconds 0..4; the window forgets what is at or before `since`.
    assert state.total("k", -1) == 10.0
    assert state.total("k", 7) == 4.0
    assert state.events("k", 7) == [(8.0, 2.0), (9.0, 2.0)]
    state.clear("k")
    assert state.total("k", 7) == 0.0
