"""Counters behind rate limits, budgets, trust and approval memory.

``PolicyState`` is deliberately small (timestamped amounts per key, and a
deadline per key) so a durable store can implement it with two tables.
``MemoryPolicyState`` is the thread-safe in-process implementation.
Times are seconds since the epoch, supplied by the caller (tests inject a clock).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Protocol, runtime_checkable

__all__ = ["MemoryPolicyState", "PolicyState"]


@runtime_checkable
class PolicyState(Protocol):
    def record(self, key: str, amount: float, at: float, keep_for: float) -> None:
        """Add an event; events older than ``keep_for`` seconds may be forgotten."""
        ...

    def events(self, key: str, since: float) -> list[tuple[float, float]]:
        """(time, amount) of the events after ``since``, oldest first."""
        ...

    def total(self, key: str, since: float) -> float:
        """Sum of the amounts recorded after ``since``."""
        ...

    def clear(self, key: str) -> None:
        """Forget every event of ``key``."""
        ...

    def get_until(self, key: str) -> float | None:
        """A deadline set with ``set_until`` (e.g. the end of a quarantine)."""
        ...

    def set_until(self, key: str, until: float) -> None: ...


class MemoryPolicyState:
    """Sliding-window event logs in memory. Safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, deque[tuple[float, float]]] = {}
        self._until: dict[str, float] = {}

    def record(self, key: str, amount: float, at: float, keep_for: float) -> None:
        with self._lock:
            log = self._events.setdefault(key, deque())
            log.append((at, amount))
            if math.isfinite(keep_for):
                horizon = at - keep_for
                while log and log[0][0] <= horizon:
                    log.popleft()

    def events(self, key: str, since: float) -> list[tuple[float, float]]:
        with self._lock:
            log = self._events.get(key)
            return [] if log is None else [event for event in log if event[0] > since]

    def total(self, key: str, since: float) -> float:
        with self._lock:
            log = self._events.get(key)
            if not log:
                return 0.0
            return sum(amount for at, amount in log if at > since)

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)

    def get_until(self, key: str) -> float | None:
        return self._until.get(key)

    def set_until(self, key: str, until: float) -> None:
        with self._lock:
            self._until[key] = until
