"""Global crewai tool-call hooks that put gatekit in front of every tool of every crew.

crewai swallows any exception a hook raises except ``HookAborted`` (fail open),
so the before hook catches everything and turns it into ``HookAborted``: a
broken gate blocks the call. crewai then shows the agent a fixed "blocked by
hook" text; the after hook swaps in gatekit's reason and reports the outcome of
calls that ran. The two hooks find each other's call through the identity of
the ``tool_input`` dict, which crewai passes to both.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from crewai.hooks import (
    HookAborted,
    ToolCallHookContext,
    register_after_tool_call_hook,
    register_before_tool_call_hook,
    unregister_after_tool_call_hook,
    unregister_before_tool_call_hook,
)

from gatekit import AsyncClient, Client, Decision, Outcome
from gatekit.adapters import Refusal, Refused, ReviewMode, ToolCallGate
from gatekit_crewai._gate import GatekitToolFailure, call_request, outcome_of
from gatekit_crewai._tool import GatedTool

__all__ = ["install_hooks", "uninstall_hooks"]

_BLOCKED_BY_HOOK = "Tool execution blocked by hook."
_NO_DECISION = "gatekit could not get a decision for this tool call, so it did not run"


@dataclass
class _Allowed:
    decision: Decision
    arguments: dict[str, Any]


@dataclass
class _Refused:
    message: str


class _Calls:
    """Calls between the before and the after hook, keyed by their tool_input dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Holding the dict itself keeps its id from being reused while it is here.
        self._calls: dict[int, tuple[object, _Allowed | _Refused]] = {}

    def put(self, tool_input: object, call: _Allowed | _Refused) -> None:
        with self._lock:
            self._calls[id(tool_input)] = (tool_input, call)

    def pop(self, tool_input: object) -> _Allowed | _Refused | None:
        with self._lock:
            found = self._calls.get(id(tool_input))
            if found is None or found[0] is not tool_input:
                return None
            del self._calls[id(tool_input)]
            return found[1]


@dataclass(frozen=True)
class _GatekitHooks:
    gate: ToolCallGate
    calls: _Calls

    def before(self, context: ToolCallHookContext) -> None:
        try:
            self._authorize(context)
        except Exception as error:  # whatever went wrong, the tool must not run
            message = _refusal_message(_tool_name(context), error)
            with suppress(Exception):  # nothing may stop the abort below
                self.calls.put(context.tool_input, _Refused(message))
            raise HookAborted(reason=message, source="gatekit") from error

    def _authorize(self, context: ToolCallHookContext) -> None:
        if isinstance(getattr(context.tool, "_original_tool", None), GatedTool):
            return  # secure_crewai_tool gates it already: one decision per call
        arguments = dict(context.tool_input)
        role = getattr(context.agent, "role", None)
        metadata = {"crewai_agent_role": role} if role else None
        request = call_request(self.gate, self._policy_name(context), arguments, metadata=metadata)
        decision = self.gate.authorize(request)
        self.calls.put(context.tool_input, _Allowed(decision, arguments))

    def _policy_name(self, context: ToolCallHookContext) -> str:
        """The tool's own name, or crewai's sanitized one when ``tools=`` lists that."""
        name = _tool_name(context)
        if name not in self.gate.tools and context.tool_name in self.gate.tools:
            return context.tool_name
        return name

    def after(self, context: ToolCallHookContext) -> str | None:
        call = self.calls.pop(context.tool_input)
        if isinstance(call, _Refused):
            return call.message if _blocked_by_hook(context) else None
        if isinstance(call, _Allowed):
            # quiet: the call already happened; a failed report must not break crewai
            self.gate.client.report(call.decision, _outcome(call, context), quiet=True)
        return None


def _tool_name(context: ToolCallHookContext) -> str:
    # The tool's own name, as secure_crewai_tool uses; crewai's is sanitized.
    return str(getattr(context.tool, "name", None) or context.tool_name)


def _refusal_message(tool: str, error: Exception) -> str:
    """What the agent sees: the same text as from a tool wrapped by secure_crewai_tool."""
    refusal = error.refusal if isinstance(error, Refused) else Refusal.of(tool, error)
    try:
        return GatekitToolFailure.of(refusal).as_agent_message()
    except Exception:  # the call is blocked either way; say so without details
        return _NO_DECISION


def _blocked_by_hook(context: ToolCallHookContext) -> bool:
    return isinstance(context.tool_result, str) and context.tool_result.startswith(_BLOCKED_BY_HOOK)


def _outcome(call: _Allowed, context: ToolCallHookContext) -> Outcome:
    """What happened to a call gatekit allowed, as far as the after hook can tell."""
    if _blocked_by_hook(context):
        return Outcome(status="error", detail="blocked by a later hook")
    if dict(context.tool_input) != call.arguments:
        # A hook registered after gatekit's changed the input: not what was decided.
        return Outcome(status="error", detail="tool input changed after the decision")
    return outcome_of(context.raw_tool_result)


_installed: _GatekitHooks | None = None
_install_lock = threading.Lock()


def install_hooks(
    client: Client | AsyncClient | None = None,
    *,
    tools: Mapping[str, Mapping[str, Any]] | None = None,
    default: Mapping[str, Any] | None = None,
    on_review: ReviewMode = "wait",
    review_timeout: float | None = None,
) -> None:
    """Gate every crewai tool call in this process through global crewai hooks.

    ``tools`` maps a tool name (as written, or as crewai sanitizes it) to its
    Action fields; ``default`` holds the fields of every other tool. A refused
    call never runs and the agent sees gatekit's reason. ``on_review`` and
    ``review_timeout`` are as in every gatekit adapter; hooks run synchronously,
    also on crewai's async paths, so a call under review blocks there for up to
    ``review_timeout`` (``on_review="refuse"`` refuses at once instead). There
    is no ``on_denied``: crewai lets a hook only block a call, never raise.
    Tools wrapped with ``secure_crewai_tool`` are left to their own gate.
    Installing again replaces the previous installation. Fields are validated now.
    """
    global _installed
    gate = ToolCallGate(
        client, on_review=on_review, review_timeout=review_timeout, tools=tools, default=default
    )
    hooks = _GatekitHooks(gate, _Calls())
    with _install_lock:
        _uninstall_locked()
        register_before_tool_call_hook(hooks.before)
        register_after_tool_call_hook(hooks.after)
        _installed = hooks


def uninstall_hooks() -> bool:
    """Remove the hooks ``install_hooks`` registered. Returns whether any were installed."""
    with _install_lock:
        return _uninstall_locked()


def _uninstall_locked() -> bool:
    global _installed
    if _installed is None:
        return False
    unregister_before_tool_call_hook(_installed.before)
    unregister_after_tool_call_hook(_installed.after)
    _installed = None
    return True
