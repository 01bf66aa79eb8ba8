"""An ordinary MCP server (FastMCP on mcp 1.x, MCPServer on 2.x) used by examples/mcp_proxy.py.

It knows nothing about gatekit: the proxy in front of it does the governing.
"""

from __future__ import annotations

from typing import TypedDict

try:
    from mcp.server.fastmcp import FastMCP as Server
except ModuleNotFoundError:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer as Server

server = Server("records")


class Weather(TypedDict):
    city: str
    celsius: float


@server.tool()
def get_weather(city: str) -> Weather:
    """Current temperature in a city."""
    return {"city": city, "celsius": 21.5}


@server.tool()
def delete_records(table: str) -> str:
    """Delete every record in a table."""
    raise SystemExit("delete_records must never run in this example")


if __name__ == "__main__":
    server.run()
