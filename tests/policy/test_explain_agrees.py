"""``policy explain`` and a real decision cannot disagree: explain is the same
evaluation with a trace (over every rule, where a decision uses the index)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekit import Action, DataSensitivity, DecisionRequest, OperationClass, RiskLevel, Status
from gatekit.engine import Engine
from gatekit.policy import load_policy
from gatekit.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
POLICIES = [
    ROOT / "examples" / "policies" / "payments-agent.yaml",
    ROOT / "src" / "gatekit" / "cli" / "demo_policy.yaml",
]
VERDICT_FOR_STATUS = {
    Status.ALLOWED: "allow",
    Status.PENDING_REVIEW: "review",
    Status.BLOCKED: "block",
}

tools = st.sampled_from(
    ["pay_invoice", "refund_card", "send_email", "read_balance", "drop_table", "run_report"]
) | st.text(alphabet="abcdefgh_.*", min_size=1, max_size=8)
arguments = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.integers(-10, 50_000), st.floats(0, 20_000), st.text(max_size=4)),
        "to": st.sampled_from(["bob@example.com", "eve@evil.test", "x"]),
        "path": st.sampled_from(["reports/q3.csv", "../../etc/passwd"]),
        "command": st.sampled_from(["ls -la", "ls; rm -rf /"]),
    },
)
actions = st.builds(
    Action,
    tool=tools,
    arguments=arguments,
    risk_level=st.sampled_from(list(RiskLevel)),
    operation_class=st.sampled_from(list(OperationClass)),
    data_sensitivity=st.sampled_from(list(DataSensitivity)),
    systems_touched=st.lists(st.sampled_from(["ledger", "prod", "prod-eu", "crm"]), min_size=1),
    agent_id=st.sampled_from([None, "payments-bot", "intern-bot"]),
)


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_explain_and_decide_agree(path: Path) -> None:
    policy = load_policy(path)
    engine = Engine(load_policy(path), MemoryStore())

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(actions)
    def agree(action: Action) -> None:
        request = DecisionRequest.for_action(action)
        explained = policy.explain(request).evaluation
        decided = engine.preview(request)
        assert VERDICT_FOR_STATUS[decided.status] == explained.verdict.value
        assert decided.rule_ids == list(explained.rule_ids)
        assert decided.reason == explained.reason

    agree()
