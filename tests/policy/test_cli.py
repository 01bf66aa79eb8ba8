"""``gatekit policy check / explain / test``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatekit.cli import app

EXAMPLES = Path(__file__).parents[2] / "examples" / "policies"
POLICY = EXAMPLES / "payments-agent.yaml"
CASES = EXAMPLES / "payments-agent.cases.yaml"

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", *args], env={"COLUMNS": "160"})
    return result.exit_code, result.output


def test_check_summarises_a_valid_policy() -> None:
    code, output = _run("check", str(POLICY))
    assert code == 0, output
    assert "7 rules" in output
    assert "large-payments" in output
    assert "args.amount > 10000" in output
    assert "When no rule matches: review" in output
    assert "is valid" in output


def test_check_reports_file_line_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - id: a\n    when: args.amount >>> 3\n    verdict: block\n")
    code, output = _run("check", str(broken))
    assert code == 2
    assert f"{broken}:3: rules[0].when: invalid CEL" in output.replace("\n", "")


def test_explain_says_what_matched_and_why(tmp_path: Path) -> None:
    action = tmp_path / "action.json"
    action.write_text(
        json.dumps(
            {
                "tool": "pay_invoice",
                "operation_class": "financial",
                "agent_id": "billing-bot",
                "arguments": {"amount": 20000, "callback": "http://10.0.0.7/hook"},
            }
        )
    )
    code, output = _run("explain", str(POLICY), "--action", str(action))
    assert code == 0, output
    assert "Decision: BLOCK — payments above 10,000 EUR go through the treasury system" in output
    assert "Decided by: large-payments, shield.ssrf" in output
    assert "large-payments" in output
    assert "when 'args.amount > 10000' is true" in output
    assert "when 'has(args.amount) && args.amount <= 1000' is false" in output
    assert "operation 'financial' is not one of: read" in output
    assert "shield.ssrf" in output
    assert "args.callback" in output
    assert "private address 10.0.0.7" in output
    assert "other rules are about other tools" in output


def test_explain_names_condition_errors_and_the_risk_floor(tmp_path: Path) -> None:
    action = tmp_path / "action.json"
    action.write_text(json.dumps({"tool": "refund_order", "risk_level": "high"}))
    code, output = _run("explain", str(POLICY), "--action", str(action))
    assert code == 0, output
    assert "condition error" in output
    assert "the action has no field 'amount'" in output
    assert "counts as a match" in output


def test_explain_rejects_a_bad_action(tmp_path: Path) -> None:
    action = tmp_path / "action.json"
    action.write_text(json.dumps({"tool": "x", "risk_level": "extreme"}))
    code, output = _run("explain", str(POLICY), "--action", str(action))
    assert code == 2
    assert "risk_level" in output


def test_the_sample_expectations_pass() -> None:
    code, output = _run("test", str(CASES))
    assert code == 0, output
    assert "all 15 cases passed" in output


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        f"policy: {POLICY}\n"
        "cases:\n"
        "  - name: huge payment\n"
        "    action: {tool: pay_invoice, arguments: {amount: 50000}}\n"
        "    expect: allow\n"
        "  - name: reads\n"
        "    action: {tool: read_x, operation_class: read, risk_level: low}\n"
        "    expect: allow\n"
        "    rule: some-other-rule\n"
        "  - name: fine\n"
        "    action: {tool: read_x, operation_class: read, risk_level: low}\n"
        "    expect: allow\n"
    )
    code, output = _run("test", str(cases))
    assert code == 1
    assert "FAIL expected allow" in output
    assert "FAIL expected rule some-other-rule" in output
    assert "2 of 3 cases failed" in output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("policy: p.yaml\ncases: []\n", "cases"),
        ("policy: p.yaml\ncases:\n  - {name: a, action: {tool: t}, expect: maybe}\n", ":3: "),
        ("policy: p.yaml\ncases:\n  - {name: a, action: {tool: t}, expect: allow, x: 1}\n", "x"),
    ],
)
def test_a_malformed_cases_file_is_reported(tmp_path: Path, text: str, expected: str) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(text)
    code, output = _run("test", str(cases))
    assert code == 2
    assert expected in output


def test_the_policy_can_be_given_on_the_command_line(tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("default: block\n")
    code, output = _run("test", str(CASES), "--policy", str(strict))
    assert code == 1
    assert "cases failed" in output


@pytest.mark.parametrize("text", ["", "# rules to come\n", "default: block\nrules: []\n"])
def test_a_policy_without_rules_is_valid_with_a_warning(tmp_path: Path, text: str) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(text)
    result = runner.invoke(app, ["policy", "check", str(empty)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "is valid" in result.stdout
    assert "0 rules" in result.stdout
    default = "block" if "default: block" in text else "review"
    assert result.stderr == (
        f"warning: {empty} has no rules: only the default verdict ({default}) applies\n"
    )


def test_a_policy_with_rules_has_no_warning() -> None:
    result = runner.invoke(app, ["policy", "check", str(POLICY)], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert result.stderr == ""
