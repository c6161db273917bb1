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

``block`` sheds nothing: it waits up to ``block_timeout_s`` for room. Envelopes claimed by a
sender thread (being encoded, persisted, uploaded or sent) are never touched, so the encoder
can never lose a frame it is encoding: it claims the envelope under this budget's lock before
reading the frames, and shedding only takes unclaimed ones under the same lock.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

ACTIVE, DONE, DROPPED, SPILLED = "active", "done", "dropped", "spilled"
SHED_MARK = "ve_images_shed"  # customMetadata key set on an event that lost images (queryable)
_MAX_METADATA_KEYS = 100  # spec §9; the mark is skipped rather than make the event invalid


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
    images_shed: int = 0  # images given up to keep the event within the memory budget
    base_nbytes: int = 0  # what it costs without any image (set on admission)

    @property
    def needs_upload(self) -> bool:
        return any(slot.source_id is None for slot in self.slots)

    @property
    def has_raw_images(self) -> bool:
        return bool(self.attachments) and not self.prepared

    @property
    def has_encoded_images(self) -> bool:
        """JPEGs held in memory and not uploaded yet (files in the outbox cost no memory)."""
        return any(slot.data is not None and slot.source_id is None for slot in self.slots)

    def shed_raw_images(self) -> Tuple[int, int]:
        """Forget the frames not encoded yet (and the predictions that would be drawn on them):
        (images, annotations) given up."""
        images = sum((a.input is not None) + (a.output is not None) for a in self.attachments or ())
        annotations = _prediction_count(self.predictions)
        self.attachments = self.predictions = None
        self._mark_shed(images)
        return images, annotations

    def shed_encoded_images(self) -> Tuple[int, int]:
        """Forget every image entry with a JPEG still in memory (with its annotations: an image
        entry needs a sourceId); entries already uploaded stay. (images, annotations) given up."""
        if not self.has_encoded_images:
            return 0, 0
        kept_specs: List[Dict[str, Any]] = []
        kept_slots: List[ImageSlot] = []
        images = annotations = 0
        for spec in self.image_specs:
            slots = {key: self.slots[index] for key, index in spec["_slots"].items()}
            if any(slot.data is not None and slot.source_id is None for slot in slots.values()):
                images += len(slots)
                annotations += sum(len(v) for v in spec.values() if isinstance(v, list))
                continue
            kept = dict(spec, _slots={})
            for key, slot in slots.items():
                kept["_slots"][key] = len(kept_slots)
                kept_slots.append(slot)
            kept_specs.append(kept)
        self.image_specs, self.slots = kept_specs, kept_slots
        self._mark_shed(images)
        return images, annotations

    def _mark_shed(self, images: int) -> None:
        """Say so on the event itself (``customMetadata.ve_images_shed``), so whoever looks at
        an event without its picture on the server knows why, and can filter for them."""
        if not images:
            return
        self.images_shed += images
        metadata = dict(self.body.get("customMetadata") or {})
        if SHED_MARK in metadata or len(metadata) < _MAX_METADATA_KEYS:
            metadata[SHED_MARK] = self.images_shed
            self.body["customMetadata"] = metadata

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


def _prediction_count(predictions: Any) -> int:
    """Annotations a predictions object would have become (detections; 1 for anything else)."""
    if predictions is None:
        return 0
    return len(predictions) if hasattr(predictions, "xyxy") else 1


class ByteBudget:
    """Bytes held by waiting events, with the overflow policy applied on admission.

    Its lock is never held during I/O, encoding or callbacks: evicted envelopes are returned
    to the caller, which accounts for them after the lock is released. Image shedding is
    counted here (``images_shed``, ``annotations_shed``, ``events_shed``), under the lock, so
    admission never needs the sender's lock.
    """

    def __init__(self, cap: int, policy: str, block_timeout_s: float, durable: bool = False) -> None:
        self.cap = cap
        self.policy = policy
        self.block_timeout_s = block_timeout_s
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

    def __len__(self) -> int:
        return len(self._resident)

    def admit(self, env: Envelope, nbytes: int, base_nbytes: int) -> Tuple[bool, List[Envelope], str]:
        """Reserve ``nbytes`` for a new envelope (``base_nbytes`` without its frames):
        (admitted, evicted, reason if refused). See the module docstring for the order."""
        with self._lock:
            env.base_nbytes = base_nbytes
            evicted: List[Envelope] = []
            if self.used + nbytes > self.cap:
                if self.policy == "block":
                    if nbytes > self.cap:
                        return False, [], "buffer_full"
                    deadline = time.monotonic() + self.block_timeout_s
                    while self.used + nbytes > self.cap:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False, [], "block_timeout"
                        self._space.wait(left)
                else:
                    nbytes = self._make_room(env, nbytes, evicted)
                    if self.used + nbytes > self.cap:
                        return False, evicted, "buffer_full"
            env.nbytes = nbytes
            self.used += nbytes
            self.peak = max(self.peak, self.used)
            self._resident[env.seq] = env
            if env.attachments:
                self._raw[env.seq] = env
            return True, evicted, ""

    def _make_room(self, env: Envelope, nbytes: int, evicted: List[Envelope]) -> int:
        """Spill, shed, then drop (lock held); returns what the new envelope will cost."""
        nbytes = self._shed_own(env, nbytes, 0)  # a newcomer that can never fit as it is
        if self.durable:  # events safe on disk leave memory first: no loss
            self._evict(lambda victim: victim.persisted, nbytes, evicted)
        if self.policy == "drop_oldest":
            self._shed(self._raw, Envelope.shed_raw_images, nbytes)
            self._shed(self._encoded, Envelope.shed_encoded_images, nbytes)
        nbytes = self._shed_own(env, nbytes, self.used + nbytes - self.cap)
        if self.policy == "drop_oldest":
            self._evict(lambda victim: True, nbytes, evicted)
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
            if not victim.claimed and predicate(victim):
                victim.state = SPILLED if victim.persisted else DROPPED
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
            if victim.claimed:
                continue
            done.append(seq)
            if victim.state != ACTIVE or seq not in self._resident:
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
            if env.seq in self._resident and env.has_encoded_images:
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
        self._raw.pop(env.seq, None)
        self._encoded.pop(env.seq, None)
        if self._resident.pop(env.seq, None) is not None:
            self.used -= env.nbytes
            env.nbytes = 0
            self._space.notify_all()
