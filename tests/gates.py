"""One gated tool, built as a sync or an async function, so tests can run pairwise.

Tests take the ``kind`` fixture ("sync" or "async", from conftest.py) and build a
``GatedTool(kind, backend, …)``: each such test runs once per kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from gatekit import AsyncClient, Client, Decision
from gatekit.backends import Backend


@dataclass
class GatedTool:
    kind: str
    backend: Backend
    client_options: dict[str, Any] = field(default_factory=dict)
    intercept_options: dict[str, Any] = field(default_factory=dict)
    body_calls: list[Any] = field(default_factory=list)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        if self.kind == "sync":
            client = Client(self.backend, **self.client_options)

            @client.intercept(**self.intercept_options)
            def tool(*a: Any, **kw: Any) -> str:
                self.body_calls.append((a, kw))
                return "done"

            return tool(*args, **kwargs)

        client_async = AsyncClient(self.backend, **self.client_options)

        @client_async.intercept(**self.intercept_options)
        async def tool(*a: Any, **kw: Any) -> str:  # type: ignore[misc]
            self.body_calls.append((a, kw))
            return "done"

        async def main() -> Any:
            return await tool(*args, **kwargs)

        return anyio.run(main)

    def guard(self, **fields: Any) -> Any:
        """Run a body under client.guard(...); returns the decision the body saw."""
        if self.kind == "sync":
            with Client(self.backend, **self.client_options).guard(**fields) as decision:
                self.body_calls.append(decision)
                return decision

        async def main() -> Any:
            client = AsyncClient(self.backend, **self.client_options)
            async with client.guard(**fields) as decision:
                self.body_calls.append(decision)
                return decision

        return anyio.run(main)

    def wait_for_approval(self, decision: Decision, timeout: float) -> Decision:
        if self.kind == "sync":
            return Client(self.backend, **self.client_options).wait_for_approval(decision, timeout)
        client = AsyncClient(self.backend, **self.client_options)
        return anyio.run(client.wait_for_approval, decision, timeout)
