"""A gated LangChain tool: the inner tool's face, with a decision in front of its body.

``GatedTool`` is a real ``BaseTool``. It copies what the model and the agent
see (name, description, schemas, ``return_direct``, ``response_format``, error
handling, callbacks) and delegates input parsing and injected arguments to the
inner tool, so LangChain's own ``run``/``arun`` machinery behaves exactly as
for the inner tool. The gate sits in ``_run``/``_arun``: every entry point
(``invoke``, ``ainvoke``, ``run``, ``arun``, ``batch``, ``abatch``, a
``ToolNode``, a direct ``_run`` call) goes through one of them.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from langchain_core.utils.pydantic import TypeBaseModel
from pydantic import ConfigDict, Field, SkipValidation

from gatekit import AsyncClient, Client
from gatekit.adapters import Refused
from gatekit_langchain._gate import DenialMode, Gate, GatedCall, ReviewMode, tool_message

__all__ = ["GatedTool", "GatekitToolError", "langchain_tool", "secure_langchain_tool"]

# What the model and the agent see of a tool; a gated tool shows the same.
_COPIED_FIELDS = (
    "name",
    "description",
    "args_schema",
    "return_direct",
    "verbose",
    "callbacks",
    "tags",
    "metadata",
    "handle_tool_error",
    "handle_validation_error",
    "response_format",
    "extras",
)

_NO_CONFIG: RunnableConfig = {}


@dataclass(slots=True)
class _ActiveRun:
    """Set by ``run``/``arun`` so that ``_run``/``_arun`` know the tool call they serve."""

    tool: BaseTool
    tool_call_id: str | None


_active_run: ContextVar[_ActiveRun | None] = ContextVar("gatekit_langchain_run", default=None)


class GatekitToolError(ToolException):
    """A gated function (``langchain_tool`` under ``@tool``) was refused.

    It is a ``ToolException``: a tool with ``handle_tool_error=True`` shows the
    reason to the model as an error ToolMessage. ``error`` is the gatekit exception,
    ``refusal`` what the model is told.
    """

    def __init__(self, refused: Refused) -> None:
        self.error = refused.error
        self.refusal = refused.refusal
        super().__init__(str(refused))


class GatedTool(BaseTool):
    """A ``BaseTool`` that runs its ``inner`` tool only when gatekit allows the call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: SkipValidation[BaseTool] = Field(exclude=True)
    gate: SkipValidation[Gate] = Field(exclude=True)

    # -- the inner tool's face -----------------------------------------------------

    @property
    def args(self) -> dict[str, Any]:
        return self.inner.args

    @property
    def tool_call_schema(self) -> Any:
        return self.inner.tool_call_schema

    def get_input_schema(self, config: RunnableConfig | None = None) -> TypeBaseModel:
        return self.inner.get_input_schema(config)

    @functools.cached_property
    def _injected_args_keys(self) -> frozenset[str]:
        return self.inner._injected_args_keys

    def _to_args_and_kwargs(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # The inner tool parses its own input (and fills InjectedToolCallId).
        return self.inner._to_args_and_kwargs(tool_input, tool_call_id)

    # -- entry points: refusals become error ToolMessages (or raise) ---------------

    def run(self, tool_input: str | dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        tool_call_id = kwargs.get("tool_call_id")
        token = _active_run.set(_ActiveRun(self, tool_call_id))
        try:
            return super().run(tool_input, *args, **kwargs)
        except Refused as refused:
            return self._refusal(refused, tool_call_id)
        finally:
            _active_run.reset(token)

    async def arun(self, tool_input: str | dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        tool_call_id = kwargs.get("tool_call_id")
        token = _active_run.set(_ActiveRun(self, tool_call_id))
        try:
            return await super().arun(tool_input, *args, **kwargs)
        except Refused as refused:
            return self._refusal(refused, tool_call_id)
        finally:
            _active_run.reset(token)

    def _refusal(self, refused: Refused, tool_call_id: str | None) -> ToolMessage:
        # Without a tool call there is no ToolMessage to answer with: raise instead.
        if self.gate.on_denied == "raise" or tool_call_id is None:
            raise refused.error
        return tool_message(refused, tool_call_id)

    # -- the choke point -------------------------------------------------------------

    def _run(
        self,
        *args: Any,
        config: RunnableConfig = _NO_CONFIG,
        run_manager: CallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> Any:
        call = self._call(args, kwargs, config)
        plumbing = _plumbing(self.inner._run, run_manager, config)
        try:
            return self.gate.run(call, lambda: self.inner._run(*args, **kwargs, **plumbing))
        except Refused as refused:
            self._raise_for_direct_call(refused)

    async def _arun(
        self,
        *args: Any,
        config: RunnableConfig = _NO_CONFIG,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> Any:
        call = self._call(args, kwargs, config)
        # As BaseTool.arun does: an inner tool without its own _arun is judged by _run.
        own_arun = type(self.inner)._arun is not BaseTool._arun
        target = self.inner._arun if own_arun else self.inner._run
        plumbing = _plumbing(target, run_manager, config)
        try:
            return await self.gate.arun(call, lambda: self.inner._arun(*args, **kwargs, **plumbing))
        except Refused as refused:
            self._raise_for_direct_call(refused)

    def _raise_for_direct_call(self, refused: Refused) -> typing.NoReturn:
        active = _active_run.get()
        if active is not None and active.tool is self:
            raise refused  # run()/arun() turn it into a ToolMessage or the gatekit error
        raise refused.error  # called as _run/_arun directly (e.g. by another framework)

    def _call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], config: RunnableConfig
    ) -> GatedCall:
        active = _active_run.get()
        tool_call_id = active.tool_call_id if active is not None and active.tool is self else None
        arguments = self._filter_injected_args(kwargs)
        if args:  # a plain string input to a single-input tool
            names = list(self.args)
            if len(args) == 1 and len(names) == 1:
                arguments = {names[0]: args[0], **arguments}
            else:
                arguments = {"args": list(args), **arguments}
        return GatedCall(self.name, arguments, tool_call_id, config or None)


def _plumbing(
    target: Callable[..., Any], run_manager: Any, config: RunnableConfig
) -> dict[str, Any]:
    """The run_manager/config keywords LangChain would pass ``target`` (it checks signatures)."""
    extra: dict[str, Any] = {}
    if run_manager is not None and "run_manager" in _parameters(target):
        extra["run_manager"] = run_manager
    if param := _config_parameter(target):
        extra[param] = config
    return extra


def _parameters(fn: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _config_parameter(fn: Callable[..., Any]) -> str | None:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: LangChain would not pass config either
        return None
    return next((name for name, hint in hints.items() if hint is RunnableConfig), None)


def secure_langchain_tool(
    tool: BaseTool,
    *,
    client: Client | AsyncClient | None = None,
    on_review: ReviewMode = "auto",
    review_timeout: float | None = None,
    on_denied: DenialMode = "message",
    **action_fields: Any,
) -> GatedTool:
    """Gate an existing LangChain tool. ``action_fields`` are gatekit Action fields
    (risk_level, operation_class, data_sensitivity, systems_touched, intent_id, …).

    Securing an already gated tool re-gates its inner tool with the new settings
    (never two gates on one call).
    """
    if not isinstance(tool, BaseTool):
        raise TypeError(f"secure_langchain_tool expects a LangChain BaseTool, got {type(tool)!r}")
    inner = tool.inner if isinstance(tool, GatedTool) else tool
    gate = Gate(
        client,
        on_review=on_review,
        review_timeout=review_timeout,
        on_denied=on_denied,
        default=action_fields,
    )
    copied = {name: getattr(inner, name) for name in _COPIED_FIELDS}
    return GatedTool(**copied, inner=inner, gate=gate)


def langchain_tool(
    *,
    client: Client | AsyncClient | None = None,
    on_review: ReviewMode = "auto",
    review_timeout: float | None = None,
    on_denied: DenialMode = "message",
    **action_fields: Any,
) -> Callable[[Any], Any]:
    """Decorator: gate a tool you own.

    Put it **over** ``@tool`` (the supported order for agents): it returns a
    ``GatedTool``, exactly like ``secure_langchain_tool``. Applied to a plain
    function (so also under ``@tool``) it gates the function itself, which
    never sees the tool call: a refusal raises ``GatekitToolError`` (a
    ``ToolException``, shown to the model only if the tool's
    ``handle_tool_error`` is set), decisions are not keyed to the tool call id,
    and a review is waited for rather than turned into an interrupt.
    """
    options: dict[str, Any] = {
        "client": client,
        "on_review": on_review,
        "review_timeout": review_timeout,
        "on_denied": on_denied,
    }

    def decorate(target: Any) -> Any:
        if isinstance(target, BaseTool):
            return secure_langchain_tool(target, **options, **action_fields)
        if callable(target):
            return _gated_function(target, Gate(**options, default=action_fields))
        raise TypeError(f"langchain_tool decorates a BaseTool or a function, got {target!r}")

    return decorate


def _gated_function(fn: Callable[..., Any], gate: Gate) -> Any:
    name = getattr(fn, "__name__", "tool")
    signature = inspect.signature(fn)

    def call_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> GatedCall:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return GatedCall(name, dict(bound.arguments))

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def agated(*args: Any, **kwargs: Any) -> Any:
            try:
                return await gate.arun(call_for(args, kwargs), lambda: fn(*args, **kwargs))
            except Refused as refused:
                raise GatekitToolError(refused) from refused.error

        return agated

    @functools.wraps(fn)
    def gated(*args: Any, **kwargs: Any) -> Any:
        try:
            return gate.run(call_for(args, kwargs), lambda: fn(*args, **kwargs))
        except Refused as refused:
            raise GatekitToolError(refused) from refused.error

    return gated
