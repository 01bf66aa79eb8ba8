"""``gatekit policy``: check, explain and test policy files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gatekit._exceptions import GatekitError, ValidationError
from gatekit._models import Action, DecisionRequest, Verdict
from gatekit.cli._common import App, console, describe, fail, warn
from gatekit.policy import Explanation, RulePolicy, apply_risk_floor, load_policy
from gatekit.policy.loader import read_yaml
from gatekit.policy.rules import Rule

policy_app = App(
    name="policy",
    help="Check, explain and test policy files.",
    no_args_is_help=True,
)

_VERDICT_STYLE = {"allow": "green", "review": "yellow", "block": "red"}
_OUTCOME_STYLE = {
    "matched": "bold",
    "condition error": "bold magenta",
    "condition false": "dim",
    "no match": "dim",
    "pass": "green",
    "warn": "yellow",
    "review": "yellow",
    "block": "red",
}


def _styled(text: str, shown: str | None = None) -> Text:
    """A verdict or outcome word in its colour; never parsed as markup."""
    style = _VERDICT_STYLE.get(text) or _OUTCOME_STYLE.get(text) or ""
    return Text(shown or text, style=style)


def _describe_match(rule: Rule) -> str:
    parts = []
    for label, values in (
        ("tool", rule.tools.patterns if rule.tools else None),
        ("intent", rule.intents.patterns if rule.intents else None),
        ("operation", sorted(v.value for v in rule.operations) if rule.operations else None),
        (
            "sensitivity",
            sorted(v.value for v in rule.sensitivities) if rule.sensitivities else None,
        ),
        ("risk", sorted(v.value for v in rule.risk_levels) if rule.risk_levels else None),
        ("system", rule.systems.patterns if rule.systems else None),
        ("agent", rule.agents.patterns if rule.agents else None),
    ):
        if values:
            parts.append(f"{label} ∈ {{{', '.join(values)}}}")
    if rule.condition is not None:
        parts.append(f"when {rule.condition.source}")
    return " and ".join(parts) or "every action"


@policy_app.command("check")
def check(file: Annotated[Path, typer.Argument(help="The policy file (YAML).")]) -> None:
    """Validate a policy file and print a summary of its rules."""
    out = console()
    policy = load_policy(file)
    summary = policy.summary()
    if policy.rules:
        out.print(_rules_table(file, policy))
    else:
        out.print(Text(f"{file}: 0 rules"))
        warn(_no_rules_warning(file, summary))
    out.print(Text("When no rule matches: ").append_text(_styled(summary["default"])))
    out.print(f"Shields: {', '.join(summary['shields']) or 'none'}")
    out.print(f"Limits: {', '.join(summary['limits']) or 'none'}")
    out.print(f"Trust levels: {'on' if summary['trust'] else 'off'}")
    out.print(f"Approval memory: {'on' if summary['approval_memory'] else 'off'}")
    out.print(Text(f"✓ {file} is valid", style="green"))


def _no_rules_warning(file: Path, summary: dict[str, Any]) -> str:
    # Valid, but most likely not what was meant (an empty file, rules under a wrong key).
    checks = summary["shields"] or summary["limits"]
    return f"{file} has no rules: only the default verdict ({summary['default']}) applies" + (
        ", after the shields and limits" if checks else ""
    )


def _rules_table(file: Path, policy: RulePolicy) -> Table:
    table = Table(title=f"{file}: {len(policy.rules)} rules", title_justify="left")
    for column in ("#", "rule", "verdict", "applies to", "reason"):
        table.add_column(column, overflow="fold")
    for rule in policy.rules:
        table.add_row(
            str(rule.position + 1),
            Text(rule.id),
            _styled(rule.verdict.value),
            Text(_describe_match(rule)),
            Text(rule.reason),
        )
    return table


def _read_action(path: Path) -> Action:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Action.model_validate(data)
    except OSError as exc:
        fail(f"cannot read the action in {path}: {exc.strerror or exc}")
    except (json.JSONDecodeError, ValidationError) as exc:
        fail(f"invalid action in {path}: {describe(exc)}")


@policy_app.command("explain")
def explain(
    file: Annotated[Path, typer.Argument(help="The policy file (YAML).")],
    action: Annotated[
        Path, typer.Option("--action", "-a", help="A JSON file with the action's fields.")
    ],
) -> None:
    """Show what the policy decides for an action, which rules and checks matched, and why."""
    policy = load_policy(file)
    request = DecisionRequest.for_action(_read_action(action))
    _print_explanation(console(), request.action, policy.explain(request))


def _print_explanation(out: Console, action: Action, explanation: Explanation) -> None:
    evaluation = explanation.evaluation

    def say(line: str) -> None:
        out.print(line, markup=False, soft_wrap=True)

    say(
        f"Action: tool {action.tool}, {action.operation_class.value}, "
        f"{action.risk_level.value} risk, {action.data_sensitivity.value} data, "
        f"systems {', '.join(action.systems_touched)}"
        + (f", agent {action.agent_id}" if action.agent_id else "")
    )
    verdict = evaluation.verdict.value
    headline = Text("Decision: ").append_text(_styled(verdict, verdict.upper()))
    out.print(headline.append(f" — {evaluation.reason}"), soft_wrap=True)
    say(f"Decided by: {', '.join(evaluation.rule_ids) or '(none)'}")
    if evaluation.trust_level:
        say(f"Agent trust: {evaluation.trust_level}")
    if evaluation.retry_after is not None:
        say(f"Retry after: {evaluation.retry_after:.0f} s")
    for note in explanation.notes:
        say(f"Note: {note}")

    rules = Table(title="Rules that concern this action", title_justify="left")
    for column in ("rule", "says", "result", "why"):
        rules.add_column(column, overflow="fold")
    for trace in explanation.traces:
        rules.add_row(
            Text(trace.rule_id),
            _styled(trace.verdict.value),
            _styled(trace.outcome),
            Text("\n".join(trace.details)),
        )
    out.print(rules)
    if explanation.unrelated_rules:
        out.print(
            f"({explanation.unrelated_rules} other rules are about other tools or kinds of action)"
        )
    if evaluation.checks:
        checks = Table(title="Checks", title_justify="left")
        for column in ("check", "outcome", "where", "detail"):
            checks.add_column(column, overflow="fold")
        for item in evaluation.checks:
            checks.add_row(
                Text(item.name),
                _styled(item.outcome.value),
                Text(item.path or ""),
                Text(item.detail),
            )
        out.print(checks)
    else:
        out.print("Checks: none found anything")


class _Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    action: dict[str, Any]
    expect: Verdict
    rule: str | None = Field(default=None, description="A rule id expected among the deciders.")


class _Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: str = Field(min_length=1, description="The policy file, relative to this file.")
    cases: list[_Case] = Field(min_length=1)


def _read_suite(path: Path) -> _Suite:
    try:
        located = read_yaml(path.read_text(encoding="utf-8"), str(path))
        return _Suite.model_validate(located.data)
    except OSError as exc:
        fail(f"cannot read the cases in {describe(exc)}")
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            location = tuple(error["loc"])
            line = located.source.line_of(location) or 1
            field = ".".join(str(p) for p in location)
            problems.append(f"{path}:{line}: {field}: {error['msg']}")
        fail(f"invalid cases file: {'; '.join(problems)}")


@policy_app.command("test")
def run_cases(
    file: Annotated[Path, typer.Argument(help="A YAML file of cases with expected verdicts.")],
    policy_file: Annotated[
        Path | None, typer.Option("--policy", "-p", help="Use this policy instead.")
    ] = None,
) -> None:
    """Run a file of expected verdicts against a policy; exit 1 if any case differs."""
    out = console()
    suite = _read_suite(file)
    policy = load_policy(policy_file or (file.parent / suite.policy))
    table = Table(title=f"{file}", title_justify="left")
    for column in ("case", "expected", "got", "decided by", "result"):
        table.add_column(column, overflow="fold")
    failures = 0
    for case in suite.cases:
        got, deciders, problem = _run_case(policy, case)
        passed = problem is None
        failures += not passed
        expected = _styled(case.expect.value).append(f" ({case.rule})" if case.rule else "")
        result = Text("pass", "green") if passed else Text("FAIL ", "red").append(f"{problem}")
        table.add_row(
            Text(case.name), expected, _styled(got) if got else Text("-"), Text(deciders), result
        )
    out.print(table)
    total = len(suite.cases)
    if failures:
        out.print(f"[red]{failures} of {total} cases failed[/red]")
        raise typer.Exit(1)
    out.print(f"[green]all {total} cases passed[/green]")


def _run_case(policy: RulePolicy, case: _Case) -> tuple[str, str, str | None]:
    try:
        action = Action.model_validate(case.action)
    except GatekitError as exc:
        return "", "", f"invalid action: {exc}"
    evaluation = apply_risk_floor(
        policy.evaluate(DecisionRequest.for_action(action)), action.risk_level
    )
    deciders = ", ".join(evaluation.rule_ids)
    if evaluation.verdict is not case.expect:
        return evaluation.verdict.value, deciders, f"expected {case.expect.value}"
    if case.rule is not None and case.rule not in evaluation.rule_ids:
        return evaluation.verdict.value, deciders, f"expected rule {case.rule}"
    return evaluation.verdict.value, deciders, None
