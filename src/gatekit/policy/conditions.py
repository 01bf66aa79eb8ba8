"""CEL conditions (``when:``) over an action, compiled once at load.

Uses ``common-expression-language`` (Rust ``cel`` crate bindings): a compiled
program runs in about a microsecond plus the cost of handing it the values it
reads, against hundreds of microseconds for the pure-Python implementation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gatekit._models import Action

if TYPE_CHECKING:
    import cel

__all__ = [
    "ACTION_VARIABLES",
    "Condition",
    "ConditionError",
    "compile_condition",
    "describe_error",
    "shared_context",
]


def _cel() -> Any:
    # Imported on first use: the package also loads its interactive shell
    # (prompt_toolkit), which costs most of a second at import time.
    import cel

    return cel


# What a condition can read, and how each value is taken from the action.
ACTION_VARIABLES: dict[str, Callable[[Action], Any]] = {
    "tool": lambda a: a.tool,
    "intent_id": lambda a: a.intent_id,
    "args": lambda a: a.arguments,
    "risk_level": lambda a: a.risk_level.value,
    "operation_class": lambda a: a.operation_class.value,
    "data_sensitivity": lambda a: a.data_sensitivity.value,
    "systems_touched": lambda a: a.systems_touched,
    "agent_id": lambda a: a.agent_id,
    "run_id": lambda a: a.run_id,
    "session_id": lambda a: a.session_id,
    "metadata": lambda a: a.metadata,
}

# ``delegation``: what the engine verified of the request's delegation chain. A
# request made without delegation reads as depth 0 with empty names, so a rule
# like ``delegation.depth > 2`` needs no null checks.
NO_DELEGATION: dict[str, Any] = {"root": "", "delegatee": "", "depth": 0}
REQUEST_VARIABLES = frozenset({"delegation"})

_NEUTRAL: dict[str, Any] = {
    "args": {},
    "metadata": {},
    "systems_touched": [],
    "agent_id": None,
    "run_id": None,
    "session_id": None,
}


class ConditionError(ValueError):
    """A condition that cannot be compiled; the message says why."""


@dataclass(frozen=True, slots=True)
class Condition:
    source: str
    program: cel.Program
    variables: tuple[str, ...]  # the action variables it reads: only these are converted

    def activation(
        self, action: Action, delegation: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return _values(action, self.variables, delegation)

    def holds(self, activation: dict[str, Any] | cel.Context) -> bool:
        """True/False; raises whatever CEL raises (missing key, wrong type) and
        TypeError for a non-boolean result. The caller decides what an error means."""
        result = self.program.execute(activation)
        if not isinstance(result, bool):
            raise TypeError(f"condition gave {type(result).__name__}, not a boolean")
        return result


def _values(
    action: Action, variables: tuple[str, ...], delegation: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        name: (delegation or NO_DELEGATION)
        if name == "delegation"
        else ACTION_VARIABLES[name](action)
        for name in variables
    }


def shared_context(
    action: Action, variables: tuple[str, ...], delegation: dict[str, Any] | None = None
) -> cel.Context:
    """One CEL context for all the conditions of one evaluation.

    Handing values to CEL (converting them to its types) costs far more than
    running a compiled condition, so it is done once per action, not per rule.
    ``delegation`` is the verified delegation's context (``VerifiedDelegation``).
    """
    context: cel.Context = _cel().Context(_values(action, variables, delegation))
    return context


def describe_error(exc: BaseException) -> str:
    """One line a policy author can act on."""
    if isinstance(exc, KeyError) and exc.args:
        return f"the action has no field {exc.args[0]!r}"
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    return first.split(". CEL does not coerce")[0].split(". Check that")[0]


def compile_condition(source: str) -> Condition:
    cel = _cel()
    try:
        program = cel.compile(source)
    except Exception as exc:
        raise ConditionError(_compile_message(str(exc))) from None
    names = program.variables()
    readable = ACTION_VARIABLES.keys() | REQUEST_VARIABLES
    unknown = [n for n in names if n not in readable and not _bound_by_macro(n, source)]
    if unknown:
        known = ", ".join([*ACTION_VARIABLES, *sorted(REQUEST_VARIABLES)])
        raise ConditionError(f"unknown variable {unknown[0]!r} (a condition can read: {known})")
    _reject_unknown_functions(program, set(program.functions()))
    variables = tuple(n for n in names if n in readable)
    return Condition(source, program, variables)


def _bound_by_macro(name: str, source: str) -> bool:
    """Is ``name`` the loop variable of a macro (``files.exists(f, …)``)?"""
    macro = rf"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*{re.escape(name)}\s*,"
    return re.search(macro, source) is not None


def _reject_unknown_functions(program: Any, functions: set[str]) -> None:
    """A trial run on neutral values surfaces calls to functions CEL does not have.

    Best effort: a branch the trial does not reach is not checked; at run time
    such an error counts against the rule (see ``RulePolicy``), never as an allow.
    """
    trial = {name: _NEUTRAL.get(name, "") for name in ACTION_VARIABLES}
    trial["delegation"] = NO_DELEGATION
    try:
        program.execute(trial)
    except Exception as exc:
        found = re.search(r"Undefined variable or function: '([^']+)'", str(exc))
        if found and found.group(1) in functions:
            raise ConditionError(f"unknown function {found.group(1)!r}") from None


def _compile_message(message: str) -> str:
    found = re.search(r"ERROR: <input>:(\d+):(\d+): (.*)", message)
    if found is not None:
        return f"invalid CEL at column {found.group(2)}: {found.group(3)}"
    first = next((line for line in message.splitlines() if line.strip()), "")
    return f"invalid CEL: {first}"
