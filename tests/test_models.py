import pytest

from gatekit import Action, Decision, RiskLevel, Status, ValidationError


def test_action_defaults_intent_to_tool() -> None:
    action = Action(tool="send_email")
    assert action.intent_id == "send_email"
    assert action.risk_level is RiskLevel.MEDIUM


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"tool": ""}, "tool"),
        ({"tool": "   "}, "tool"),
        ({"tool": "t", "risk_level": "extreme"}, "risk_level"),
        ({"tool": "t", "operation_class": "launch"}, "operation_class"),
        ({"tool": "t", "data_sensitivity": "secret"}, "data_sensitivity"),
        ({"tool": "t", "systems_touched": []}, "systems_touched"),
        ({"tool": "t", "systems_touched": [" "]}, "systems_touched"),
        ({"tool": "t", "metadata": {"handle": object()}}, "metadata"),
        ({"tool": "t", "metadata": {"ratio": float("nan")}}, "metadata"),
        ({"tool": "t", "metadata": {"risk_level": "low"}}, "metadata"),
        ({"tool": "t", "metadata": {"idempotency_key": "k"}}, "metadata"),
        ({"tool": "t", "arguments": {"when": object()}}, "arguments"),
        ({"tool": "t", "unknown_field": 1}, "unknown_field"),
        ({"tool": "t", "idempotency_key": ""}, "idempotency_key"),
    ],
)
def test_invalid_action_names_the_field(fields: dict[str, object], field_name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Action(**fields)  # type: ignore[arg-type]
    assert caught.value.field is not None
    assert caught.value.field.startswith(field_name)
    assert field_name in str(caught.value)


def test_empty_intent_falls_back_to_tool_but_governance_metadata_is_refused() -> None:
    assert Action(tool="t", intent_id="").intent_id == "t"
    with pytest.raises(ValidationError, match="governance"):
        Action(tool="t", metadata={"systems_touched": ["x"]})


def test_model_validate_raises_gatekit_error() -> None:
    with pytest.raises(ValidationError, match="risk_level"):
        Action.model_validate({"tool": "t", "risk_level": "nope"})


def test_digest_binds_to_governed_fields_only() -> None:
    base = Action(tool="pay", arguments={"amount": 10, "to": "bob"}, agent_id="a1")
    assert (
        base.digest()
        == Action(tool="pay", arguments={"to": "bob", "amount": 10}, agent_id="a1").digest()
    )
    assert (
        base.digest() == base.model_copy(update={"run_id": "r2", "idempotency_key": "k"}).digest()
    )
    for change in (
        {"arguments": {"amount": 11, "to": "bob"}},
        {"agent_id": "a2"},
        {"risk_level": RiskLevel.LOW},
        {"tool": "pay2"},
    ):
        assert base.digest() != base.model_copy(update=change).digest()


def test_decision_allowed_only_for_allowed_and_approved() -> None:
    from datetime import UTC, datetime

    def decision(status: Status) -> Decision:
        return Decision(
            decision_id="d",
            status=status,
            reason="r",
            tool="t",
            action_digest="0" * 64,
            created_at=datetime.now(UTC),
        )

    assert {s for s in Status if decision(s).allowed} == {Status.ALLOWED, Status.APPROVED}
