"""In-process, policy judges the real values even though only masked ones are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekit import Client, LocalBackend, Status, ValidationError
from gatekit.policy import load_policy, parse_policy

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


def test_a_watched_argument_covers_what_is_nested_inside_it() -> None:
    policy = parse_policy(
        "version: 1\ndefault: allow\nshields:\n"
        "  shell_injection: {action: block, arguments: [args.command]}\n"
    )
    backend = LocalBackend(policy=policy)
    for command in ("ls; rm -rf /", ["ls; rm -rf /"], {"sh": "ls; rm -rf /"}):
        decision = Client(backend).decide(
            tool="run", risk_level="low", arguments={"command": command}
        )
        assert decision.status is Status.BLOCKED, command
    other = Client(backend).decide(tool="run", risk_level="low", arguments={"note": "a; b"})
    assert other.status is Status.ALLOWED


def test_a_policy_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"version: 1\ndefault: allow\n# \xff\xfe\n")
    with pytest.raises(ValidationError, match=r"policy\.yaml: policy file is not UTF-8"):
        load_policy(path)
