"""The embedded engine: an ``Engine`` in this process, nothing to start."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import anyio

from gatekit._models import Decision, DecisionRequest, Outcome
from gatekit._settings import Settings, load_settings
from gatekit.audit import AuditLog
from gatekit.engine import Engine
from gatekit.engine.core import _utcnow
from gatekit.policy import Policy
from gatekit.store import MemoryStore, Store

T = TypeVar("T")


class LocalBackend:
    """A thin in-process transport to an ``Engine``. Safe to share between threads.

    With no ``store``, state is durable, as ``GATEKIT_*`` settings (or ``settings``)
    describe: SQLite under ``data_dir`` or PostgreSQL at ``database_url``, with a
    signed audit log. An in-memory store is only ever an explicit choice
    (``store=MemoryStore()``). ``policy`` is a policy object, a policy file path
    (reloaded when edited), or None for the settings' policy file or the default.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str] | None = None,
        store: Store | None = None,
        *,
        settings: Settings | None = None,
        approval_ttl: float | None = None,
        clock: Callable[[], datetime] = _utcnow,
        audit: AuditLog | None = None,
        separation_of_duties: bool | None = None,
    ) -> None:
        given = {"approval_ttl": approval_ttl, "separation_of_duties": separation_of_duties}
        settings = (settings or load_settings()).model_copy(
            update={name: value for name, value in given.items() if value is not None}
        )
        self.engine = Engine.from_settings(
            settings, policy=policy, store=store, audit=audit, clock=clock
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        """The embedded engine as ``GATEKIT_*`` settings configure it."""
        return cls(settings=settings)

    @property
    def policy(self) -> Policy:
        return self.engine.policy

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def audit(self) -> AuditLog:
        return self.engine.audit

    # -- the Backend protocol -------------------------------------------------------

    def decide(self, request: DecisionRequest) -> Decision:
        return self.engine.decide(request)

    def preview(self, request: DecisionRequest) -> Decision:
        return self.engine.preview(request)

    def get_decision(self, decision_id: str) -> Decision:
        return self.engine.get_decision(decision_id)

    def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
        return self.engine.consume(decision_id, request)

    def report(self, decision_id: str, outcome: Outcome) -> None:
        self.engine.report(decision_id, outcome)

    def outcome(self, decision_id: str) -> Outcome | None:
        """The last outcome recorded for a decision (queued ones are committed first)."""
        return self.engine.outcome(decision_id)

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        self.engine.close()

    # -- the ReviewBackend protocol ---------------------------------------------------

    def pending(self) -> list[Decision]:
        return self.engine.pending()

    def approve(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        return self.engine.approve(approval_id, reviewer=reviewer, comment=comment)

    def reject(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        return self.engine.reject(approval_id, reviewer=reviewer, comment=comment)

    # -- async: in memory the engine's work is short and runs inline; a durable store
    # does I/O (disk, network) that must not block the event loop, so it runs in a thread.

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if isinstance(self.engine.store, MemoryStore):
            return fn(*args)
        # Abandoned on cancel: the client's decision_timeout can stop the wait.
        return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)

    async def adecide(self, request: DecisionRequest) -> Decision:
        return await self._run(self.decide, request)

    async def apreview(self, request: DecisionRequest) -> Decision:
        return await self._run(self.preview, request)

    async def aget_decision(self, decision_id: str) -> Decision:
        return await self._run(self.get_decision, decision_id)

    async def aconsume(self, decision_id: str, request: DecisionRequest) -> Decision:
        return await self._run(self.consume, decision_id, request)

    async def areport(self, decision_id: str, outcome: Outcome) -> None:
        await self._run(self.report, decision_id, outcome)

    async def aready(self) -> bool:
        return self.ready()

    async def aclose(self) -> None:
        await self._run(self.close)
