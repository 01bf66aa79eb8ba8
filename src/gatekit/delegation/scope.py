"""What a delegation token lets its holder do, and whether one scope narrows another.

A field left out (``None``) means "no restriction", so a child that leaves out a
field its parent sets widens it, and is refused. Tool globs and resource prefixes
are compared conservatively: a child pattern counts as narrower only when that is
certain (same pattern, a plain name the parent's glob matches, or a longer prefix
under a parent's trailing ``*``); anything else is treated as widening.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Iterator
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from gatekit._models import Action, DataSensitivity, OperationClass, RiskLevel

__all__ = [
    "DelegationScope",
    "action_resources",
    "risk_violation",
    "scope_violation",
    "widened_fields",
]

_RISK_ORDER = [RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.CRITICAL]
_GLOB_CHARS = frozenset("*?[")
# Argument names whose (string) values name a resource the action touches.
RESOURCE_KEYS = frozenset(
    {"path", "paths", "file", "files", "filename", "resource", "resources", "url", "uri", "dir"}
)


class DelegationScope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_risk: RiskLevel | None = None
    operations: frozenset[OperationClass] | None = None
    sensitivities: frozenset[DataSensitivity] | None = None
    tools: tuple[str, ...] | None = Field(default=None, description="Globs over tool names.")
    resources: tuple[str, ...] | None = Field(
        default=None, description="Path-like prefixes; `..` is resolved before comparing."
    )
    budget: int | None = Field(default=None, ge=0, description="Calls allowed under the token.")

    def claims(self) -> dict[str, Any]:
        """The scope as token claims: sorted lists, unset fields left out."""
        out: dict[str, Any] = {}
        if self.max_risk is not None:
            out["max_risk"] = self.max_risk.value
        if self.operations is not None:
            out["operations"] = sorted(o.value for o in self.operations)
        if self.sensitivities is not None:
            out["sensitivities"] = sorted(s.value for s in self.sensitivities)
        if self.tools is not None:
            out["tools"] = list(self.tools)
        if self.resources is not None:
            out["resources"] = list(self.resources)
        if self.budget is not None:
            out["budget"] = self.budget
        return out

    @classmethod
    def from_claims(cls, claims: Any) -> DelegationScope:
        """Raises ValueError for anything but the exact claim shapes (no coercion:
        ``"5"`` is not a budget, ``true`` is not a number)."""
        if not isinstance(claims, dict):
            raise ValueError("scope must be an object")
        for key, value in claims.items():
            expected = _CLAIM_SHAPES.get(key)
            if expected is None or not expected(value):
                raise ValueError(f"scope.{key} has the wrong shape")
        try:
            return cls.model_validate(
                {k: tuple(v) if isinstance(v, list) else v for k, v in claims.items()}
            )
        except pydantic.ValidationError as exc:
            raise ValueError(f"invalid scope: {exc.errors()[0]['msg']}") from None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


_CLAIM_SHAPES: dict[str, Callable[[Any], bool]] = {
    "max_risk": lambda v: isinstance(v, str),
    "operations": _strings,
    "sensitivities": _strings,
    "tools": _strings,
    "resources": _strings,
    "budget": lambda v: type(v) is int,
}


def _risk_rank(risk: RiskLevel) -> int:
    return _RISK_ORDER.index(risk)


def normalised(path: str) -> str:
    """``/data/a/../secret`` → ``/secret``: what a prefix check must compare."""
    return posixpath.normpath(path)


def _under(path: str, prefix: str) -> bool:
    path, prefix = normalised(path), normalised(prefix)
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _glob_within(child: str, parent: str) -> bool:
    if child == parent:
        return True
    if not _GLOB_CHARS & set(child):
        return fnmatch.fnmatchcase(child, parent)
    stem = parent[:-1]
    if parent.endswith("*") and not _GLOB_CHARS & set(stem):
        return child.startswith(stem)  # `fs.read.*` under `fs.*`
    return False


def widened_fields(child: DelegationScope, parent: DelegationScope) -> list[str]:
    """The fields in which ``child`` is not within ``parent`` (empty: it narrows)."""
    widened = []
    if parent.max_risk is not None and (
        child.max_risk is None or _risk_rank(child.max_risk) > _risk_rank(parent.max_risk)
    ):
        widened.append("max_risk")
    for name in ("operations", "sensitivities"):
        mine, theirs = getattr(child, name), getattr(parent, name)
        if theirs is not None and (mine is None or not mine <= theirs):
            widened.append(name)
    if parent.tools is not None and (
        child.tools is None
        or not all(any(_glob_within(c, p) for p in parent.tools) for c in child.tools)
    ):
        widened.append("tools")
    if parent.resources is not None and (
        child.resources is None
        or not all(any(_under(c, p) for p in parent.resources) for c in child.resources)
    ):
        widened.append("resources")
    if parent.budget is not None and (child.budget is None or child.budget > parent.budget):
        widened.append("budget")
    return widened


def action_resources(action: Action) -> Iterator[str]:
    """Every resource the action names: string values under resource-like argument
    names, and any absolute path among its arguments."""
    yield from _resources(action.arguments, in_resource_key=False)


def _resources(value: Any, in_resource_key: bool) -> Iterator[str]:
    if isinstance(value, str):
        if in_resource_key or value.startswith("/"):
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _resources(item, in_resource_key or str(key).lower() in RESOURCE_KEYS)
    elif isinstance(value, list):
        for item in value:
            yield from _resources(item, in_resource_key)


def risk_violation(scope: DelegationScope, action: Action) -> str | None:
    """``"max_risk"`` when the action is riskier than ``scope`` allows, else None."""
    if scope.max_risk is not None and _risk_rank(action.risk_level) > _risk_rank(scope.max_risk):
        return "max_risk"
    return None


def scope_violation(scope: DelegationScope, action: Action) -> str | None:
    """Which field of ``scope`` the action falls outside of, or None when it is inside."""
    if risk_violation(scope, action) is not None:
        return "max_risk"
    if scope.operations is not None and action.operation_class not in scope.operations:
        return "operations"
    if scope.sensitivities is not None and action.data_sensitivity not in scope.sensitivities:
        return "sensitivities"
    if scope.tools is not None and not any(
        fnmatch.fnmatchcase(action.tool, glob) for glob in scope.tools
    ):
        return "tools"
    if scope.resources is not None:
        for resource in action_resources(action):
            if not any(_under(resource, prefix) for prefix in scope.resources):
                return "resources"
    return None
