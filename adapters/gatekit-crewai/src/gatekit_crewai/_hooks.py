"""Global crewai tool-call hooks that put gatekit in front of every tool of every crew.

crewai swallows any exception a hook raises except ``HookAborted`` (fail open),
so the before hook catches everything and turns it into ``HookAborted``: a
broken gate blocks the call. crewai then shows the agent a fixed "blocked by
hook" text; the after hook swaps in gatekit's reason and reports the outcome of
calls that ran. The two hooks find each other's call through the identity of
the ``tool_input`` dict, which crewai passes to both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, suppress
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
from crewai.tools.tool_failure import ToolFailure

from gatekit import AsyncClient, Client, Decision
from gatekit_crewai._gate import Gate, refusal_for
from gatekit_crewai._tool import GatedTool

__all__ = ["install_hooks", "uninstall_hooks"]

logger = logging.getLogger("gatekit.crewai")

_BLOCKED_BY_HOOK = "Tool execution blocked by hook."


class ToolCallFailed(Exception):
    """Recorded as the outcome of an allowed call whose tool reported a failure."""


@dataclass
class _Allowed:
    guard: AbstractContextManager[Decision]
    arguments: dict[str, Any]


@dataclass
class _Refused:
    message: str


class _Calls:
    """Calls between the before and the after hook, keyed by their tool_input dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Holding the dict itself keeps its id from being reused while it is here.
        self._calls: dict[int, tuple[dict[str, Any], _Allowed | _Refused]] = {}

    def put(self, tool_input: dict[str, Any], call: _Allowed | _Refused) -> None:
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
    default: Gate
    per_tool: Mapping[str, Gate]
    calls: _Calls

    def gate_for(self, context: ToolCallHookContext) -> Gate:
        tool = _tool_name(context)
        found = self.per_tool.get(tool) or self.per_tool.get(context.tool_name)
        return found or Gate.create(
            tool,
            self.default.client,
            {**self.default.fields, "tool": tool},
            wait=self.default.wait,
            timeout=self.default.timeout,
        )

    def before(self, context: ToolCallHookContext) -> None:
        try:
            self._decide(context)
        except Exception as error:  # whatever went wrong, the tool must not run
            message = self._refusal_message(context, error)
            with suppress(Exception):  # nothing may stop the abort below
                self.calls.put(context.tool_input, _Refused(message))
            raise HookAborted(reason=message, source="gatekit") from error

    def _decide(self, context: ToolCallHookContext) -> None:
        if isinstance(getattr(context.tool, "_original_tool", None), GatedTool):
            return  # secure_crewai_tool gates it already: one decision per call
        gate = self.gate_for(context)
        arguments = dict(context.tool_input)
        role = getattr(context.agent, "role", None)
        action = gate.action(arguments, {"crewai_agent_role": role} if role else {})
        guard = gate.sync_client().guard(action, wait=gate.wait, timeout=gate.timeout)
        guard.__enter__()  # left in after_tool_call, once the tool has run
        self.calls.put(context.tool_input, _Allowed(guard, arguments))

    @staticmethod
    def _refusal_message(context: ToolCallHookContext, error: Exception) -> str:
        try:
            return refusal_for(_tool_name(context), error).as_agent_message()
        except Exception:
            return "gatekit could not get a decision for this tool call, so it did not run"

    def after(self, context: ToolCallHookContext) -> str | None:
        call = self.calls.pop(context.tool_input)
        if isinstance(call, _Refused):
            return call.message if _blocked_by_hook(context) else None
        if isinstance(call, _Allowed):
            _report(call, context)
        return None


def _tool_name(context: ToolCallHookContext) -> str:
    # The tool's own name, as secure_crewai_tool uses; crewai's is sanitized.
    return str(getattr(context.tool, "name", None) or context.tool_name)


def _blocked_by_hook(context: ToolCallHookContext) -> bool:
    return isinstance(context.tool_result, str) and context.tool_result.startswith(_BLOCKED_BY_HOOK)


def _report(call: _Allowed, context: ToolCallHookContext) -> None:
    """Close the guard opened in the before hook: this records the call's outcome."""
    failure: str | None = None
    if _blocked_by_hook(context):
        failure = "another hook blocked the call after gatekit allowed it"
    elif isinstance(context.raw_tool_result, ToolFailure):
        failure = context.raw_tool_result.message
    elif dict(context.tool_input) != call.arguments:
        failure = "tool input changed after gatekit decided it"
    try:
        if failure is None:
            call.guard.__exit__(None, None, None)
        else:
            error = ToolCallFailed(failure)
            call.guard.__exit__(ToolCallFailed, error, None)
    except Exception as exc:  # the call already happened; reporting must not break crewai
        logger.warning("gatekit: could not record the outcome of %s: %s", context.tool_name, exc)


_installed: _GatekitHooks | None = None
_install_lock = threading.Lock()


def install_hooks(
    client: Client | AsyncClient | None = None,
    *,
    per_tool: Mapping[str, Mapping[str, Any]] | None = None,
    wait: bool = True,
    timeout: float | None = None,
    **defaults: Any,
) -> None:
    """Gate every crewai tool call in this process through global crewai hooks.

    ``defaults`` are Action fields for every tool; ``per_tool`` maps a tool name
    (as written, or as crewai sanitizes it) to its own fields, used instead of
    the defaults. A blocked call never runs and
    the agent sees gatekit's reason. Hooks run synchronously, also on crewai's
    async paths: a call under review blocks up to ``timeout`` there (use
    ``wait=False`` to refuse at once instead). Tools wrapped with
    ``secure_crewai_tool`` are left to their own gate. Installing again replaces
    the previous installation. Fields are validated now.
    """
    global _installed
    default = Gate.create("*", client, defaults, wait=wait, timeout=timeout)
    gates = {
        name: Gate.create(name, client, fields, wait=wait, timeout=timeout)
        for name, fields in (per_tool or {}).items()
    }
    hooks = _GatekitHooks(default, gates, _Calls())
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
