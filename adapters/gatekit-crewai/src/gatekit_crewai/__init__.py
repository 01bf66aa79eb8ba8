"""gatekit for CrewAI: a governance decision in front of every tool call a crew makes.

    from gatekit_crewai import crewai_tool, install_hooks, secure_crewai_tool

    search = secure_crewai_tool(SerperDevTool(), risk_level="low", operation_class="read")

    @crewai_tool("Send email", risk_level="high", operation_class="communicate")
    def send_email(to: str, body: str) -> str:
        \"\"\"Send an email.\"\"\"

    install_hooks(client, default={"risk_level": "medium"})   # or: every tool of every crew

A refused call does not run; the agent sees gatekit's reason instead, as a
``GatekitToolFailure`` (crewai's ``ToolFailure``, carrying gatekit's ``Refusal``).
Supports crewai >=1.15,<2 (checked at import).
"""

from gatekit_crewai._compat import SUPPORTED_CREWAI, require_supported_crewai

require_supported_crewai()

from gatekit_crewai._gate import GatekitToolFailure  # noqa: E402  (after the version check)
from gatekit_crewai._hooks import install_hooks, uninstall_hooks  # noqa: E402
from gatekit_crewai._tool import GatedTool, crewai_tool, secure_crewai_tool  # noqa: E402

__all__ = [
    "SUPPORTED_CREWAI",
    "GatedTool",
    "GatekitToolFailure",
    "crewai_tool",
    "install_hooks",
    "secure_crewai_tool",
    "uninstall_hooks",
]
