"""When a batch goes out, and what is in it: pure functions over the ready queue.

A batch leaves when it is full (``batch_max_events`` or ``batch_max_bytes``), when its oldest
event has lingered ``batch_linger_s``, or at once while someone flushes or the sender closes.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Deque, List, Tuple

from .envelope import Envelope


@dataclasses.dataclass(frozen=True)
class BatchPolicy:
    max_events: int = 100
    max_bytes: int = 4 * 1024 * 1024
    linger_s: float = 0.5

    def due_in(self, ready: Deque[Envelope], now: float, hurry: bool) -> float:
        """Seconds until the head of ``ready`` should leave (0: now); ``ready`` is not empty."""
        if hurry or len(ready) >= self.max_events:
            return 0.0
        if sum(e.body_size for e in itertools.islice(ready, self.max_events)) >= self.max_bytes:
            return 0.0
        return max(0.0, self.linger_s - (now - ready[0].ready_at))

    def take(self, ready: Deque[Envelope], claim: Callable[[Envelope], bool]) -> Tuple[List[Envelope], int]:
        """Pop one batch off ``ready`` (events ``claim`` refuses are skipped): (batch, bytes)."""
        batch: List[Envelope] = []
        nbytes = 0
        while ready and len(batch) < self.max_events:
            env = ready[0]
            if batch and nbytes + env.body_size > self.max_bytes:
                break
            ready.popleft()
            if claim(env):
                batch.append(env)
                nbytes += env.body_size
        return batch, nbytes
