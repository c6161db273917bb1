"""The sender's book of events: which are undecided, what became of the others, the counters.

One lock (``cond``) guards it; ``finish`` records an event's outcome exactly once, whichever
thread gets there first, and wakes whoever waits for it (``wait``, ``flush``).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from typing import Any, Deque, Dict, Optional

from .api import DeliveryResult
from .envelope import Envelope, Phase

logger = logging.getLogger("vision_events_blocks.delivery")

OUTCOMES_KEPT = 10_000  # recent outcomes remembered for wait()


class Ledger:
    def __init__(self, dead_letters_kept: int) -> None:
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.live: "OrderedDict[str, Envelope]" = OrderedDict()  # every undecided event, oldest first
        self.outcomes: "OrderedDict[str, DeliveryResult]" = OrderedDict()
        self.waiters: Dict[str, threading.Event] = {}
        self.counts: Counter = Counter()
        self.dropped: Counter = Counter()
        self.dead_letters: Deque[Dict[str, Any]] = deque(maxlen=dead_letters_kept)
        self.refusals: Dict[str, str] = {}  # use case -> the server's last refusal (until one is sent)
        self.last_seq = 0

    def add(self, env: Envelope) -> None:
        """Register a new event, counted as submitted (an undecided one with its eventId was
        finished before)."""
        with self.lock:
            self.counts["submitted"] += 1
            self.live.pop(env.event_id, None)
            self.live[env.event_id] = env
            self.last_seq = max(self.last_seq, env.seq)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def finish(self, env: Envelope, status: str, message: str, reason: Optional[str]) -> bool:
        """Record the final outcome (False when already decided or replaced)."""
        with self.cond:
            if self.live.get(env.event_id) is not env:
                return False
            del self.live[env.event_id]
            env.phase = Phase.DONE if status in ("sent", "dead_lettered") else Phase.DROPPED
            if status == "dropped":
                self.dropped[reason or "unknown"] += 1
            else:
                self.counts[status] += 1
                use_case = (env.body or {}).get("useCaseId")
                if status == "dead_lettered" and use_case:
                    first = use_case not in self.refusals
                    self.refusals[use_case] = message
                    if first:  # the first refusal of a use case, loudly: a typo'd use case must not go unseen
                        logger.warning("vision-events: the server refused an event for use case %r: %s "
                                       "(every refusal is counted in stats()['dead_lettered'])", use_case, message)
                elif use_case:
                    self.refusals.pop(use_case, None)
            self.outcomes[env.event_id] = DeliveryResult(status, message)  # type: ignore[arg-type]
            if len(self.outcomes) > OUTCOMES_KEPT:
                self.outcomes.popitem(last=False)
            waiter = self.waiters.pop(env.event_id, None)
            self.cond.notify_all()
        if waiter is not None:
            waiter.set()
        return True

    def wait(self, event_id: str, timeout: Optional[float]) -> DeliveryResult:
        """Block until the event is decided or ``timeout`` passes (see ``Sender.wait``)."""
        with self.lock:
            outcome = self.outcomes.get(event_id)
            if outcome is not None:
                return outcome
            if event_id not in self.live:
                return DeliveryResult("pending", f"unknown event id {event_id!r} (outcome forgotten or never submitted)")
            waiter = self.waiters.setdefault(event_id, threading.Event())
        waiter.wait(timeout)
        with self.lock:
            outcome = self.outcomes.get(event_id)
            if outcome is not None:
                return outcome
            env = self.live.get(event_id)
            if env is not None and env.persisted:
                return DeliveryResult("persisted", "stored in the durable outbox; delivery continues")
            return DeliveryResult("pending", "not delivered yet")

    def dead_letter(self, event_id: str, status: Optional[int], message: str) -> None:
        with self.lock:
            self.dead_letters.append({"eventId": event_id, "status": status, "message": message, "at": time.time()})

    # ---------------------------------------------------------------- flush conditions (lock held)
    def all_decided(self, watermark: int) -> bool:
        oldest = next(iter(self.live.values()), None)  # live is in submission order
        return oldest is None or oldest.seq > watermark

    def all_persisted(self, watermark: int) -> bool:
        return all(env.persisted for env in self.live.values() if env.seq <= watermark)

    def oldest_created_at(self) -> Optional[float]:
        oldest = next(iter(self.live.values()), None)
        return oldest.created_at if oldest else None
