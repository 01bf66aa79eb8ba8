"""Group commit: several threads' writes in one transaction, each thread released
only once its own write is committed.

A commit costs a write of every page it changed and, with
``synchronous=full``, an fsync; both cost the same for one caller's rows as for
many. So a thread that finds others queued behind the one writing does not
start a transaction of its own: the first thread in the queue (the leader)
takes everyone queued so far into one transaction, commits it, and releases
them all; the next in line then leads the next batch. A thread alone pays
nothing for this but a lock and a queue entry.

A batch that fails is not everyone's failure: its writes are tried again one
by one, so each caller gets its own write's outcome. Waiting is bounded: a
caller that gives up raises (and fails closed); its write is then never made,
unless a leader was already writing it (see ``_wait_for_turn``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from gatekit._exceptions import BackendError

__all__ = ["GroupCommit"]

T = TypeVar("T")


class _Entry(Generic[T]):
    __slots__ = ("abandoned", "done", "error", "taken", "write")

    def __init__(self, write: T) -> None:
        self.write = write
        self.taken = False  # in a leader's batch: written, or failed, by that leader
        self.done = False
        self.abandoned = False  # its caller gave up before a leader took it: never written
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """``submit(write)`` returns once ``commit`` has committed a batch holding it."""

    def __init__(
        self, commit: Callable[[list[T]], None], *, patience: float, max_batch: int = 32
    ) -> None:
        self._commit = commit
        self._patience = patience
        self._max_batch = max_batch
        self._changed = threading.Condition(threading.Lock())
        self._queue: deque[_Entry[T]] = deque()

    def submit(self, write: T) -> None:
        entry = _Entry(write)
        with self._changed:
            self._queue.append(entry)
            self._wait_for_turn(entry)
            if entry.done:
                return self._result(entry)
            # First in line: lead everyone queued so far (this entry is the first).
            batch = list(itertools.islice(self._queue, self._max_batch))
            for queued in batch:
                queued.taken = True
        try:
            self._commit_each([queued for queued in batch if not queued.abandoned])
        finally:
            with self._changed:
                for _ in batch:
                    self._queue.popleft().done = True
                while self._queue and self._queue[0].abandoned:  # nobody left to lead them
                    self._queue.popleft()
                self._changed.notify_all()
        return self._result(entry)

    def _wait_for_turn(self, entry: _Entry[T]) -> None:
        """Until a leader has committed ``entry``, or it is first in line to lead.

        A caller that waited ``patience`` gives up, and its write is never made,
        unless a leader has taken it already: then it waits for that leader (whose
        transaction the database's own timeouts bound) up to ``patience`` more, so
        that what it reports is what happened.
        """
        deadline = time.monotonic() + self._patience
        extended = False
        while not entry.done and self._queue[0] is not entry:
            left = deadline - time.monotonic()
            if left > 0 and self._changed.wait(left):
                continue
            if entry.done or self._queue[0] is entry:
                return
            if entry.taken and not extended:
                deadline, extended = time.monotonic() + self._patience, True
                continue
            entry.abandoned = not entry.taken  # a leader that takes it later skips it
            raise BackendError(
                f"the database did not take this write within {self._patience:g} s"
                + (" (it may still be committed)" if entry.taken else "")
            )

    def _commit_each(self, batch: list[_Entry[T]]) -> None:
        """Commit ``batch`` (its first entry is the leader's own); never raises: each
        entry gets its own error, so no follower takes a failed write for a committed one."""
        if not batch:
            return
        try:
            self._commit([entry.write for entry in batch])
            return
        except Exception as error:
            if len(batch) == 1:
                batch[0].error = error
                return
        except BaseException as error:  # interrupted: no write of the batch is known committed
            batch[0].error = error
            for entry in batch[1:]:
                entry.error = BackendError("the write was interrupted")
            return
        for entry in batch:  # one write's failure must not fail the others
            try:
                self._commit([entry.write])
            except BaseException as error:
                entry.error = error

    @staticmethod
    def _result(entry: _Entry[T]) -> None:
        if entry.error is not None:
            raise entry.error
