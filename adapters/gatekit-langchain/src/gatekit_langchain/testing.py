"""A scripted chat model for testing gated agents without a network.

    model = ScriptedChatModel.calling(
        [{"name": "send_email", "args": {"to": "bob@example.com"}, "id": "call_1"}],
        "Done.",
    )
    agent = create_agent(model, tools=[...], middleware=[GatekitMiddleware(client)])

Each element of the script is one model turn: a list of tool calls, an
``AIMessage``, or plain text. ``seen`` records the messages the model was
given on every turn, so a test can assert which ToolMessages the model read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field

__all__ = ["ScriptedChatModel"]

Turn = AIMessage | str | Sequence[ToolCall | dict[str, Any]]


class ScriptedChatModel(GenericFakeChatModel):
    """``GenericFakeChatModel`` that accepts ``bind_tools`` and records what it saw."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @classmethod
    def calling(cls, *turns: Turn) -> ScriptedChatModel:
        return cls(messages=iter([_as_message(turn) for turn in turns]))

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        # The script already knows which tools it calls; binding changes nothing.
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def _as_message(turn: Turn) -> AIMessage | str:
    if isinstance(turn, AIMessage | str):
        return turn
    calls = [
        {"name": c["name"], "args": dict(c.get("args") or {}), "id": c["id"], "type": "tool_call"}
        for c in turn
    ]
    return AIMessage(content="", tool_calls=calls)
