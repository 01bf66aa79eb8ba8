"""In-process, policy judges the real values even though only masked ones are kept."""

from __future__ import annotations

from gatekit import Client, LocalBackend, Status
from gatekit.policy import parse_policy

POLICY = """
version: 1
default: allow
rules:
  - id: no-mail-to-competitors
    match: {tools: [send_email]}
    when: args.to.endsWith("@competitor.example")
    verdict: block
    reason: no mail to competitors
shields:
  ssrf: {action: block}
"""


def test_conditions_see_the_real_value_of_a_masked_argument() -> None:
    backend = LocalBackend(policy=parse_policy(POLICY))
    decision = Client(backend).decide(
        tool="send_email", risk_level="low", arguments={"to": "ceo@competitor.example"}
    )
    assert decision.status is Status.BLOCKED
    stored = backend.store.get_action(decision.decision_id)
    assert stored is not None
    assert stored.arguments["to"] == "[REDACTED:email]"


def test_credentials_in_a_url_do_not_hide_an_internal_address() -> None:
    backend = LocalBackend(policy=parse_policy(POLICY))
    decision = Client(backend).decide(
        tool="fetch", risk_level="low", arguments={"url": "http://u:p@169.254.169.254/latest"}
    )
    assert decision.status is Status.BLOCKED
    assert any(c.name.startswith("shield.ssrf") for c in decision.checks)
