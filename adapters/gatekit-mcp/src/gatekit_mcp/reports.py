"""Outcome reports, sent after the answer instead of before it.

A gated call's outcome is reported to the engine once its result is on its way
to the client. Awaited in line, the report would hold the answer back by a
second hop to a worker thread (the embedded engine's async calls each run in
one), about as long as the decision's own; the engine commits outcome records
with its next transaction anyway, not with the call. So ``put`` only queues,
and one thread per process hands the queue to each call's (sync) client,
a short moment later, in order, several at a time (the embedded engine's sync
report runs in that thread; another backend's is bounded by the client's
``decision_timeout``).

The durability contract is the engine's: a reported outcome is committed with
the writer's next transaction or within its flush delay; this queue adds at
most ``BATCH_DELAY`` to that, plus the time to report what is queued before
it. ``wait_for_reports`` returns once everything queued so far is reported;
the proxy calls it before it closes its client, and at interpreter exit it
runs by itself (registered at the first report, after the client's own exit
hook, so that it runs first).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque

from gatekit import AsyncClient, Client, Decision, Outcome

__all__ = ["BATCH_DELAY", "EXIT_WAIT", "OutcomeReports", "reports", "wait_for_reports"]

logger = logging.getLogger("gatekit_mcp")

BATCH_DELAY = 0.01
"""Seconds the reporting thread lets more reports gather once one is queued: one
wake-up for several calls, and the caller never waits on the thread."""

EXIT_WAIT = 10.0
"""Seconds the exit hook waits for the queue (each report is itself bounded by the
client's ``decision_timeout``)."""


class OutcomeReports:
    """A queue of outcome reports and the one thread that sends them. Thread-safe."""

    def __init__(self, batch_delay: float = BATCH_DELAY) -> None:
        self._delay = batch_delay
        self._queue: deque[tuple[Client | AsyncClient, Decision, Outcome]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._exit_hook = False

    def put(self, client: Client | AsyncClient, decision: Decision, outcome: Outcome) -> None:
        """Queue the report to ``client``, sent by the reporting thread through its
        sync twin. The queue holds ``client`` itself: a client closes its backend
        when it is collected, which must wait until its reports are out."""
        with self._lock:
            self._queue.append((client, decision, outcome))
            self._idle.clear()
            self._start()
        if not self._wake.is_set():  # set once per batch, not once per call
            self._wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every report queued so far is sent; False if ``timeout`` ran out."""
        return self._idle.wait(timeout)

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        # Daemon: a hung backend must not keep the process alive; the exit hook
        # waits for the queue, bounded.
        self._thread = threading.Thread(target=self._run, name="gatekit-mcp-reports", daemon=True)
        self._thread.start()
        if not self._exit_hook:
            # Registered now, after the client registered its own close at exit:
            # exit hooks run last-registered first, so reports go out before it closes.
            atexit.register(self._at_exit)
            self._exit_hook = True

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self._delay)  # let a few more reports join this batch
            self._wake.clear()
            self._send_queued()

    def _send_queued(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._idle.set()
                    return
                client, decision, outcome = self._queue.popleft()
            try:
                client.as_sync().report(decision, outcome, quiet=True)
            except Exception:  # quiet reports log their own failures; this is a last guard
                logger.exception(
                    "gatekit: could not report the outcome of %s", decision.decision_id
                )

    def _at_exit(self) -> None:
        if not self.wait(EXIT_WAIT):
            with self._lock:
                left = len(self._queue)
            logger.warning("gatekit: %d outcome reports were not sent before exit", left)


reports = OutcomeReports()
"""The process's queue (one thread serves every gate)."""


def wait_for_reports(timeout: float | None = EXIT_WAIT) -> bool:
    """Wait until every outcome queued so far has been reported (see the module
    docstring); False if ``timeout`` ran out first. Call it before closing a
    client whose outcomes you read, or that you close yourself."""
    return reports.wait(timeout)
