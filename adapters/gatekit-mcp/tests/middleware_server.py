"""The upstream test server with the gate inside it (mcp 2.x ``Server.middleware``)."""

from __future__ import annotations

from gatekit_mcp import ProxyConfig
from gatekit_mcp.middleware import GatekitMiddleware
from gk_mcp_test_policy import make_backend
from upstream_server import server

from gatekit import AsyncClient

server.middleware.append(
    GatekitMiddleware(
        AsyncClient(make_backend()),
        server_name="upstream-test",
        config=ProxyConfig(),
    )
)

if __name__ == "__main__":
    server.run()
