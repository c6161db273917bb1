"""The in-memory side of the sender: one envelope per event, and a byte budget over all of them.

The budget counts what an event really costs while it waits: its raw frames until they are
encoded, then the encoded JPEGs and the JSON body (frames already on disk in the durable
outbox cost nothing). When a new event does not fit, the overflow policy decides who goes:
the oldest waiting events (``drop_oldest``), the new one (``drop_newest``), or nobody
until ``block_timeout_s`` passes (``block``). Events being sent right now are never evicted,
and events already committed to the durable outbox are *spilled* (left on disk, reloaded
later) before anything is dropped.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

ACTIVE, DONE, DROPPED, SPILLED = "active", "done", "dropped", "spilled"


@dataclasses.dataclass(eq=False)
class ImageSlot:
    """One image to upload: encoded bytes in memory and/or a file in the outbox."""

    role: str  # "input" or "output"
    content_type: str
    data: Optional[bytes] = None
    file: Optional[str] = None  # outbox file name, once persisted
    source_id: Optional[str] = None  # set once uploaded; reused by every retry
    size: int = 0

    def to_row(self) -> Dict[str, Any]:
        return {"role": self.role, "contentType": self.content_type, "file": self.file,
                "sourceId": self.source_id, "size": self.size}

    @classmethod
    def from_row(cls, row: Dict[str, Any]) -> "ImageSlot":
        return cls(role=row["role"], content_type=row["contentType"], file=row.get("file"),
                   source_id=row.get("sourceId"), size=row.get("size", 0))


@dataclasses.dataclass(eq=False)
class Envelope:
    """Everything the sender knows about one event between ``submit`` and its outcome.

    ``body`` is the validated wire dict without the sender's images; ``image_specs`` are the
    sender's images (labels + annotations) whose ``_slots`` point into ``slots`` until the
    uploads return their ``sourceId``s.
    """

    event_id: str
    seq: int
    body: Dict[str, Any]
    created_at: float = dataclasses.field(default_factory=time.time)
    attachments: Optional[list] = None  # raw ImageAttachments, until encoded
    predictions: Any = None  # raw predictions, until mapped
    image_specs: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    slots: List[ImageSlot] = dataclasses.field(default_factory=list)
    state: str = ACTIVE
    prepared: bool = False  # encoded and mapped
    persisted: bool = False  # its row is committed in the outbox
    claimed: bool = False  # a sender thread works on it right now: not evictable
    attempts: int = 0
    nbytes: int = 0  # what the budget currently counts for it
    ready_at: float = 0.0  # monotonic time it became ready to batch
    body_size: int = 0  # JSON size, for the batch bytes cap and the budget
    wire_json: Optional[bytes] = None  # the event as sent, serialised once when it is ready

    @property
    def needs_upload(self) -> bool:
        return any(slot.source_id is None for slot in self.slots)

    def wire_event(self, placeholder: Optional[str] = None) -> Dict[str, Any]:
        """The event as sent: the body plus the sender's images with their ``sourceId``s."""
        event = dict(self.body)
        if self.image_specs:
            images = list(event.get("images") or [])
            for spec in self.image_specs:
                image = {k: v for k, v in spec.items() if k != "_slots"}
                for key, index in spec["_slots"].items():
                    image[key] = self.slots[index].source_id or placeholder
                images.append(image)
            event["images"] = images
            event.setdefault("displayImagePosition", 0)
        return event


class ByteBudget:
    """Bytes held by waiting events, with the overflow policy applied on admission.

    Its lock is never held during I/O, encoding or callbacks: evicted envelopes are returned
    to the caller, which accounts for them after the lock is released.
    """

    def __init__(self, cap: int, policy: str, block_timeout_s: float) -> None:
        self.cap = cap
        self.policy = policy
        self.block_timeout_s = block_timeout_s
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._resident: "OrderedDict[int, Envelope]" = OrderedDict()  # seq -> envelope, oldest first
        self.used = 0
        self.peak = 0
        self.in_flight = 0

    def __len__(self) -> int:
        return len(self._resident)

    def admit(self, env: Envelope, nbytes: int) -> Tuple[bool, List[Envelope], str]:
        """Reserve ``nbytes`` for a new envelope: (admitted, evicted, reason if refused)."""
        with self._lock:
            if nbytes > self.cap:
                return False, [], "buffer_full"
            evicted: List[Envelope] = []
            if self.used + nbytes > self.cap:
                if self.policy == "drop_newest":
                    return False, [], "buffer_full"
                if self.policy == "block":
                    deadline = time.monotonic() + self.block_timeout_s
                    while self.used + nbytes > self.cap:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False, [], "block_timeout"
                        self._space.wait(left)
                else:
                    # Spill events that are safe on disk first (no loss), then drop the oldest.
                    for persisted_only in (True, False):
                        for victim in list(self._resident.values()):
                            if self.used + nbytes <= self.cap:
                                break
                            if not victim.claimed and (victim.persisted or not persisted_only):
                                victim.state = SPILLED if victim.persisted else DROPPED
                                self._forget(victim)
                                evicted.append(victim)
                    if self.used + nbytes > self.cap:  # everything left is in flight
                        return False, evicted, "buffer_full"
            env.nbytes = nbytes
            self.used += nbytes
            self.peak = max(self.peak, self.used)
            self._resident[env.seq] = env
            return True, evicted, ""

    def adopt(self, env: Envelope, nbytes: int) -> bool:
        """Take back an envelope replayed from the outbox, only if it fits without evicting."""
        with self._lock:
            if self.used + nbytes > self.cap:
                return False
            env.nbytes = nbytes
            self.used += nbytes
            self._resident[env.seq] = env
            return True

    def resize(self, env: Envelope, nbytes: int) -> None:
        with self._lock:
            if env.seq not in self._resident:
                return
            self.used += nbytes - env.nbytes
            env.nbytes = nbytes
            self._space.notify_all()

    def release(self, env: Envelope) -> None:
        with self._lock:
            self._forget(env)

    def claim(self, env: Envelope) -> bool:
        """Mark it in flight (not evictable); False if it was dropped or spilled meanwhile."""
        with self._lock:
            if env.state != ACTIVE or env.claimed:
                return False
            env.claimed = True
            self.in_flight += 1
            return True

    def unclaim(self, env: Envelope) -> None:
        with self._lock:
            if env.claimed:
                env.claimed = False
                self.in_flight -= 1

    def evict_if(self, predicate) -> List[Envelope]:
        """Evict unclaimed envelopes matching ``predicate`` (durable spill of persisted events)."""
        with self._lock:
            victims = [e for e in self._resident.values() if not e.claimed and predicate(e)]
            for victim in victims:
                victim.state = SPILLED
                self._forget(victim)
            return victims

    def _forget(self, env: Envelope) -> None:
        if self._resident.pop(env.seq, None) is not None:
            self.used -= env.nbytes
            env.nbytes = 0
            self._space.notify_all()
