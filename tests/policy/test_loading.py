"""A malformed policy fails at load, naming the file, the line and the field."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gatekit import ValidationError
from gatekit.policy import load_policy, parse_policy

GOOD_RULE = """\
version: 1
rules:
  - id: ok
    match: {tools: [read_file]}
    verdict: allow
"""


def _error(text: str) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_policy(text, "team.yaml")
    return caught.value


def test_a_valid_policy_loads() -> None:
    policy = parse_policy(GOOD_RULE, "team.yaml")
    assert [rule.id for rule in policy.rules] == ["ok"]


def test_bad_yaml_names_file_and_line() -> None:
    error = _error("rules:\n  - id: a\n    verdict: [allow\n")
    assert str(error).startswith("team.yaml:")
    assert "invalid YAML" in str(error)
    line = int(str(error).split(":")[1])
    assert line >= 3


def test_unknown_field_names_file_line_and_field() -> None:
    error = _error(GOOD_RULE + "  - id: second\n    match: {toolz: [x]}\n    verdict: block\n")
    assert "team.yaml:7: rules[1].match.toolz: unknown field" in str(error)
    assert error.field == "rules[1].match.toolz"


def test_unknown_top_level_field() -> None:
    error = _error("version: 1\nrulez: []\n")
    assert "team.yaml:2: rulez: unknown field" in str(error)


def test_unknown_enum_value_lists_the_choices() -> None:
    error = _error("rules:\n  - id: a\n    verdict: maybe\n")
    assert "team.yaml:3: rules[0].verdict:" in str(error)
    assert "'allow', 'review' or 'block'" in str(error)


def test_unknown_operation_class_in_match() -> None:
    error = _error(
        "rules:\n  - id: a\n    match:\n      operations: [read, destroy]\n    verdict: block\n"
    )
    assert "team.yaml:4: rules[0].match.operations[1]:" in str(error)


def test_missing_verdict_points_at_the_rule() -> None:
    error = _error("rules:\n  - id: a\n    match: {tools: [x]}\n")
    assert "team.yaml:2: rules[0].verdict: required field is missing" in str(error)


def test_bad_cel_names_line_and_field() -> None:
    error = _error(
        "rules:\n  - id: big\n    match: {tools: [pay]}\n    when: args.amount >\n"
        "    verdict: block\n"
    )
    assert "team.yaml:4: rules[0].when: invalid CEL" in str(error)
    assert error.field == "rules[0].when"


def test_cel_with_an_unknown_variable_is_rejected() -> None:
    error = _error("rules:\n  - id: a\n    when: arg.amount > 1\n    verdict: block\n")
    assert "team.yaml:3: rules[0].when: unknown variable 'arg'" in str(error)


def test_cel_with_an_unknown_function_is_rejected() -> None:
    error = _error("rules:\n  - id: a\n    when: frobnicate(args)\n    verdict: block\n")
    assert "team.yaml:3: rules[0].when: unknown function 'frobnicate'" in str(error)


def test_macro_loop_variables_are_not_unknown() -> None:
    policy = parse_policy(
        "rules:\n  - id: a\n    when: args.files.exists(f, f.path.startsWith('/etc'))\n"
        "    verdict: block\n"
    )
    assert policy.rules[0].condition is not None


def test_duplicate_rule_id_names_both_lines() -> None:
    error = _error(GOOD_RULE + "  - id: ok\n    verdict: block\n")
    assert "team.yaml:6: rules[1].id: duplicate rule id 'ok' (first used on line 3)" in str(error)


def test_duplicate_yaml_key_is_an_error() -> None:
    error = _error("rules:\n  - id: a\n    verdict: allow\n    verdict: block\n")
    assert "team.yaml:4: rules[0].verdict: duplicate key 'verdict'" in str(error)


def test_bad_duration_and_inconsistent_limit() -> None:
    error = _error("limits:\n  - id: l\n    window: soon\n    max_calls: 3\n")
    assert "team.yaml:3: limits[0].window: not a duration" in str(error)
    error = _error("limits:\n  - id: l\n    window: 1m\n")
    assert "team.yaml:2: limits[0]:" in str(error)
    assert "exactly one of max_calls or max_total" in str(error)


def test_every_problem_is_listed() -> None:
    error = _error("default: sometimes\nrules:\n  - id: a\n    verdict: nope\n")
    assert "team.yaml:1: default:" in str(error)
    assert "team.yaml:4: rules[0].verdict:" in str(error)


def test_a_policy_must_be_a_mapping() -> None:
    assert "must be a mapping" in str(_error("- just\n- a list\n"))


def test_load_from_a_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "prod.yaml"
    path.write_text("rules:\n  - id: a\n    verdict: allow\n    colour: blue\n")
    with pytest.raises(ValidationError) as caught:
        load_policy(path)
    assert f"{path}:4: rules[0].colour: unknown field" in str(caught.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read policy file"):
        load_policy(tmp_path / "absent.yaml")


def test_an_empty_file_is_a_policy_with_the_default_verdict() -> None:
    policy = parse_policy("", "empty.yaml")
    assert policy.rules == ()
    assert policy.spec.default.value == "review"


def test_single_values_stand_for_lists() -> None:
    policy = parse_policy(
        "rules:\n  - id: a\n    match: {tools: pay, operations: financial}\n    verdict: review\n"
    )
    rule = policy.rules[0]
    assert rule.tools is not None
    assert rule.tools.patterns == ("pay",)


def test_yaml_booleans_where_text_is_expected_get_a_hint() -> None:
    error = _error("rules:\n  - {id: no, verdict: block}\n")
    assert "team.yaml:2: rules[0].id:" in str(error)
    assert "quote it" in str(error)


# -- hostile files: reading a policy is bounded ---------------------------------


def _laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs" file: each anchor is ``width`` aliases of the one before."""
    names = "abcdefghijklmnop"[:levels]
    lines = [f"{names[0]}: &{names[0]} [" + ", ".join(['"lol"'] * width) + "]"]
    for previous, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * width) + "]")
    return "\n".join(lines) + "\nrules: []\n"


@pytest.mark.timeout(20)  # without the bound, expanding 9**9 nodes takes minutes
def test_a_billion_laughs_file_is_refused_naming_file_and_line() -> None:
    text = _laughs(9)
    assert len(text) < 1000
    error = _error(text)
    assert "aliases expand the document by more than" in str(error)
    assert str(error).startswith("team.yaml:5: invalid YAML:")  # where the budget ran out


def test_a_smaller_alias_bomb_is_refused_too() -> None:
    error = _error(_laughs(6))  # 9**6 = 531441 nodes from 300 bytes
    assert "aliases expand the document" in str(error)


def test_a_recursive_anchor_is_refused() -> None:
    error = _error("rules:\n  - id: a\n    match: &m {tools: [x], more: *m}\n    verdict: block\n")
    assert str(error) == "team.yaml:3: invalid YAML: alias *m refers to its own anchor"


def test_a_recursive_sequence_is_refused() -> None:
    assert "refers to its own anchor" in str(_error("version: 1\nloop: &x [1, [2, *x]]\n"))


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    depth = 3000  # deep enough to exhaust Python's recursion limit in any recursive walk
    error = _error("version: 1\nx: " + "[" * depth + "]" * depth + "\n")
    assert "team.yaml:2: invalid YAML: nested deeper than" in str(error)


def test_anchors_and_aliases_within_the_budget_still_work() -> None:
    policy = parse_policy(
        "rules:\n"
        "  - id: a\n    match: &shared {tools: [pay, refund], operations: [financial]}\n"
        "    verdict: review\n"
        "  - id: b\n    match: *shared\n    verdict: block\n"
        "  - id: c\n    match: {<<: *shared, tools: [transfer]}\n    verdict: allow\n",
        "team.yaml",
    )
    assert [rule.id for rule in policy.rules] == ["a", "b", "c"]
    assert policy.rules[1].tools is not None
    assert policy.rules[1].tools.patterns == ("pay", "refund")


def test_an_alias_bomb_in_a_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(_laughs(7))
    with pytest.raises(ValidationError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}:")
    assert "aliases expand the document" in str(caught.value)
