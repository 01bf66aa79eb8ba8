"""Counters behind rate limits, budgets, trust and approval memory.

``PolicyState`` is deliberately small (timestamped amounts per key, and a
deadline per key) so a durable store implements it with two tables: the
SQLite and PostgreSQL stores share these counters between processes and keep
them across restarts. ``MemoryPolicyState`` is the thread-safe in-process
implementation (used by the in-memory store).
Times are seconds since the epoch, supplied by the caller (tests inject a clock).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Charge", "MemoryPolicyState", "PolicyState"]


@dataclass(frozen=True, slots=True)
class Charge:
    """``amount`` to add to ``key``, allowed only while the window's total stays
    within ``maximum``."""

    key: str
    amount: float
    maximum: float
    window: float

    def fits(self, used: float) -> bool:
        return used + self.amount <= self.maximum


@runtime_checkable
class PolicyState(Protocol):
    def record(self, key: str, amount: float, at: float, keep_for: float) -> None:
        """Add an event; events older than ``keep_for`` seconds may be forgotten."""
        ...

    def events(self, key: str, since: float) -> list[tuple[float, float]]:
        """(time, amount) of the events after ``since``, oldest first. A key is
        always read with the same window, so older events may be forgotten."""
        ...

    def total(self, key: str, since: float) -> float:
        """Sum of the amounts recorded after ``since`` (same window rule)."""
        ...

    def clear(self, key: str) -> None:
        """Forget every event of ``key``."""
        ...

    def get_until(self, key: str) -> float | None:
        """A deadline set with ``set_until`` (e.g. the end of a quarantine)."""
        ...

    def set_until(self, key: str, until: float) -> None: ...

    def spend(self, charges: Sequence[Charge], at: float) -> list[Charge]:
        """Atomically, also against other processes sharing the state: if every
        charge fits its window, record them all and return []; otherwise record
        nothing and return the charges that do not fit."""
        ...


class _Log:
    """One key's events, oldest first, with their running sum."""

    __slots__ = ("events", "sum")

    def __init__(self) -> None:
        self.events: deque[tuple[float, float]] = deque()
        self.sum = 0.0

    def drop_until(self, horizon: float) -> None:
        events = self.events
        while events and events[0][0] <= horizon:
            self.sum -= events.popleft()[1]
        if not events:
            self.sum = 0.0  # no drift left behind by float subtraction


class MemoryPolicyState:
    """Sliding-window event logs in memory, with running sums so that a total
    costs O(1) amortised however many events the window holds. Thread-safe.

    A key is read with one window (as limits, trust and approval memory do):
    ``total``/``events`` forget the events at or before ``since``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, _Log] = {}
        self._until: dict[str, float] = {}

    def record(self, key: str, amount: float, at: float, keep_for: float) -> None:
        with self._lock:
            self._record(key, amount, at, keep_for)

    def _record(self, key: str, amount: float, at: float, keep_for: float) -> None:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log()
        log.events.append((at, amount))
        log.sum += amount
        if math.isfinite(keep_for):
            log.drop_until(at - keep_for)

    def events(self, key: str, since: float) -> list[tuple[float, float]]:
        with self._lock:
            log = self._logs.get(key)
            if log is None:
                return []
            log.drop_until(since)
            return list(log.events)

    def total(self, key: str, since: float) -> float:
        with self._lock:
            return self._total(key, since)

    def _total(self, key: str, since: float) -> float:
        log = self._logs.get(key)
        if log is None:
            return 0.0
        log.drop_until(since)
        return log.sum

    def clear(self, key: str) -> None:
        with self._lock:
            self._logs.pop(key, None)

    def get_until(self, key: str) -> float | None:
        return self._until.get(key)

    def set_until(self, key: str, until: float) -> None:
        with self._lock:
            self._until[key] = until

    def spend(self, charges: Sequence[Charge], at: float) -> list[Charge]:
        with self._lock:
            over = [c for c in charges if not c.fits(self._total(c.key, at - c.window))]
            if not over:
                for charge in charges:
                    self._record(charge.key, charge.amount, at, charge.window)
            return over
