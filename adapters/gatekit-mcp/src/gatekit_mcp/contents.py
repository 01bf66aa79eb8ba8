"""Resources and prompts through the result shields.

The shields read ``CallToolResult`` wire dicts (``content`` blocks and
``structuredContent``). A resource's contents and a prompt's messages reach the
model just as a tool's result does, so they are put in that shape, screened,
and put back:

* ``resources/read``: each of ``contents`` becomes an embedded-resource block
  (``{"type": "resource", "resource": …}``), which the shields read (and redact)
  as a tool's embedded resource, binary ``blob`` left alone.
* ``prompts/get``: each message's ``content`` is a content block already; the
  prompt's ``description`` rides along as ``structuredContent``.
"""

from __future__ import annotations

from typing import Any

from gatekit_mcp._compat import Wire

__all__ = ["prompt_as_result", "prompt_from_result", "resource_as_result", "resource_from_result"]


def _dicts(value: Any) -> list[Wire]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def resource_as_result(read: Wire) -> Wire:
    return {"content": [{"type": "resource", "resource": c} for c in _dicts(read.get("contents"))]}


def resource_from_result(read: Wire, shown: Wire) -> Wire:
    """``read`` with its contents as the shields left them."""
    contents = [block.get("resource", {}) for block in _dicts(shown.get("content"))]
    return {**read, "contents": contents}


def prompt_as_result(prompt: Wire) -> Wire:
    messages = _dicts(prompt.get("messages"))
    blocks = [message.get("content") for message in messages]
    result: Wire = {"content": [block if isinstance(block, dict) else {} for block in blocks]}
    if isinstance(prompt.get("description"), str):
        result["structuredContent"] = {"description": prompt["description"]}
    return result


def prompt_from_result(prompt: Wire, shown: Wire) -> Wire:
    """``prompt`` with its messages' contents and description as the shields left them."""
    blocks = _dicts(shown.get("content"))
    messages = [
        {**message, "content": block}
        for message, block in zip(_dicts(prompt.get("messages")), blocks, strict=True)
    ]
    screened = {**prompt, "messages": messages}
    structured = shown.get("structuredContent")
    if isinstance(structured, dict) and "description" in structured:
        screened["description"] = structured["description"]
    return screened
