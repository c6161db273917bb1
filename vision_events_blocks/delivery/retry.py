"""When to retry, and how long to wait.

The rules (shared/notes/delivery-design.md): 408, 429, 5xx except 501 and network errors are
retried with exponential backoff and full jitter, never sooner than ``Retry-After`` says.
Everything else is permanent. 429, network errors and a 5xx carrying ``Retry-After`` (an
outage window) also mean "the whole server is unwell": the sender pauses all sends for a
while (global backoff) instead of hammering it; other 5xx only retry the failed request.
**529** (an edge Event Store applying back-pressure while its disk queue drains) is
retryable and always pauses everyone, after ``Retry-After`` or the backoff: the event was
simply not taken yet, so it is never lost to it (``Verdict.backpressure``, counted).
"""
from __future__ import annotations

import dataclasses
import random
from typing import Optional

from ..api.errors import APIStatusError, RateLimitError, TransportError, VisionEventsError

BACKPRESSURE_STATUS = 529  # the Event Ingestion Service: "at capacity, applying backpressure"

# A 429 without Retry-After waits this long at least (Sentry's default is 60 s; we start
# lower and let the exponential backoff grow it).
DEFAULT_RATE_LIMIT_WAIT_S = 5.0


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt ``n`` waits U(initial, min(cap, initial*2**n))."""

    initial_s: float = 1.0
    cap_s: float = 60.0

    def delay(self, attempt: int, retry_after: Optional[float] = None, rng: random.Random = random) -> float:
        ceiling = min(self.cap_s, self.initial_s * (2 ** min(attempt, 32)))
        delay = rng.uniform(min(self.initial_s, ceiling), ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)  # never sooner than the server asked
        return delay


@dataclasses.dataclass(frozen=True)
class Verdict:
    """How one failure is handled: ``retryable``, ``global_pause`` (429/529/outage), the server's
    message, and ``backpressure`` (a 529: counted apart, never a loss)."""

    retryable: bool
    global_pause: bool
    retry_after: Optional[float]
    status_code: Optional[int]
    message: str
    backpressure: bool = False


def classify(error: BaseException) -> Verdict:
    """Turn any exception from the client into a :class:`Verdict`.

    Unknown exceptions (a bug, a local validation error) are permanent: retrying the same
    bytes cannot heal them, and retrying forever would hide them.
    """
    if isinstance(error, VisionEventsError):
        backpressure = error.status_code == BACKPRESSURE_STATUS
        # 429, 529, an unreachable server, or a 5xx that says when to come back (an outage window)
        global_pause = backpressure or isinstance(error, (RateLimitError, TransportError)) or (
            bool(error.retryable) and error.retry_after is not None)
        message = error.error_message if isinstance(error, APIStatusError) else error.message
        return Verdict(bool(error.retryable) or backpressure, global_pause, error.retry_after, error.status_code,
                       message, backpressure)
    return Verdict(False, False, None, None, f"{type(error).__name__}: {error}")


def rate_limit_wait(verdict: Verdict) -> Optional[float]:
    """Retry-After when given; the default wait for a bare 429; nothing otherwise."""
    if verdict.retry_after is not None:
        return verdict.retry_after
    if verdict.status_code == 429:
        return DEFAULT_RATE_LIMIT_WAIT_S
    return None


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with events whose request failed.

    ``action`` is ``retry`` (each event on its own timer, ``delay_s`` from now), ``bisect``
    (a batch refused as a whole: split it until the bad event stands alone) or
    ``dead_letter`` (permanent). ``pause_s`` > 0 pauses every send (the server as a whole is
    unwell, rate-limits, or refuses the key).
    """

    action: str
    delay_s: float = 0.0
    pause_s: float = 0.0


REFUSED_KEY = (401, 403)


def decide(verdict: Verdict, *, batch_size: int, attempts: int, consecutive_failures: int,
           durable: bool, backoff: Backoff, rng: random.Random = random) -> Decision:
    """The retry policy as one pure function (no threads, no clock).

    * a permanent refusal of a batch of several events: ``bisect`` (one bad event must not
      take the others down), except 401/403, which are about the key, not the events;
    * 401/403 with a durable outbox: keep the events on disk and pause (a restart with the
      right key delivers them); without one they are dead letters (memory cannot wait forever);
    * other permanent errors: ``dead_letter``;
    * retryable: ``retry`` after full-jitter backoff, never sooner than ``Retry-After``; 429,
      529 (back-pressure), network errors and an outage window also pause everyone.
    """
    refused_key = verdict.status_code in REFUSED_KEY
    if not verdict.retryable and not (refused_key and durable):
        if batch_size > 1 and not refused_key:
            return Decision("bisect")
        return Decision("dead_letter")
    pause = 0.0
    if verdict.global_pause or refused_key:
        wait = rate_limit_wait(verdict)
        pause = wait if wait is not None else backoff.delay(max(consecutive_failures - 1, 0), rng=rng)
    return Decision("retry", delay_s=backoff.delay(attempts, verdict.retry_after, rng=rng), pause_s=pause)
