"""Gated crewai tools: ``secure_crewai_tool`` for existing tools, ``crewai_tool`` for new ones.

The gate sits in ``_run``/``_arun``, not ``run``: crewai's text (ReAct) path
calls ``_run`` through ``to_structured_tool()`` and never goes through ``run``,
while its native function-calling path calls ``run``, which calls ``_run``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, overload

import anyio.to_thread
from crewai.tools import BaseTool
from crewai.tools import tool as make_crewai_tool
from crewai.tools.base_tool import Tool
from crewai.tools.tool_failure import ToolFailure
from pydantic import BaseModel, PrivateAttr

from gatekit import AsyncClient, Client, ValidationError
from gatekit.adapters import DenialMode, Refusal, ReviewMode, ToolCallGate
from gatekit_crewai._gate import GatekitToolFailure, ToolGate

__all__ = ["GatedTool", "crewai_tool", "secure_crewai_tool"]

_UNGATED = GatekitToolFailure.of(
    Refusal(
        code="no_gate",
        message=(
            "this gated tool has lost its gate (was it restored from a checkpoint?); "
            "wrap the original tool again with secure_crewai_tool"
        ),
        retryable=False,
    )
)


class GatedTool(BaseTool):
    """A real crewai ``BaseTool`` that asks gatekit before every call of the tool it wraps.

    Carries the wrapped tool's name, description, schemas, ``result_as_answer``,
    usage limits and failure policy; its results are never cached. Build it with
    ``secure_crewai_tool`` or ``crewai_tool``.
    """

    _inner: BaseTool | None = PrivateAttr(default=None)
    _gate: ToolGate | None = PrivateAttr(default=None)

    @property
    def inner(self) -> BaseTool | None:
        """The wrapped tool (None only if this tool was rebuilt without one)."""
        return self._inner

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        inner, gate = self._inner, self._gate
        if inner is None or gate is None:
            return _UNGATED
        return gate.run(self._arguments(args, kwargs), lambda: _call(inner, args, kwargs))

    async def _arun(self, *args: Any, **kwargs: Any) -> Any:
        inner, gate = self._inner, self._gate
        if inner is None or gate is None:
            return _UNGATED
        return await gate.arun(self._arguments(args, kwargs), lambda: _acall(inner, args, kwargs))

    def format_output_for_agent(self, raw_result: Any) -> str:
        if self._inner is None or isinstance(raw_result, ToolFailure):
            return super().format_output_for_agent(raw_result)
        return self._inner.format_output_for_agent(raw_result)

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Name positional arguments after the schema, as crewai's structured tool does."""
        names = list(self.args_schema.model_fields)
        values: dict[str, Any] = dict(zip(names, args, strict=False))
        if len(args) > len(names):
            values["*args"] = list(args[len(names) :])  # policy sees every value the tool gets
        values.update(kwargs)
        return values


def _never_cache(args: Any = None, result: Any = None) -> bool:
    """Gated results are never cached: crewai answers from its cache (shared by every
    agent of a crew) before calling the tool, which would skip the decision."""
    return False


def _call(inner: BaseTool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = inner._run(*args, **kwargs)
    if inspect.isawaitable(result):  # an async-only tool called synchronously, as crewai does
        return asyncio.run(_awaited(result))
    return result


async def _acall(inner: BaseTool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _has_async_body(inner):
        return await inner._arun(*args, **kwargs)
    # A sync tool on the async path runs in a worker thread, not on the event loop.
    result = await anyio.to_thread.run_sync(functools.partial(inner._run, *args, **kwargs))
    return await result if inspect.isawaitable(result) else result


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _has_async_body(inner: BaseTool) -> bool:
    # crewai's Tool._arun calls a sync function and only then raises, so ask first.
    if isinstance(inner, Tool):
        return inspect.iscoroutinefunction(inner.func)
    return type(inner)._arun is not BaseTool._arun


def secure_crewai_tool(
    tool: BaseTool,
    /,
    *,
    client: Client | AsyncClient | None = None,
    on_review: ReviewMode = "wait",
    review_timeout: float | None = None,
    on_denied: DenialMode = "message",
    **action_fields: Any,
) -> GatedTool:
    """Wrap an existing crewai tool so that gatekit decides every call first.

    ``action_fields`` are Action fields (``risk_level``, ``operation_class``,
    ``data_sensitivity``, ``systems_touched``, ``intent_id``, ``metadata``, …;
    ``tool`` names the action in policy and defaults to the tool's name),
    validated now. ``client`` defaults to ``gatekit.default_client()``, resolved
    at the first call. ``on_review``, ``review_timeout`` and ``on_denied`` are the
    options every gatekit adapter shares (see ``gatekit.adapters``): a refused
    call returns a ``GatekitToolFailure``, or raises the gatekit error with
    ``on_denied="raise"``. Wrapping a ``GatedTool`` gates its inner tool anew,
    with these settings: still one decision per call.
    """
    inner = _ungated_tool(tool)
    fields = dict(action_fields)
    name = fields.pop("tool", tool.name)
    gate = ToolCallGate(
        client,
        on_review=on_review,
        review_timeout=review_timeout,
        on_denied=on_denied,
        tools={name: fields},
    )
    copied = {field: getattr(tool, field) for field in BaseTool.model_fields}
    copied.pop("cache_function")  # set below, unvalidated: crewai warns on non-module callables
    gated = GatedTool(**copied)
    gated.cache_function = _never_cache
    gated._inner = inner
    gated._gate = ToolGate(gate, name)
    return gated


def _ungated_tool(tool: BaseTool) -> BaseTool:
    """The tool to gate: for a tool gated already, the one inside it (so that
    wrapping again replaces the settings instead of deciding every call twice)."""
    if not isinstance(tool, BaseTool):
        raise TypeError(f"secure_crewai_tool needs a crewai BaseTool, not {type(tool).__name__}")
    if not isinstance(tool, GatedTool):
        return tool
    if tool.inner is None:
        raise ValidationError(
            f"tool {tool.name!r} has lost the tool it gated; wrap the original tool instead",
            field="tool",
        )
    return tool.inner


@overload
def crewai_tool(target: Callable[..., Any] | BaseTool, /) -> GatedTool: ...


@overload
def crewai_tool(
    target: str | None = None,
    /,
    *,
    client: Client | AsyncClient | None = None,
    on_review: ReviewMode = "wait",
    review_timeout: float | None = None,
    on_denied: DenialMode = "message",
    result_schema: type[BaseModel] | None = None,
    result_as_answer: bool = False,
    max_usage_count: int | None = None,
    **action_fields: Any,
) -> Callable[[Callable[..., Any] | BaseTool], GatedTool]: ...


def crewai_tool(
    target: Callable[..., Any] | BaseTool | str | None = None,
    /,
    *,
    client: Client | AsyncClient | None = None,
    on_review: ReviewMode = "wait",
    review_timeout: float | None = None,
    on_denied: DenialMode = "message",
    result_schema: type[BaseModel] | None = None,
    result_as_answer: bool = False,
    max_usage_count: int | None = None,
    **action_fields: Any,
) -> GatedTool | Callable[[Callable[..., Any] | BaseTool], GatedTool]:
    """Make a gated crewai tool from a function, like crewai's ``@tool``::

        @crewai_tool("Send email", risk_level="high", operation_class="communicate")
        def send_email(to: str, body: str) -> str:
            \"\"\"Send an email.\"\"\"

    The first argument is the tool name (the function's name by default).
    ``result_schema``, ``result_as_answer`` and ``max_usage_count`` are crewai's
    ``@tool`` options; the rest is as for ``secure_crewai_tool``. Also works
    stacked above crewai's own ``@tool``.
    """
    crewai_options: dict[str, Any] = {
        "result_schema": result_schema,
        "result_as_answer": result_as_answer,
        "max_usage_count": max_usage_count,
    }

    def gate(func_or_tool: Callable[..., Any] | BaseTool, name: str | None = None) -> GatedTool:
        if isinstance(func_or_tool, BaseTool):
            if result_schema is not None or result_as_answer or max_usage_count is not None:
                raise TypeError("set crewai's tool options on the @tool below crewai_tool")
            tool = func_or_tool
        else:
            tool = make_crewai_tool(name or func_or_tool.__name__, **crewai_options)(func_or_tool)
        return secure_crewai_tool(
            tool,
            client=client,
            on_review=on_review,
            review_timeout=review_timeout,
            on_denied=on_denied,
            **action_fields,
        )

    if target is None or isinstance(target, str):
        return functools.partial(gate, name=target)
    return gate(target)
