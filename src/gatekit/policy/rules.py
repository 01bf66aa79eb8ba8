"""Compiled rules and the index that finds the few that could match an action.

A rule is indexed by one field it constrains, chosen in order of selectivity:
tool names, intent names, operation class, data sensitivity, risk level.
Exact names live in a dict; globs live in a dict keyed by their literal
prefix (``db.*`` under ``db.``), so finding candidates costs a handful of
dict lookups whatever the number of rules. Only rules that constrain none of
those fields are looked at for every action.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gatekit._models import Action, Verdict
from gatekit.policy._base import Evaluation
from gatekit.policy.conditions import Condition

__all__ = ["FieldMatch", "NameMatcher", "Rule", "RuleIndex", "literal_prefix"]

_WILDCARDS = re.compile(r"[*?\[]")

# ``literal:db.query[admin]`` names a tool whose name holds glob characters exactly.
LITERAL = "literal:"


def literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard."""
    found = _WILDCARDS.search(pattern)
    return pattern if found is None else pattern[: found.start()]


def is_glob(pattern: str) -> bool:
    return not pattern.startswith(LITERAL) and _WILDCARDS.search(pattern) is not None


def exact_name(pattern: str) -> str:
    """The name a non-glob pattern stands for (``literal:`` removed)."""
    return pattern.removeprefix(LITERAL)


@dataclass(frozen=True, slots=True)
class NameMatcher:
    """Exact names and globs, compiled once (fnmatch semantics, case-sensitive)."""

    patterns: tuple[str, ...]
    exact: frozenset[str]
    glob: re.Pattern[str] | None

    @classmethod
    def of(cls, patterns: Iterable[str]) -> NameMatcher:
        patterns = tuple(dict.fromkeys(patterns))  # a repeated name would index a rule twice
        globs = [p for p in patterns if is_glob(p)]
        joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in globs)
        return cls(
            patterns,
            frozenset(exact_name(p) for p in patterns if not is_glob(p)),
            re.compile(joined) if globs else None,
        )

    def __call__(self, name: str) -> bool:
        return name in self.exact or (self.glob is not None and self.glob.match(name) is not None)

    def any(self, names: Iterable[str]) -> bool:
        return any(self(name) for name in names)

    def first_match(self, name: str) -> str | None:
        """Which pattern matched (for explanations)."""
        if name in self.exact:
            return name
        return next((p for p in self.patterns if is_glob(p) and fnmatch.fnmatchcase(name, p)), None)


def _optional_matcher(patterns: list[str]) -> NameMatcher | None:
    return NameMatcher.of(patterns) if patterns else None


def _optional_set(values: list[Any]) -> frozenset[Any] | None:
    return frozenset(values) if values else None


@dataclass(frozen=True, slots=True)
class FieldMatch:
    """How one field a rule constrains saw an action (for ``policy explain``)."""

    field: str
    matched: bool
    text: str


@dataclass(frozen=True, slots=True)
class _Constraint:
    """One field a rule constrains: the test decisions use, and its words for people."""

    label: str
    test: Callable[[Action], bool]
    describe: Callable[[Action, bool], str]


def _name_constraint(
    label: str, matcher: NameMatcher, value_of: Callable[[Action], str]
) -> _Constraint:
    shown = ", ".join(matcher.patterns)

    def describe(action: Action, matched: bool) -> str:
        value = value_of(action)
        if matched:
            return f"{label} {value!r} matches {matcher.first_match(value)!r}"
        return f"{label} {value!r} is not one of: {shown}"

    return _Constraint(label, lambda action: matcher(value_of(action)), describe)


def _member_constraint(
    label: str, allowed: frozenset[Any], value_of: Callable[[Action], Enum]
) -> _Constraint:
    shown = ", ".join(sorted(v.value for v in allowed))

    def describe(action: Action, matched: bool) -> str:
        verb = "is one of" if matched else "is not one of"
        return f"{label} {value_of(action).value!r} {verb}: {shown}"

    return _Constraint(label, lambda action: value_of(action) in allowed, describe)


def _systems_constraint(matcher: NameMatcher) -> _Constraint:
    shown = ", ".join(matcher.patterns)

    def describe(action: Action, matched: bool) -> str:
        if matched:
            hit = next(s for s in action.systems_touched if matcher(s))
            return f"system {hit!r} matches one of: {shown}"
        touched = ", ".join(action.systems_touched)
        return f"systems [{touched}] match none of: {shown}"

    return _Constraint("systems", lambda action: matcher.any(action.systems_touched), describe)


def _constraints(rule: Rule) -> tuple[_Constraint, ...]:
    """The rule's field tests, cheapest and most selective first."""
    found: list[_Constraint] = []
    if rule.tools is not None:
        found.append(_name_constraint("tool", rule.tools, lambda a: a.tool))
    if rule.intents is not None:
        found.append(_name_constraint("intent", rule.intents, lambda a: a.intent_id))
    if rule.operations is not None:
        found.append(_member_constraint("operation", rule.operations, lambda a: a.operation_class))
    if rule.sensitivities is not None:
        found.append(
            _member_constraint("sensitivity", rule.sensitivities, lambda a: a.data_sensitivity)
        )
    if rule.risk_levels is not None:
        found.append(_member_constraint("risk", rule.risk_levels, lambda a: a.risk_level))
    if rule.agents is not None:
        found.append(_name_constraint("agent", rule.agents, lambda a: a.agent_id or ""))
    if rule.systems is not None:
        found.append(_systems_constraint(rule.systems))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    position: int
    verdict: Verdict
    reason: str
    tools: NameMatcher | None
    intents: NameMatcher | None
    operations: frozenset[Any] | None
    sensitivities: frozenset[Any] | None
    risk_levels: frozenset[Any] | None
    systems: NameMatcher | None
    agents: NameMatcher | None
    condition: Condition | None
    alone: Evaluation  # the answer when this rule alone decides: built once, shared
    constraints: tuple[_Constraint, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        id: str,
        position: int,
        verdict: Verdict,
        reason: str,
        match: Any,
        condition: Condition | None,
    ) -> Rule:
        rule = cls(
            id=id,
            position=position,
            verdict=verdict,
            reason=reason or f"rule {id}",
            tools=_optional_matcher(match.tools),
            intents=_optional_matcher(match.intents),
            operations=_optional_set(match.operations),
            sensitivities=_optional_set(match.sensitivities),
            risk_levels=_optional_set(match.risk_levels),
            systems=_optional_matcher(match.systems),
            agents=_optional_matcher(match.agents),
            condition=condition,
            alone=Evaluation(verdict, reason or f"rule {id}", (id,)),
        )
        object.__setattr__(rule, "constraints", _constraints(rule))
        return rule

    def matches_fields(self, action: Action, report: list[FieldMatch] | None = None) -> bool:
        """Everything but the condition. With ``report``, every constrained field is
        tested and described there (the same tests, so explain and decide agree)."""
        matched_all = True
        for constraint in self.constraints:
            matched = constraint.test(action)
            if report is not None:
                report.append(
                    FieldMatch(constraint.label, matched, constraint.describe(action, matched))
                )
            elif not matched:
                return False
            matched_all = matched_all and matched
        return matched_all


class _NameIndex:
    """Rules by exact name, plus globs by literal prefix."""

    def __init__(self) -> None:
        self.exact: dict[str, list[Rule]] = {}
        self.by_prefix: dict[str, list[Rule]] = {}
        self.prefix_lengths: tuple[int, ...] = ()

    def add(self, pattern: str, rule: Rule) -> None:
        if is_glob(pattern):
            prefix = literal_prefix(pattern)
            self.by_prefix.setdefault(prefix, []).append(rule)
            if len(prefix) not in self.prefix_lengths:
                self.prefix_lengths = tuple(sorted({*self.prefix_lengths, len(prefix)}))
        else:
            self.exact.setdefault(exact_name(pattern), []).append(rule)

    def lookup(self, name: str, into: list[list[Rule]]) -> None:
        found = self.exact.get(name)
        if found is not None:
            into.append(found)
        if not self.by_prefix:
            return
        for length in self.prefix_lengths:
            if length > len(name):
                break
            found = self.by_prefix.get(name[:length])
            if found is not None:
                into.append(found)


_EMPTY: list[Rule] = []
_MEMO_SIZE = 4096


class RuleIndex:
    """Finds the rules that could match an action without looking at the others."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._tools = _NameIndex()
        self._intents = _NameIndex()
        self._by_field: list[tuple[Callable[[Action], Any], dict[Any, list[Rule]]]] = []
        operations: dict[Any, list[Rule]] = {}
        sensitivities: dict[Any, list[Rule]] = {}
        risks: dict[Any, list[Rule]] = {}
        self._unindexed: list[Rule] = []
        self._memo: dict[tuple[Any, ...], list[Rule]] = {}
        for rule in self.rules:
            if rule.tools is not None:
                for pattern in rule.tools.patterns:
                    self._tools.add(pattern, rule)
            elif rule.intents is not None:
                for pattern in rule.intents.patterns:
                    self._intents.add(pattern, rule)
            elif rule.operations is not None:
                _add_all(operations, rule.operations, rule)
            elif rule.sensitivities is not None:
                _add_all(sensitivities, rule.sensitivities, rule)
            elif rule.risk_levels is not None:
                _add_all(risks, rule.risk_levels, rule)
            else:
                self._unindexed.append(rule)
        self._has_intents = bool(self._intents.exact or self._intents.by_prefix)
        for getter, table in (
            (_operation, operations),
            (_sensitivity, sensitivities),
            (_risk, risks),
        ):
            if table:
                self._by_field.append((getter, table))

    def candidates(self, action: Action) -> list[Rule]:
        """Rules that could match, in file order; each still needs ``matches_fields``.

        Agents call the same few tools over and over, so answers are memoised by
        the fields the index reads (bounded: cleared when full).
        """
        key = (
            action.tool,
            action.intent_id,
            action.operation_class,
            action.data_sensitivity,
            action.risk_level,
        )
        found = self._memo.get(key)
        if found is None:
            found = self.lookup(action)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return found

    def lookup(self, action: Action) -> list[Rule]:
        """``candidates`` without the memo: a few dict lookups, whatever the rule count."""
        found: list[list[Rule]] = []
        self._tools.lookup(action.tool, found)
        if self._has_intents:
            self._intents.lookup(action.intent_id, found)
        for getter, table in self._by_field:
            bucket = table.get(getter(action))
            if bucket is not None:
                found.append(bucket)
        if self._unindexed:
            found.append(self._unindexed)
        if not found:
            return _EMPTY
        if len(found) == 1:
            return found[0]
        unique = {rule.position: rule for bucket in found for rule in bucket}
        return [unique[position] for position in sorted(unique)]


def _add_all(table: dict[Any, list[Rule]], keys: Iterable[Any], rule: Rule) -> None:
    for key in keys:
        table.setdefault(key, []).append(rule)


def _operation(action: Action) -> Any:
    return action.operation_class


def _sensitivity(action: Action) -> Any:
    return action.data_sensitivity


def _risk(action: Action) -> Any:
    return action.risk_level
