"""Outcome reports, sent after the answer instead of before it.

A gated call's outcome is reported to the engine once its result is on its way
to the client. Awaited in line, the report would hold the answer back by a
second hop to a worker thread (the embedded engine's async calls each run in
one), about as long as the decision's own; the engine commits outcome records
with its next transaction anyway, not with the call. So ``put`` only queues,
and one thread per process hands the queue to each call's (sync) client,
a short moment later, in order, several at a time (the embedded engine's sync
report runs in that thread; another backend's is bounded by the client's
``decision_timeout``). While calls keep coming, nothing wakes that thread: it
looks at the queue every ``BATCH_DELAY`` seconds by itself.

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

__all__ = [
    "BATCH_DELAY",
    "EXIT_WAIT",
    "QUIET_LOOKS",
    "OutcomeReports",
    "reports",
    "wait_for_reports",
]

logger = logging.getLogger("gatekit_mcp")

BATCH_DELAY = 0.02
"""Seconds between two looks at the queue while reports keep coming."""

QUIET_LOOKS = 50
"""Looks that found nothing before the thread sleeps until the next report wakes it."""

EXIT_WAIT = 10.0
"""Seconds the exit hook waits for the queue (each report is itself bounded by the
client's ``decision_timeout``)."""


class OutcomeReports:
    """A queue of outcome reports and the one thread that sends them. Thread-safe.

    Waking a thread costs its waker a switch of the CPU, and the waker here is
    the event loop in the middle of a call. So while calls keep coming the
    thread looks at the queue every ``batch_delay`` seconds by itself, and ``put``
    wakes it only after a quiet spell (``QUIET_LOOKS`` looks at an empty queue),
    during which it sleeps."""

    def __init__(self, batch_delay: float = BATCH_DELAY) -> None:
        self._delay = batch_delay
        self._queue: deque[tuple[Client | AsyncClient, Decision, Outcome]] = deque()
        self._lock = threading.Lock()  # the queue, _asleep and _idle change under it
        self._wake = threading.Event()
        self._asleep = True
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
            wake, self._asleep = self._asleep, False
            wake = self._started() or wake
        if wake:
            self._wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every report queued so far is sent; False if ``timeout`` ran out."""
        return self._idle.wait(timeout)

    def _started(self) -> bool:
        """Start the thread unless it runs (a forked child has none); whether it did."""
        if self._thread is not None and self._thread.is_alive():
            return False
        # Daemon: a hung backend must not keep the process alive; the exit hook
        # waits for the queue, bounded.
        self._thread = threading.Thread(target=self._run, name="gatekit-mcp-reports", daemon=True)
        self._thread.start()
        if not self._exit_hook:
            # Registered now, after the client registered its own close at exit:
            # exit hooks run last-registered first, so reports go out before it closes.
            atexit.register(self._at_exit)
            self._exit_hook = True
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            quiet = 0
            while quiet < QUIET_LOOKS:
                time.sleep(self._delay)  # let a few reports gather
                quiet = 0 if self._send_queued() else quiet + 1
            with self._lock:
                if not self._queue:  # else a report came at the last moment: go on
                    self._asleep = True
                    continue
            self._wake.set()

    def _send_queued(self) -> bool:
        """Send what is queued; whether there was anything."""
        sent = False
        while True:
            with self._lock:
                if not self._queue:
                    self._idle.set()
                    return sent
                client, decision, outcome = self._queue.popleft()
            sent = True
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
