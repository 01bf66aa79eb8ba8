"""gatekit for MCP: a call-gate for hosts and routers, and a gating proxy server.

    from gatekit_mcp import McpToolBoundary

    boundary = McpToolBoundary(server_name="files", toolset_id="fs")
    boundary.invoke(tool_name="read_file", arguments={"path": "a"}, handler=run_tool)

or, in front of any MCP server:

    gatekit-mcp proxy --config tools.yaml -- python my_server.py

Works with mcp>=1.30,<3 (checked at import). ``gatekit_mcp.middleware`` (the
in-server gate) needs mcp 2.x.
"""

from gatekit_mcp._compat import MCP_VERSION
from gatekit_mcp.boundary import McpToolBoundary
from gatekit_mcp.config import ProxyConfig, ShieldMode, ToolFields
from gatekit_mcp.gate import ToolGate
from gatekit_mcp.pins import PinStore
from gatekit_mcp.proxy import Forwarder, GatingProxy
from gatekit_mcp.reports import wait_for_reports
from gatekit_mcp.serving import run_proxy
from gatekit_mcp.shields import INJECTION_PATTERNS, shield_result

__all__ = [
    "INJECTION_PATTERNS",
    "MCP_VERSION",
    "Forwarder",
    "GatingProxy",
    "McpToolBoundary",
    "PinStore",
    "ProxyConfig",
    "ShieldMode",
    "ToolFields",
    "ToolGate",
    "run_proxy",
    "shield_result",
    "wait_for_reports",
]
