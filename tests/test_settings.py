from __future__ import annotations

import pytest

from gatekit import Client, ConfigurationError, FailMode, LocalBackend
from gatekit.dlp import DlpMode


def test_environment_configures_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEKIT_FAIL_MODE", "open")
    monkeypatch.setenv("GATEKIT_DLP_MODE", "warn")
    monkeypatch.setenv("GATEKIT_AGENT_ID", "env-agent")
    client = Client(LocalBackend())
    assert client.settings.fail_mode is FailMode.OPEN
    assert client.settings.dlp_mode is DlpMode.WARN
    assert client.settings.agent_id == "env-agent"


def test_constructor_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEKIT_FAIL_MODE", "open")
    monkeypatch.setenv("GATEKIT_AGENT_ID", "env-agent")
    client = Client(LocalBackend(), fail_mode="closed", agent_id="arg-agent")
    assert client.settings.fail_mode is FailMode.CLOSED
    assert client.settings.agent_id == "arg-agent"


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("GATEKIT_FAIL_MODE", "sometimes", "fail_mode"),
        ("GATEKIT_DLP_MODE", "shred", "dlp_mode"),
        ("GATEKIT_APPROVAL_TIMEOUT", "-5", "approval_timeout"),
        ("GATEKIT_DECISION_TIMEOUT", "soon", "decision_timeout"),
    ],
)
def test_invalid_environment_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError, match=f"{field} \\({env}\\)"):
        Client(LocalBackend())


def test_invalid_argument_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="approval_timeout"):
        Client(LocalBackend(), approval_timeout=0)
    with pytest.raises(ConfigurationError, match="backend must implement"):
        Client(backend=object())  # type: ignore[arg-type]


def test_invalid_action_fields_fail_when_decorating_not_when_calling() -> None:
    from gatekit import ValidationError

    with pytest.raises(ValidationError, match="risk_level"):
        Client(LocalBackend()).intercept(risk_level="apocalyptic")(lambda: None)
