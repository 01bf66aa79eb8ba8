"""Rules: every verdict path, precedence, the risk floor, matching, conditions, the index."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from gatekit import Action, Blocked, Client, DecisionRequest, LocalBackend, Status, Verdict
from gatekit.policy import RulePolicy, apply_risk_floor, parse_policy
from gatekit.policy.rules import RuleIndex

Request = Callable[..., DecisionRequest]
Compile = Callable[[str], RulePolicy]

POLICY = """\
default: review
rules:
  - id: reads
    match: {operations: [read]}
    verdict: allow
    reason: reading is fine
  - id: payments-review
    match: {tools: [pay_*]}
    verdict: review
    reason: payments are checked
  - id: payments-huge
    match: {tools: [pay_*]}
    when: args.amount > 10000
    verdict: block
    reason: too much money
  - id: prod-deletes
    match: {operations: [delete], systems: [prod*]}
    verdict: block
  - id: small-payments
    match: {tools: [pay_invoice]}
    when: args.amount <= 100
    verdict: allow
"""


@pytest.fixture
def policy(compile_policy: Compile) -> RulePolicy:
    return compile_policy(POLICY)


def test_allow(policy: RulePolicy, request_for: Request) -> None:
    evaluation = policy.evaluate(request_for(tool="read_file", operation_class="read"))
    assert (evaluation.verdict, evaluation.rule_ids) == (Verdict.ALLOW, ("reads",))
    assert evaluation.reason == "reading is fine"


def test_review(policy: RulePolicy, request_for: Request) -> None:
    evaluation = policy.evaluate(request_for(tool="pay_invoice", arguments={"amount": 500}))
    assert (evaluation.verdict, evaluation.rule_ids) == (Verdict.REVIEW, ("payments-review",))


def test_block(policy: RulePolicy, request_for: Request) -> None:
    evaluation = policy.evaluate(request_for(tool="pay_invoice", arguments={"amount": 50_000}))
    assert (evaluation.verdict, evaluation.rule_ids) == (Verdict.BLOCK, ("payments-huge",))
    assert evaluation.reason == "too much money"


def test_default_when_nothing_matches(policy: RulePolicy, request_for: Request) -> None:
    evaluation = policy.evaluate(request_for(tool="launch_rocket"))
    assert (evaluation.verdict, evaluation.rule_ids) == (Verdict.REVIEW, ("policy.default",))


@pytest.mark.parametrize("default", ["allow", "review", "block"])
def test_the_default_verdict_is_configurable(default: str, request_for: Request) -> None:
    policy = parse_policy(f"default: {default}\ndefault_reason: nobody said\n")
    evaluation = policy.evaluate(request_for())
    assert evaluation.verdict.value == default
    assert evaluation.reason == "nobody said"


def test_block_beats_review_beats_allow(policy: RulePolicy, request_for: Request) -> None:
    # small-payments (allow) and payments-review (review) both match: review wins.
    small = policy.evaluate(request_for(tool="pay_invoice", arguments={"amount": 50}))
    assert (small.verdict, small.rule_ids) == (Verdict.REVIEW, ("payments-review",))
    # A rule order that puts block last still blocks.
    reordered = parse_policy(
        "rules:\n"
        "  - {id: a, verdict: allow}\n"
        "  - {id: b, verdict: review}\n"
        "  - {id: c, verdict: block}\n"
        "  - {id: d, verdict: allow}\n"
    )
    evaluation = reordered.evaluate(request_for())
    assert (evaluation.verdict, evaluation.rule_ids) == (Verdict.BLOCK, ("c",))


def test_all_rules_at_the_winning_verdict_are_named(request_for: Request) -> None:
    policy = parse_policy(
        "rules:\n  - {id: one, verdict: block}\n  - {id: two, verdict: block}\n"
        "  - {id: three, verdict: review}\n"
    )
    assert policy.evaluate(request_for()).rule_ids == ("one", "two")


@pytest.mark.parametrize("risk", ["high", "critical"])
def test_the_risk_floor_cannot_be_overridden(risk: str) -> None:
    policy = parse_policy("default: allow\nrules:\n  - {id: always, verdict: allow}\n")
    request = DecisionRequest.for_action(Action(tool="t", risk_level=risk))
    assert policy.evaluate(request).verdict is Verdict.ALLOW
    assert (
        apply_risk_floor(
            policy.evaluate(request), Action(tool="t", risk_level=risk).risk_level
        ).verdict
        is Verdict.REVIEW
    )
    decision = LocalBackend(policy=policy).decide(request)
    assert decision.status is Status.PENDING_REVIEW
    assert "always need human review" in decision.reason


def test_a_block_stays_a_block_whatever_the_risk(request_for: Request) -> None:
    policy = parse_policy("rules:\n  - {id: never, verdict: block}\n")
    decision = LocalBackend(policy=policy).decide(request_for(risk_level="low"))
    assert decision.status is Status.BLOCKED


@pytest.mark.parametrize(
    ("match", "fields", "expected"),
    [
        ("{tools: [read_*]}", {"tool": "read_file"}, True),
        ("{tools: [read_*]}", {"tool": "write_file"}, False),
        ("{tools: ['db.?et']}", {"tool": "db.get"}, True),
        ("{intents: [billing.refund]}", {"tool": "t", "intent_id": "billing.refund"}, True),
        ("{intents: [billing.*]}", {"tool": "t", "intent_id": "crm.refund"}, False),
        ("{operations: [delete, admin]}", {"operation_class": "admin"}, True),
        ("{sensitivities: [pii]}", {"data_sensitivity": "public"}, False),
        ("{risk_levels: [low]}", {"risk_level": "low"}, True),
        ("{systems: [prod-*]}", {"systems_touched": ["dev", "prod-eu"]}, True),
        ("{systems: [prod-*]}", {"systems_touched": ["dev"]}, False),
        ("{agents: [billing-*]}", {"agent_id": "billing-bot"}, True),
        ("{agents: [billing-*]}", {}, False),
        (
            "{tools: [pay], operations: [financial]}",
            {"tool": "pay", "operation_class": "read"},
            False,
        ),
        ("{}", {}, True),
    ],
)
def test_match_fields(
    match: str, fields: dict[str, Any], expected: bool, request_for: Request
) -> None:
    policy = parse_policy(
        f"default: allow\nrules:\n  - id: r\n    match: {match}\n    verdict: block\n"
    )
    matched = policy.evaluate(request_for(**fields)).verdict is Verdict.BLOCK
    assert matched is expected


@pytest.mark.parametrize(
    ("condition", "fields", "expected"),
    [
        ("args.amount > 10000", {"arguments": {"amount": 20000}}, True),
        ("args.amount > 10000", {"arguments": {"amount": 20000.5}}, True),
        ("args.amount > 10000", {"arguments": {"amount": 5}}, False),
        ('"prod" in systems_touched', {"systems_touched": ["prod", "eu"]}, True),
        ('"prod" in systems_touched', {"systems_touched": ["dev"]}, False),
        ("size(args.files) > 2", {"arguments": {"files": [1, 2, 3]}}, True),
        ("agent_id == 'x' && risk_level == 'low'", {"agent_id": "x", "risk_level": "low"}, True),
        ("operation_class == 'read'", {"operation_class": "delete"}, False),
        ("has(args.amount) && args.amount > 1", {"arguments": {}}, False),
        ("metadata.team == 'ops'", {"metadata": {"team": "ops"}}, True),
        ("agent_id == null", {}, True),
        ("agent_id == null", {"agent_id": "x"}, False),
        ("args.to.endsWith('@example.com')", {"arguments": {"to": "a@example.com"}}, True),
    ],
)
def test_conditions(
    condition: str, fields: dict[str, Any], expected: bool, request_for: Request
) -> None:
    policy = parse_policy(
        f"default: allow\nrules:\n  - id: r\n    when: {condition!r}\n    verdict: block\n"
    )
    evaluation = policy.evaluate(request_for(**fields))
    assert (evaluation.verdict is Verdict.BLOCK) is expected
    assert not evaluation.checks


@pytest.mark.parametrize("verdict", ["block", "review"])
@pytest.mark.parametrize(
    "arguments", [{}, {"amount": "lots"}, {"amount": None}], ids=["missing", "string", "null"]
)
def test_a_failing_condition_matches_block_and_review_rules(
    verdict: str, arguments: dict[str, Any], request_for: Request
) -> None:
    policy = parse_policy(
        f"default: allow\nrules:\n  - id: r\n    when: args.amount > 10\n    verdict: {verdict}\n"
    )
    evaluation = policy.evaluate(request_for(arguments=arguments))
    assert evaluation.verdict.value == verdict
    (check,) = evaluation.checks
    assert check.name == "policy.condition_error"
    assert check.outcome.value == verdict
    assert "rule r:" in check.detail
    assert "treated as matched" in check.detail


def test_a_failing_condition_never_allows(request_for: Request) -> None:
    policy = parse_policy(
        "default: review\nrules:\n  - id: r\n    when: args.amount < 10\n    verdict: allow\n"
    )
    evaluation = policy.evaluate(request_for(arguments={"amount": "3"}))
    assert (evaluation.verdict, evaluation.rule_ids) == (Verdict.REVIEW, ("policy.default",))
    (check,) = evaluation.checks
    assert check.name == "policy.condition_error"
    assert check.outcome.value == "warn"
    assert "treated as not matched" in check.detail


def test_a_non_boolean_condition_is_an_error(request_for: Request) -> None:
    policy = parse_policy(
        "default: allow\nrules:\n  - {id: r, when: args.amount, verdict: block}\n"
    )
    evaluation = policy.evaluate(request_for(arguments={"amount": 3}))
    assert evaluation.verdict is Verdict.BLOCK
    assert "not a boolean" in evaluation.checks[0].detail


def test_blocked_through_the_client(policy: RulePolicy) -> None:
    ran = []
    client = Client(LocalBackend(policy=policy), agent_id="a", dlp_mode="off")
    with (
        pytest.raises(Blocked, match="too much money"),
        client.guard(tool="pay_invoice", arguments={"amount": 99_999}),
    ):
        ran.append(True)
    assert ran == []


# -- the index gives the same answers as looking at every rule ------------------------

_TOOLS = ["read_file", "write_file", "pay_invoice", "pay_bill", "db.get", "db.put", "shell", "x"]
_PATTERNS = ["read_*", "write_file", "pay_*", "pay_invoice", "db.*", "*", "sh?ll", "*_file", "x"]


def _random_rule(rng: random.Random, index: int) -> str:
    match = {}
    kind = rng.randrange(5)
    if kind == 0:
        match["tools"] = rng.sample(_PATTERNS, rng.randint(1, 3))
    elif kind == 1:
        match["intents"] = rng.sample(_PATTERNS, rng.randint(1, 2))
    elif kind == 2:
        match["operations"] = rng.sample(["read", "delete", "execute", "financial"], 2)
    elif kind == 3:
        match["risk_levels"] = rng.sample(["low", "medium", "high"], 1)
    if rng.random() < 0.3:
        match["systems"] = rng.sample(["prod", "dev*", "eu"], 1)
    verdict = rng.choice(["allow", "review", "block"])
    return f"  - id: r{index}\n    match: {match!r}\n    verdict: {verdict}\n"


def _brute_force(policy: RulePolicy, action: Action) -> tuple[str, ...]:
    matched = [rule for rule in policy.rules if rule.matches_fields(action)]
    if not matched:
        return ("policy.default",)
    top = max(rule.verdict.severity for rule in matched)
    return tuple(rule.id for rule in matched if rule.verdict.severity == top)


def test_the_index_agrees_with_looking_at_every_rule() -> None:
    rng = random.Random(7)
    text = "rules:\n" + "".join(_random_rule(rng, i) for i in range(300))
    policy = parse_policy(text)
    for _ in range(500):
        action = Action(
            tool=rng.choice(_TOOLS),
            intent_id=rng.choice(_TOOLS),
            operation_class=rng.choice(["read", "delete", "execute", "financial", "admin"]),
            risk_level=rng.choice(["low", "medium", "high"]),
            systems_touched=rng.sample(["prod", "dev-1", "eu", "us"], 2),
        )
        evaluation = policy.evaluate(DecisionRequest.for_action(action))
        assert evaluation.rule_ids == _brute_force(policy, action)


def test_the_index_looks_only_at_rules_that_could_match() -> None:
    text = "rules:\n" + "".join(
        f"  - {{id: r{i}, match: {{tools: [tool_{i}]}}, verdict: block}}\n" for i in range(2000)
    )
    text += "  - {id: g, match: {tools: ['other_*']}, verdict: review}\n"
    text += "  - {id: ops, match: {operations: [admin]}, verdict: review}\n"
    index = RuleIndex(parse_policy(text).rules)
    found = index.candidates(Action(tool="tool_1234", operation_class="read"))
    assert [rule.id for rule in found] == ["r1234"]
    found = index.candidates(Action(tool="other_thing", operation_class="admin"))
    assert [rule.id for rule in found] == ["g", "ops"]
    assert index.candidates(Action(tool="nothing", operation_class="read")) == []


def test_a_policy_that_raises_blocks_and_the_tool_does_not_run() -> None:
    class Broken:
        def evaluate(self, request: DecisionRequest) -> object:
            raise RuntimeError("boom")

    client = Client(LocalBackend(policy=Broken()), agent_id="a")  # type: ignore[arg-type]
    ran = []
    with pytest.raises(Blocked, match="policy evaluation failed"), client.guard(tool="t"):
        ran.append(1)
    assert ran == []


def test_a_shields_only_policy_reports_no_trust_level_without_trust(request_for: Request) -> None:
    policy = parse_policy("default: allow\nshields:\n  ssrf: {action: block}\n")
    assert policy.evaluate(request_for(agent_id="a")).trust_level is None


def test_a_literal_name_matches_glob_characters_exactly() -> None:
    policy = parse_policy(
        """
default: allow
rules:
  - id: no-admin-queries
    match: {tools: ["literal:db.query[admin]"]}
    verdict: block
"""
    )
    blocked = policy.evaluate(DecisionRequest.for_action(Action(tool="db.query[admin]")))
    assert blocked.verdict is Verdict.BLOCK
    other = policy.evaluate(DecisionRequest.for_action(Action(tool="db.querya")))
    assert other.verdict is Verdict.ALLOW
    explained = policy.explain(DecisionRequest.for_action(Action(tool="db.query[admin]")))
    assert explained.evaluation.verdict is Verdict.BLOCK
