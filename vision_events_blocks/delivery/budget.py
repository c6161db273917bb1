"""The in-memory side of the sender: one envelope per event, and a byte budget over all of them.

The budget counts what an event really costs while it waits: its raw frames until they are
encoded, then the encoded JPEGs and the JSON body (frames already on disk in the durable
outbox cost nothing). When a new event does not fit, space is freed in this order, least
harmful first:

1. *spill* events already committed to the durable outbox (left on disk, reloaded later: no loss);
2. *shed images* (``drop_oldest``/``drop_newest``): the event is what the user needs, its
   pictures are the expendable part (a 1080p raw frame is 6.2 MB, the event ~1 KB). First the
   raw frames of waiting events, then their encoded JPEGs not yet uploaded (oldest first under
   ``drop_oldest``; only the incoming event's own images under ``drop_newest``). The event
   itself (eventId, timestamp, eventData, metadata) is kept and sent without those images;
3. only when nothing sheddable is left, *drop events*: the oldest waiting ones
   (``drop_oldest``) or the new one (``drop_newest``), counted ``buffer_full``.

``block`` sheds nothing: it waits up to ``block_timeout_s`` for room.

**Back-pressure before shedding.** An event whose source can wait (``Envelope.can_wait``: a
video *file*, an HTTP request, a script driving the Execution Engine) never loses images: its
``submit`` waits for room (up to ``backpressure_timeout_s``, then the order above applies and
the wait is counted). Its images are never shed to make room for others either. Only a live
stream that outruns the machine degrades, and the encoder makes its images smaller first.

Envelopes claimed by a sender thread (a claimed :class:`Phase`) are never touched, so the
encoder can never lose a frame it is encoding: it claims the envelope under this budget's lock
before reading the frames, and shedding only takes unclaimed ones under the same lock.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import List, Tuple

from .envelope import Envelope, Phase


class ByteBudget:
    """Bytes held by waiting events, with the overflow policy applied on admission.

    Its lock is never held during I/O, encoding or callbacks: evicted envelopes are returned
    to the caller, which accounts for them after the lock is released. Image shedding is
    counted here (``images_shed``, ``annotations_shed``, ``events_shed``), under the lock, so
    admission never needs the sender's lock.
    """

    def __init__(self, cap: int, policy: str, block_timeout_s: float, durable: bool = False,
                 backpressure_timeout_s: float = 60.0) -> None:
        self.cap = cap
        self.policy = policy
        self.block_timeout_s = block_timeout_s
        self.backpressure_timeout_s = backpressure_timeout_s
        self.durable = durable  # only then can events be spilled to disk
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._resident: "OrderedDict[int, Envelope]" = OrderedDict()  # seq -> envelope, oldest first
        # Candidates for shedding, oldest first, cleaned lazily: scanning them is amortised O(1)
        # per admission instead of walking every image-less event in the buffer.
        self._raw: "OrderedDict[int, Envelope]" = OrderedDict()
        self._encoded: "OrderedDict[int, Envelope]" = OrderedDict()
        self.used = 0
        self.peak = 0
        self.in_flight = 0
        self.images_shed = 0
        self.annotations_shed = 0
        self.events_shed = 0
        self.backpressure_waits = 0  # submits that waited for room (their source can wait)
        self.backpressure_timeouts = 0  # ... and gave up waiting, then shed like a live stream

    def __len__(self) -> int:
        return len(self._resident)

    @property
    def fill(self) -> float:
        """Share of the budget in use (the encoder degrades live-stream images past a level)."""
        return self.used / self.cap

    def admit(self, env: Envelope, nbytes: int, base_nbytes: int) -> Tuple[bool, List[Envelope], str]:
        """Reserve ``nbytes`` for a new envelope (``base_nbytes`` without its frames):
        (admitted, evicted, reason if refused). See the module docstring for the order."""
        with self._lock:
            env.base_nbytes = base_nbytes
            evicted: List[Envelope] = []
            if self.used + nbytes > self.cap and self.durable:  # safe on disk: leaves memory first
                self._evict(lambda victim: victim.persisted, nbytes, evicted)
            if self.used + nbytes > self.cap:
                waits = self.policy == "block" or env.can_wait
                if waits and nbytes <= self.cap and self._wait_for_room(env, nbytes, evicted):
                    pass
                elif self.policy == "block":
                    return False, evicted, "buffer_full" if nbytes > self.cap else "block_timeout"
                else:
                    nbytes = self._make_room(env, nbytes, evicted)
                    if self.used + nbytes > self.cap:
                        return False, evicted, "buffer_full"
            env.nbytes = nbytes
            self.used += nbytes
            self.peak = max(self.peak, self.used)
            self._resident[env.seq] = env
            if env.attachments and not env.can_wait:
                self._raw[env.seq] = env
            return True, evicted, ""

    def _wait_for_room(self, env: Envelope, nbytes: int, evicted: List[Envelope]) -> bool:
        """Back-pressure (lock held): wait until ``nbytes`` fit; False on timeout."""
        timeout = self.block_timeout_s if self.policy == "block" else self.backpressure_timeout_s
        deadline = time.monotonic() + timeout
        if env.can_wait:
            self.backpressure_waits += 1
        while self.used + nbytes > self.cap:
            left = deadline - time.monotonic()
            if left <= 0:
                if env.can_wait:
                    self.backpressure_timeouts += 1
                return False
            self._space.wait(min(left, 0.25))
            if self.durable:
                self._evict(lambda victim: victim.persisted, nbytes, evicted)
        return True

    def _make_room(self, env: Envelope, nbytes: int, evicted: List[Envelope]) -> int:
        """Spill, shed, then drop (lock held); returns what the new envelope will cost."""
        nbytes = self._shed_own(env, nbytes, 0)  # a newcomer that can never fit as it is
        if self.policy == "drop_oldest":
            self._shed(self._raw, Envelope.shed_raw_images, nbytes)
            self._shed(self._encoded, Envelope.shed_encoded_images, nbytes)
        nbytes = self._shed_own(env, nbytes, self.used + nbytes - self.cap)
        if self.policy == "drop_oldest":
            self._evict(lambda victim: not victim.can_wait, nbytes, evicted)
        return nbytes

    def _shed_own(self, env: Envelope, nbytes: int, missing: int) -> int:
        """The newcomer's own frames go when ``missing`` > 0 bytes (or it can never fit)."""
        if env.attachments and (missing > 0 or nbytes > self.cap):
            self._count_shed(*env.shed_raw_images())
            return env.base_nbytes
        return nbytes

    def _evict(self, predicate, nbytes: int, evicted: List[Envelope]) -> None:
        """Whole envelopes out, oldest first: spilled when persisted, dropped otherwise."""
        for victim in list(self._resident.values()):
            if self.used + nbytes <= self.cap:
                return
            if not victim.phase.claimed and predicate(victim):
                victim.phase = Phase.SPILLED if victim.persisted else Phase.DROPPED
                self._forget(victim)
                evicted.append(victim)

    def _shed(self, candidates: "OrderedDict[int, Envelope]", shed, nbytes: int) -> None:
        """Shed the images of unclaimed candidates, oldest first, until ``nbytes`` fit.

        Only the candidates visited are touched (amortised O(1) per admission); claimed ones
        (an encoder or uploader holds them) are skipped and stay candidates.
        """
        done: List[int] = []
        for seq, victim in candidates.items():
            if self.used + nbytes <= self.cap:
                break
            if victim.phase.claimed:
                continue
            done.append(seq)
            if not victim.phase.live or seq not in self._resident:
                continue
            images, annotations = shed(victim)
            if images:
                self._count_shed(images, annotations)
                cost = victim.base_nbytes if not victim.prepared else victim.body_size + sum(
                    slot.size for slot in victim.slots if slot.data is not None)
                self.used -= victim.nbytes - cost
                victim.nbytes = cost
        for seq in done:
            del candidates[seq]
        if done:
            self._space.notify_all()

    def _count_shed(self, images: int, annotations: int) -> None:
        if images:
            self.images_shed += images
            self.annotations_shed += annotations
            self.events_shed += 1

    def encoded(self, env: Envelope, nbytes: int) -> None:
        """The encoder is done with it: now it costs ``nbytes`` (JPEGs + JSON)."""
        with self._lock:
            self._raw.pop(env.seq, None)
            if env.seq in self._resident and env.has_encoded_images and not env.can_wait:
                self._encoded[env.seq] = env
        self.resize(env, nbytes)

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

    def claim(self, env: Envelope, phase: Phase) -> bool:
        """Move it to the claimed ``phase`` (not evictable); False if it is claimed by another
        thread, or was decided, dropped or spilled meanwhile."""
        with self._lock:
            if env.phase.claimed or not env.phase.live:
                return False
            env.phase = phase
            self.in_flight += 1
            return True

    def unclaim(self, env: Envelope, phase: Phase) -> None:
        """Hand it back in the waiting ``phase`` (a final phase set meanwhile stays)."""
        with self._lock:
            if env.phase.claimed:
                env.phase = phase
                self.in_flight -= 1
                self._space.notify_all()

    def _forget(self, env: Envelope) -> None:
        self._raw.pop(env.seq, None)
        self._encoded.pop(env.seq, None)
        if self._resident.pop(env.seq, None) is not None:
            self.used -= env.nbytes
            env.nbytes = 0
            self._space.notify_all()
