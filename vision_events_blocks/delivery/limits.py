"""How many requests may be in flight: an adaptive limit, and a gate that enforces it.

The limit follows Netflix concurrency-limits' AIMD: it grows by one while requests succeed,
the pipe is actually used and latency holds near the best seen; it shrinks multiplicatively
on a congestion signal (429, 5xx, a timeout, a refused connection) or when latency climbs
well above the baseline. A link with 50 ms of round trip thus runs many uploads at once,
while a struggling server gets fewer. :class:`AimdLimit` is pure (a sample in, a limit out);
:class:`ConcurrencyGate` is the only part with a lock.
"""
from __future__ import annotations

import threading
from typing import Optional


class AimdLimit:
    """Additive increase, multiplicative decrease, with a latency guard."""

    def __init__(self, initial: int = 4, minimum: int = 1, maximum: int = 32,
                 backoff_ratio: float = 0.75, latency_tolerance: float = 3.0) -> None:
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError("need 1 <= minimum <= initial <= maximum")
        self.limit = initial
        self.minimum, self.maximum = minimum, maximum
        self.backoff_ratio = backoff_ratio
        self.latency_tolerance = latency_tolerance
        self.baseline_s: Optional[float] = None  # best round trip seen, slowly forgotten

    def on_sample(self, rtt_s: float, in_flight: int, congested: bool) -> int:
        """One finished request: its round trip, how many were in flight, whether it met congestion."""
        if self.baseline_s is None or rtt_s < self.baseline_s:
            self.baseline_s = rtt_s
        else:  # drift up slowly, so a link that got slower for good becomes the new normal
            self.baseline_s += (rtt_s - self.baseline_s) * 0.01
        slow = rtt_s > self.latency_tolerance * self.baseline_s + 0.05
        if congested or slow:
            self.limit = max(self.minimum, int(self.limit * self.backoff_ratio))
        elif in_flight * 2 >= self.limit:  # only grow a limit that is actually being used
            self.limit = min(self.maximum, self.limit + 1)
        return self.limit


class ConcurrencyGate:
    """Admits a request while fewer than the adaptive limit are in flight."""

    def __init__(self, limit: AimdLimit) -> None:
        self._limit = limit
        self._cond = threading.Condition()
        self.in_flight = 0
        self.peak = 0

    @property
    def limit(self) -> int:
        return self._limit.limit

    def acquire(self, timeout: Optional[float] = None) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: self.in_flight < self._limit.limit, timeout):
                return False
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return True

    def release(self, rtt_s: float, congested: bool) -> None:
        with self._cond:
            self._limit.on_sample(rtt_s, self.in_flight, congested)
            self.in_flight -= 1
            self._cond.notify_all()
