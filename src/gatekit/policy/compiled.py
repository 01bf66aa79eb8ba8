"""A compiled policy file: the rule set that evaluates actions.

Evaluation runs in stages, each adding verdicts that are combined by
precedence (block > review > allow):

1. rules found through the index (``when`` conditions run only for rules
   whose fields matched); the file's ``default`` when none matched;
2. argument shields; 3. agent trust; 4. approval memory, which can turn a
   ``review`` into an ``allow`` for an action humans already approved N times;
5. rate limits and budgets, last: a call that will not be blocked spends its
   quota in the same atomic step that checks it (``PolicyState.spend``).

The risk floor (high/critical never auto-allowed) is applied after all this
by the engine that calls ``evaluate`` (``apply_risk_floor``), so nothing here
can lift it. ``explain`` is ``evaluate`` with a trace: one path, so an
explanation cannot disagree with a decision.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatekit._models import (
    Action,
    Check,
    CheckOutcome,
    Decision,
    DecisionRequest,
    Verdict,
)
from gatekit.policy._base import Evaluation, LimitUse, apply_risk_floor, dry_run, limit_use
from gatekit.policy.approvals import APPROVAL_MEMORY_RULE, ApprovalMemory
from gatekit.policy.conditions import (
    ConditionError,
    compile_condition,
    describe_error,
    shared_context,
)
from gatekit.policy.limits import Limit, LimitHit
from gatekit.policy.loader import Source, read_policy_file, read_policy_spec
from gatekit.policy.rules import FieldMatch, Rule, RuleIndex
from gatekit.policy.schema import PolicySpec
from gatekit.policy.shields import Shields
from gatekit.policy.state import MemoryPolicyState, PolicyState
from gatekit.policy.trust import QUARANTINE_RULE, REDUCED_RULE, Trust, TrustLevel

__all__ = ["DEFAULT_RULE", "Explanation", "RulePolicy", "RuleTrace", "load_policy", "parse_policy"]

DEFAULT_RULE = "policy.default"
Clock = Callable[[], float]

_ERROR_OUTCOME = {
    Verdict.ALLOW: CheckOutcome.WARN,
    Verdict.REVIEW: CheckOutcome.REVIEW,
    Verdict.BLOCK: CheckOutcome.BLOCK,
}
_SHIELD_LABEL = {
    "shield.path_traversal": "path traversal",
    "shield.shell_injection": "shell injection",
    "shield.ssrf": "internal address (SSRF)",
    "shield.secrets": "secret",
    "shield.pii": "personal data",
}
_SHIELD_VERDICT = {CheckOutcome.BLOCK: Verdict.BLOCK, CheckOutcome.REVIEW: Verdict.REVIEW}


class _Tally:
    """The verdict so far, who decided it, and everything worth recording."""

    __slots__ = ("checks", "ids", "limit_waits", "reason", "verdict")

    def __init__(self, verdict: Verdict, reason: str, ids: list[str], checks: list[Check]) -> None:
        self.verdict = verdict
        self.reason = reason
        self.ids = ids
        self.checks = checks
        self.limit_waits: dict[str, float | None] = {}  # limit name → seconds until it lifts

    def add(self, verdict: Verdict, rule_id: str, reason: str) -> None:
        if verdict.severity > self.verdict.severity:
            self.verdict, self.reason, self.ids = verdict, reason, [rule_id]
        elif verdict is self.verdict and rule_id not in self.ids:
            self.ids.append(rule_id)

    def retry_after(self) -> float | None:
        """Set only when every block is a limit that waiting will lift."""
        if self.verdict is not Verdict.BLOCK:
            return None
        waits = [self.limit_waits.get(rule_id) for rule_id in self.ids]
        if any(wait is None for wait in waits):
            return None
        return max(wait for wait in waits if wait is not None)


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """How one rule related to an action, in words (for ``gatekit policy explain``)."""

    rule_id: str
    verdict: Verdict
    outcome: str  # "matched", "condition false", "condition error", "no match"
    details: tuple[str, ...]


class _Trace:
    """How every rule saw one action, collected while it is evaluated."""

    def __init__(self) -> None:
        self.rules: list[RuleTrace] = []
        self.unrelated = 0  # rules that constrain nothing this action matched

    def no_match(self, rule: Rule, fields: list[FieldMatch]) -> None:
        if fields and not any(f.matched for f in fields):
            self.unrelated += 1
            return
        details = tuple(f.text for f in fields)
        self.rules.append(RuleTrace(rule.id, rule.verdict, "no match", details))

    def matched(self, rule: Rule, fields: list[FieldMatch], outcome: str, said: str) -> None:
        details = [f.text for f in fields] or ["matches every action"]
        if said:
            details.append(said)
        self.rules.append(RuleTrace(rule.id, rule.verdict, outcome, tuple(details)))


@dataclass(frozen=True, slots=True)
class Explanation:
    evaluation: Evaluation  # after the risk floor, as the engine would decide
    traces: tuple[RuleTrace, ...]
    unrelated_rules: int  # rules that constrain nothing this action matched
    notes: tuple[str, ...] = field(default_factory=tuple)


class RulePolicy:
    """A compiled policy file. Thread-safe; counters live in ``state``."""

    def __init__(
        self,
        spec: PolicySpec,
        source: Source | None = None,
        *,
        state: PolicyState | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.spec = spec
        self.source = source or Source("<policy>")
        self.state: PolicyState = state if state is not None else MemoryPolicyState()
        self._clock = clock
        self.rules = self._compile_rules()
        self._index = RuleIndex(self.rules)
        self._condition_variables = tuple(
            sorted(
                {name for rule in self.rules if rule.condition for name in rule.condition.variables}
            )
        )
        self.shields = Shields(spec.shields)
        self.limits = self._compile_limits()
        self.trust = Trust(spec.trust) if spec.trust is not None else None
        self.memory = ApprovalMemory(spec.approval_memory) if spec.approval_memory else None
        self._plain = not (self.shields or self.limits or self.trust or self.memory)
        self._default_evaluation = Evaluation(spec.default, spec.default_reason, (DEFAULT_RULE,))

    # -- compiling ---------------------------------------------------------------

    def _compile_rules(self) -> tuple[Rule, ...]:
        first_line: dict[str, int] = {}
        rules = []
        for position, spec in enumerate(self.spec.rules):
            if spec.id in first_line:
                raise self.source.error(
                    ("rules", position, "id"),
                    f"duplicate rule id {spec.id!r} (first used on line {first_line[spec.id]})",
                )
            first_line[spec.id] = self.source.line_of(("rules", position, "id")) or 0
            condition = None
            if spec.when is not None:
                try:
                    condition = compile_condition(spec.when)
                except ConditionError as exc:
                    raise self.source.error(("rules", position, "when"), str(exc)) from None
            rules.append(
                Rule.build(
                    id=spec.id,
                    position=position,
                    verdict=spec.verdict,
                    reason=spec.reason,
                    match=spec.match,
                    condition=condition,
                )
            )
        return tuple(rules)

    def _compile_limits(self) -> tuple[Limit, ...]:
        seen: set[str] = set()
        for position, spec in enumerate(self.spec.limits):
            if spec.id in seen:
                raise self.source.error(
                    ("limits", position, "id"), f"duplicate limit id {spec.id!r}"
                )
            seen.add(spec.id)
        return tuple(Limit.build(spec) for spec in self.spec.limits)

    # -- evaluating ----------------------------------------------------------------

    def evaluate(self, request: DecisionRequest, *, trace: _Trace | None = None) -> Evaluation:
        action = request.action
        verified = request.verified_delegation
        delegation = verified.as_context() if verified is not None else None
        best, reason, ids, checks = self._match_rules(action, trace, delegation)
        if self._plain and not checks:
            if best is None:
                return self._default_evaluation
            if len(ids) == 1:
                return best.alone  # the common case: nothing to build
        if self._plain:
            verdict = best.verdict if best is not None else self.spec.default
            return Evaluation(verdict, reason, tuple(ids), tuple(checks))
        verdict = best.verdict if best is not None else self.spec.default
        tally = _Tally(verdict, reason, ids, checks)
        now = self._clock()
        if self.shields:
            self._apply_shields(request, tally)
        level = self._apply_trust(action, tally, now) if self.trust is not None else None
        if self.memory is not None and level in (None, TrustLevel.NORMAL):
            self._apply_memory(request, tally, now)
        if self.limits:
            self._apply_limits(action, tally, now)
        return Evaluation(
            tally.verdict,
            tally.reason,
            tuple(tally.ids),
            tuple(tally.checks),
            retry_after=tally.retry_after(),
            trust_level=level.value if level is not None else None,
        )

    def _match_rules(
        self, action: Action, trace: _Trace | None, delegation: dict[str, Any] | None = None
    ) -> tuple[Rule | None, str, list[str], list[Check]]:
        """The most restrictive matching rule, its reason, the ids of all rules at its
        verdict (``policy.default`` when none matched) and any condition errors.

        With a trace, every rule is looked at (not only the index's candidates) and
        described; the verdict is reached by the very same tests."""
        best: Rule | None = None
        reason = self.spec.default_reason
        ids: list[str] = []
        checks: list[Check] = []
        context: list[Any] = []  # the CEL context, built on the first condition that runs
        rules = self.rules if trace is not None else self._index.candidates(action)
        for rule in rules:
            fields: list[FieldMatch] | None = [] if trace is not None else None
            if not rule.matches_fields(action, fields):
                if trace is not None and fields is not None:
                    trace.no_match(rule, fields)
                continue
            errors_before = len(checks)
            holds = rule.condition is None or self._condition_holds(
                rule, action, checks, context, delegation
            )
            failed = len(checks) > errors_before
            if trace is not None and fields is not None:
                trace.matched(rule, fields, *_condition_words(rule, holds, failed, checks))
            if not holds:
                continue
            if best is None or rule.verdict.severity > best.verdict.severity:
                best, ids, reason = rule, [rule.id], rule.reason
                if failed:
                    reason += " (its condition could not be evaluated, so it counts)"
            elif rule.verdict is best.verdict:
                ids.append(rule.id)
        return best, reason, ids or [DEFAULT_RULE], checks

    def _condition_holds(
        self,
        rule: Rule,
        action: Action,
        checks: list[Check],
        context: list[Any],
        delegation: dict[str, Any] | None,
    ) -> bool:
        """A condition that fails to evaluate counts against the action: it matches
        block/review rules and does not match allow rules. Never a silent allow."""
        assert rule.condition is not None
        try:
            if not context:
                context.append(shared_context(action, self._condition_variables, delegation))
            return rule.condition.holds(context[0])
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # includes a panic inside the CEL engine
            counts = rule.verdict is not Verdict.ALLOW
            effect = "treated as matched" if counts else "treated as not matched"
            checks.append(
                Check(
                    name="policy.condition_error",
                    outcome=_ERROR_OUTCOME[rule.verdict],
                    detail=f"rule {rule.id}: {describe_error(exc)} ({effect})"[:500],
                )
            )
            return counts

    def _apply_shields(self, request: DecisionRequest, tally: _Tally) -> None:
        for check in self.shields.scan(request):
            tally.checks.append(check)
            verdict = _SHIELD_VERDICT.get(check.outcome)
            if verdict is not None:
                label = _SHIELD_LABEL.get(check.name, check.name)
                tally.add(verdict, check.name, f"{label} in {check.path}: {check.detail}")

    def _apply_limits(self, action: Action, tally: _Tally, now: float) -> None:
        use = limit_use()
        if use is LimitUse.SKIP:
            return
        limits = [limit for limit in self.limits if limit.applies_to(action)]
        if not limits:
            return
        if use is LimitUse.SPEND and tally.verdict is not Verdict.BLOCK:
            hits = self._spend(action, limits, now)
        else:  # a dry run, or a blocked call (which spends nothing): only look
            hits = [(limit, limit.check(action, self.state, now)) for limit in limits]
        for limit, hit in hits:
            if hit is not None:
                tally.checks.append(hit.check)
                tally.add(Verdict.BLOCK, limit.name, hit.reason)
                tally.limit_waits[limit.name] = hit.retry_after

    def _spend(
        self, action: Action, limits: list[Limit], now: float
    ) -> list[tuple[Limit, LimitHit | None]]:
        """Spend every limit's share of this call at once, or none of them."""
        charges = {limit: limit.charge(action) for limit in limits}
        unreadable = [(limit, limit.unreadable()) for limit, c in charges.items() if c is None]
        if unreadable:
            return list(unreadable)
        due = {charge: limit for limit, charge in charges.items() if charge and charge.amount}
        over = self.state.spend(list(due), now)
        return [(due[charge], due[charge].exceeded(charge, self.state, now)) for charge in over]

    def _apply_trust(self, action: Action, tally: _Tally, now: float) -> TrustLevel | None:
        assert self.trust is not None
        if action.agent_id is None:
            return None
        level, why = self.trust.level(action.agent_id, self.state, now)
        if level is TrustLevel.QUARANTINED:
            tally.checks.append(Check(name="trust", outcome=CheckOutcome.BLOCK, detail=why))
            tally.add(
                Verdict.BLOCK, QUARANTINE_RULE, f"agent {action.agent_id} is quarantined: {why}"
            )
        elif level is TrustLevel.REDUCED:
            tally.checks.append(Check(name="trust", outcome=CheckOutcome.REVIEW, detail=why))
            if tally.verdict is Verdict.ALLOW:
                reason = f"agent {action.agent_id} has reduced trust ({why}): needs review"
                tally.verdict, tally.reason, tally.ids = Verdict.REVIEW, reason, [REDUCED_RULE]
        return level

    def _apply_memory(self, request: DecisionRequest, tally: _Tally, now: float) -> None:
        assert self.memory is not None
        action = request.action
        if tally.verdict is not Verdict.REVIEW:
            return
        if not self.memory.remembers(request.action_digest, action.risk_level, self.state, now):
            return
        count = self.memory.approvals(request.action_digest, self.state, now)
        detail = f"this exact action was approved by humans {count} times"
        tally.checks.append(Check(name="approval_memory", outcome=CheckOutcome.PASS, detail=detail))
        tally.verdict, tally.reason, tally.ids = Verdict.ALLOW, detail, [APPROVAL_MEMORY_RULE]

    # -- observing outcomes (called by the engine) -----------------------------------

    def observe_decision(self, decision: Decision, action: Action) -> None:
        """Count blocked calls for trust (limits were spent while evaluating)."""
        if self.trust is not None and action.agent_id is not None:
            self.trust.observe(decision, action.agent_id, self.state, self._clock())

    def observe_review(self, decision: Decision) -> None:
        """Remember human approvals (and forget them on a rejection)."""
        if self.memory is not None:
            self.memory.observe_review(decision, self.state, self._clock())

    # -- for people ---------------------------------------------------------------------

    def explain(self, request: DecisionRequest) -> Explanation:
        """What the engine would decide, and how every rule saw the action.

        A dry run of ``evaluate`` with a trace: nothing is recorded, no limit is spent.
        """
        action = request.action
        trace = _Trace()
        with dry_run():
            evaluation = apply_risk_floor(self.evaluate(request, trace=trace), action.risk_level)
        notes = []
        if not any(t.outcome in ("matched", "condition error") for t in trace.rules):
            notes.append(f"no rule matched: the default verdict is {self.spec.default.value}")
        if evaluation.verdict is Verdict.REVIEW and action.risk_level.never_auto_allowed:
            notes.append(f"{action.risk_level.value}-risk actions are never allowed without review")
        return Explanation(evaluation, tuple(trace.rules), trace.unrelated, tuple(notes))

    def summary(self) -> dict[str, Any]:
        verdicts = Counter(rule.verdict.value for rule in self.rules)
        return {
            "rules": len(self.rules),
            "by_verdict": dict(sorted(verdicts.items())),
            "with_conditions": sum(rule.condition is not None for rule in self.rules),
            "default": self.spec.default.value,
            "shields": sorted(name for name, value in self.spec.shields if value is not None),
            "limits": [limit.id for limit in self.limits],
            "trust": self.trust is not None,
            "approval_memory": self.memory is not None,
        }


def _condition_words(rule: Rule, holds: bool, failed: bool, checks: list[Check]) -> tuple[str, str]:
    """How a rule's condition came out, in words (the outcome and a sentence)."""
    if rule.condition is None:
        return "matched", ""
    source = rule.condition.source
    if failed:
        effect = "counts as a match" if holds else "no match"
        return "condition error", f"when {source!r} failed: {checks[-1].detail}; {effect}"
    if holds:
        return "matched", f"when {source!r} is true"
    return "condition false", f"when {source!r} is false"


def parse_policy(
    text: str, name: str = "<policy>", *, state: PolicyState | None = None, clock: Clock = time.time
) -> RulePolicy:
    """Compile a policy from YAML text; errors name ``name``, the line and the field."""
    spec, source = read_policy_spec(text, name)
    return RulePolicy(spec, source, state=state, clock=clock)


def load_policy(
    path: str | Path, *, state: PolicyState | None = None, clock: Clock = time.time
) -> RulePolicy:
    """Compile a policy file (raises ``gatekit.ValidationError`` naming file, line, field)."""
    spec, source = read_policy_file(Path(path))
    return RulePolicy(spec, source, state=state, clock=clock)
