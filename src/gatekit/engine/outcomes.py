"""Outcome records, committed with the writer's next transaction instead of one of their own.

The decision and its audit record are committed before a tool runs; that is the
guarantee that matters. What happened afterwards is recorded too, but a commit
of its own would double the cost of every gated call. So a reported outcome is
queued here and joins the next decision's transaction, or is flushed by a timer
within ``delay`` seconds, and at close. A process killed in that window loses
the outcome record, never a decision.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable

from gatekit.audit._records import AuditEvent

__all__ = ["OutcomeQueue", "RecentIds"]

logger = logging.getLogger("gatekit")


class OutcomeQueue:
    """Outcome events waiting for a transaction. Thread-safe.

    One daemon thread (started with the first outcome, and again in a forked
    child) commits what is still queued ``delay`` seconds after the first of a
    batch was put; it is woken once per batch, not per outcome, and never started
    anew per batch.
    """

    def __init__(self, write: Callable[[list[AuditEvent]], None], delay: float = 0.05) -> None:
        self._write = write
        self._delay = delay
        self._lock = threading.Lock()
        self._events: list[AuditEvent] = []
        self._armed = False  # the flusher is counting down for the events queued
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        _QUEUES.add(self)

    def _forget_threads(self) -> None:
        """In a forked child: the flusher (and any lock it held) stayed in the parent."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._armed = False
        self._flusher = None

    def put(self, event: AuditEvent) -> None:
        with self._lock:
            self._events.append(event)
            if self._armed:
                return
            self._armed = True
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(
                    target=self._run, name="gatekit-outcomes", daemon=True
                )
                self._flusher.start()
        self._wake.set()

    def take(self) -> list[AuditEvent]:
        """Everything queued, for a transaction about to commit; ``give_back`` if it fails."""
        with self._lock:
            events, self._events = self._events, []
            return events

    def give_back(self, events: list[AuditEvent]) -> None:
        with self._lock:
            self._events[:0] = events

    def flush(self) -> None:
        """Commit everything queued now, in one transaction of its own."""
        events = self.take()
        if not events:
            return
        try:
            self._write(events)
        except BaseException:
            self.give_back(events)
            raise

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout=5)  # it only waits and flushes: bounded by the store's timeouts
        self.flush()

    def _run(self) -> None:
        while not self._closed.is_set():
            if not self._wake.wait(timeout=1.0):  # bounded, so a close is noticed anyway
                continue
            self._wake.clear()
            if self._closed.wait(self._delay):
                return  # close() flushes
            with self._lock:
                self._armed = False  # outcomes put from now on start the next countdown
            try:
                self.flush()
            except Exception as exc:  # kept queued: the next transaction or close retries
                logger.warning("gatekit: could not record outcomes yet: %s", exc)


_QUEUES: weakref.WeakSet[OutcomeQueue] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for queue in list(_QUEUES):
        queue._forget_threads()


os.register_at_fork(after_in_child=_after_fork_in_child)


class RecentIds:
    """The last ``size`` decision ids this engine made (a bounded, thread-safe set)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._ids: dict[str, None] = {}
        self._lock = threading.Lock()

    def add(self, decision_id: str) -> None:
        with self._lock:
            self._ids[decision_id] = None
            if len(self._ids) > self._size:
                del self._ids[next(iter(self._ids))]

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._ids
