"""gatekit for LangChain: a governance decision in front of every tool call.

    from gatekit_langchain import GatekitMiddleware, secure_langchain_tool

    send = secure_langchain_tool(send_email, risk_level="high", operation_class="communicate")
    agent = create_agent(model, tools=[send, search],
                         middleware=[GatekitMiddleware(client, default={"risk_level": "low"})])

Supports langchain-core, langchain and langgraph 1.x (checked at import).
"""

from gatekit_langchain._compat import check_versions

check_versions()

from gatekit_langchain._gate import DenialMode, ReviewMode  # noqa: E402 - after the check
from gatekit_langchain._middleware import GatekitMiddleware  # noqa: E402
from gatekit_langchain._review import ReviewAnswer, approve, reject  # noqa: E402
from gatekit_langchain._tool import (  # noqa: E402
    GatedTool,
    GatekitToolError,
    langchain_tool,
    secure_langchain_tool,
)

__all__ = [
    "DenialMode",
    "GatedTool",
    "GatekitMiddleware",
    "GatekitToolError",
    "ReviewAnswer",
    "ReviewMode",
    "approve",
    "langchain_tool",
    "reject",
    "secure_langchain_tool",
]
