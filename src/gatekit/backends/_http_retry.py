"""When ``HttpBackend`` sends a request again, and how long it waits first.

The loop itself is tenacity's; this module only says which failures are worth
another try. A request is tried again only when doing so cannot make anything
happen twice: either the server surely did not act on it (no connection was
made; 429 or 503, the server's own "not now"), or it is *replayable* — a read,
or a decision under an idempotency key, which the engine answers with the same
decision however often it is sent. Waits are jittered exponential backoff
("full jitter"), except that a ``Retry-After`` the server sends is honoured up
to ``max_retry_after``; a longer one ends the retries at once rather than
retrying before the server asked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
import tenacity

logger = logging.getLogger("gatekit.http")

# The server did not act on these: it refused (429) or could not take (503) the request.
REFUSED_STATUSES = frozenset({429, 503})
# A gateway in front of the server answered: the request may have reached it.
GATEWAY_STATUSES = frozenset({502, 504})

# No request left this process: trying again is always safe.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# The request may have been received and acted on before the failure.
MAYBE_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.NetworkError,
    httpx.TimeoutException,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer, read whole (within the backend's size and time bounds)."""

    status: int
    headers: Mapping[str, str]
    content: bytes


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or an HTTP
    date), or None when there is none or it cannot be read."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; an unzoned one is not one
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` tries after the first; jitter windows from ``backoff`` doubling up
    to ``max_backoff`` seconds; a ``Retry-After`` honoured up to ``max_retry_after``."""

    retries: int = 3
    backoff: float = 0.05
    max_backoff: float = 2.0
    max_retry_after: float = 5.0

    def should_retry(self, replayable: bool) -> Callable[[tenacity.RetryCallState], bool]:
        def decide(state: tenacity.RetryCallState) -> bool:
            outcome = state.outcome
            if outcome is None:
                return False
            if outcome.failed:
                error = outcome.exception()
                if isinstance(error, NOT_SENT_ERRORS):
                    return True
                return replayable and isinstance(error, MAYBE_SENT_ERRORS)
            answer: Answer = outcome.result()
            if answer.status in REFUSED_STATUSES:
                asked = retry_after(answer.headers)
                return asked is None or asked <= self.max_retry_after
            return replayable and answer.status in GATEWAY_STATUSES

        return decide

    def wait(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            asked = retry_after(outcome.result().headers)
            if asked is not None:
                return min(asked, self.max_retry_after)
        jitter = tenacity.wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)
        return float(jitter(state))

    def _options(self, replayable: bool) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(self.retries + 1),
            "wait": self.wait,
            "retry": self.should_retry(replayable),
            # Out of tries: hand back the last answer (read as the failure it is) or
            # raise the last error, never tenacity's RetryError.
            "retry_error_callback": _last_outcome,
            "before_sleep": _log_retry,
        }

    def retrying(self, replayable: bool) -> tenacity.Retrying:
        return tenacity.Retrying(**self._options(replayable))

    def async_retrying(self, replayable: bool) -> tenacity.AsyncRetrying:
        # anyio's sleep: waits under asyncio and trio alike.
        return tenacity.AsyncRetrying(sleep=anyio.sleep, **self._options(replayable))


def _last_outcome(state: tenacity.RetryCallState) -> Any:
    assert state.outcome is not None
    return state.outcome.result()


def _log_retry(state: tenacity.RetryCallState) -> None:
    outcome = state.outcome
    if outcome is None:
        return
    what = (
        type(outcome.exception()).__name__ if outcome.failed else f"HTTP {outcome.result().status}"
    )
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    logger.info(
        "gatekit: the decision server failed (%s); try %d again in %.2f s",
        what,
        state.attempt_number + 1,
        wait,
    )
