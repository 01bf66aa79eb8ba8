"""A policy file that is picked up again when it changes, without a restart.

The file is looked at (one ``stat``) at most every ``check_interval`` seconds,
not on every decision. An edit that does not compile keeps the last good
policy in force; the error is logged and attached to every evaluation as a
``policy.reload_error`` check until the file is fixed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from gatekit._exceptions import ValidationError
from gatekit._models import Action, Check, CheckOutcome, Decision, DecisionRequest
from gatekit.policy._base import Evaluation
from gatekit.policy.compiled import Clock, Explanation, RulePolicy, load_policy
from gatekit.policy.state import MemoryPolicyState, PolicyState

__all__ = ["FilePolicy"]

logger = logging.getLogger("gatekit.policy")

_Stamp = tuple[int, int, int]  # mtime_ns, size, inode


def _stamp(path: Path) -> _Stamp | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class FilePolicy:
    """The policy in ``path``, reloaded when the file changes. Thread-safe.

    Raises ``gatekit.ValidationError`` at construction if the file is invalid:
    an engine never starts without a good policy. Counters (limits, trust,
    approval memory) are kept across reloads.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        state: PolicyState | None = None,
        clock: Clock = time.time,
        check_interval: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.state: PolicyState = state if state is not None else MemoryPolicyState()
        self._clock = clock
        self._interval = check_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp = _stamp(self.path)
        self.current: RulePolicy = load_policy(self.path, state=self.state, clock=clock)
        self.error: str | None = None
        self._next_look = monotonic() + check_interval

    def reload_if_changed(self, *, force: bool = False) -> bool:
        """Look at the file now; True if a new policy was loaded."""
        if not self._lock.acquire(blocking=False):
            return False  # another thread is already looking
        try:
            self._next_look = self._monotonic() + self._interval
            stamp = _stamp(self.path)
            if stamp == self._stamp and not force:
                return False
            self._stamp = stamp
            try:
                self.current = load_policy(self.path, state=self.state, clock=self._clock)
            except ValidationError as exc:
                self.error = str(exc)
                logger.error(
                    "gatekit: policy %s not reloaded, keeping the last good one: %s", self.path, exc
                )
                return False
            self.error = None
            logger.info("gatekit: policy %s reloaded", self.path)
            return True
        finally:
            self._lock.release()

    def _policy(self) -> RulePolicy:
        if self._monotonic() >= self._next_look:
            self.reload_if_changed()
        return self.current

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        evaluation = self._policy().evaluate(request)
        error = self.error
        if error is None:
            return evaluation
        check = Check(
            name="policy.reload_error",
            outcome=CheckOutcome.WARN,
            detail=f"edited policy rejected, last good one in force: {error}"[:1000],
        )
        return replace(evaluation, checks=(*evaluation.checks, check))

    def explain(self, request: DecisionRequest) -> Explanation:
        return self._policy().explain(request)

    def observe_decision(self, decision: Decision, action: Action) -> None:
        self.current.observe_decision(decision, action)

    def observe_review(self, decision: Decision) -> None:
        self.current.observe_review(decision)
