"""One event on its way through the sender: the envelope, its images, and the one field that
says where it is (:class:`Phase`).

A phase is either *waiting* (any stage may pick it up, the byte budget may shed or spill it)
or *claimed* (one sender thread works on it right now: nothing else touches it). Claiming is
a phase change made under the budget's lock, so "who owns this envelope" has one answer.
"""
from __future__ import annotations

import dataclasses
import enum
import time
from typing import Any, Dict, List, Optional, Tuple

SHED_MARK = "ve_images_shed"  # customMetadata key set on an event that lost images (queryable)
DEGRADED_MARK = "ve_images_degraded"  # customMetadata key: images sent smaller than configured
_MAX_METADATA_KEYS = 100  # spec §9; a mark is skipped rather than make the event invalid


class Phase(enum.Enum):
    """Where an envelope is. Waiting phases first, then claimed ones, then final ones."""

    QUEUED = "queued"          # raw frames, waiting for an encoder
    READY_TO_UPLOAD = "upload"  # encoded, images not uploaded yet
    READY = "ready"            # serialised, waiting for a batch
    WAITING = "waiting"        # on a retry timer
    ENCODING = "encoding"      # claimed by an encoder
    PERSISTING = "persisting"  # claimed by the outbox writer
    UPLOADING = "uploading"    # claimed by an exporter thread (images)
    SENDING = "sending"        # claimed by an exporter thread (in a batch)
    SPILLED = "spilled"        # only on disk (the outbox); reloaded by replay
    DONE = "done"              # sent or dead-lettered
    DROPPED = "dropped"        # given up, counted by reason

    @property
    def claimed(self) -> bool:
        return self in _CLAIMED

    @property
    def live(self) -> bool:
        """Still in memory and undecided (neither spilled nor final)."""
        return self not in (Phase.SPILLED, Phase.DONE, Phase.DROPPED)


_CLAIMED = frozenset({Phase.ENCODING, Phase.PERSISTING, Phase.UPLOADING, Phase.SENDING})


@dataclasses.dataclass(eq=False)
class ImageSlot:
    """One image to upload: encoded bytes in memory and/or a file in the outbox."""

    role: str  # "input" or "output"
    content_type: str
    data: Optional[bytes] = None
    file: Optional[str] = None  # outbox file name, once persisted
    source_id: Optional[str] = None  # set once uploaded; reused by every retry
    size: int = 0

    @property
    def suffix(self) -> str:
        return ".png" if self.content_type == "image/png" else ".jpg"

    def to_row(self) -> Dict[str, Any]:
        return {"role": self.role, "contentType": self.content_type, "file": self.file,
                "sourceId": self.source_id, "size": self.size}

    @classmethod
    def from_row(cls, row: Dict[str, Any]) -> "ImageSlot":
        return cls(role=row["role"], content_type=row["contentType"], file=row.get("file"),
                   source_id=row.get("sourceId"), size=row.get("size", 0))


@dataclasses.dataclass(eq=False, slots=True)  # slots: one is built per frame, on the frame thread
class Envelope:
    """Everything the sender knows about one event between ``submit`` and its outcome.

    ``event`` is the validated event as submitted (a ``VisionEvent``, dumped to ``body`` by
    the encoder, off the hot path); ``image_specs`` are the sender's images (labels +
    annotations) whose ``_slots`` point into ``slots`` until the uploads return their
    ``sourceId``s. ``persisted`` is a fact about the disk (its row is committed), not a phase.
    """

    event_id: str
    seq: int
    body: Optional[Dict[str, Any]] = None
    event: Any = None  # the VisionEvent, until the encoder dumps it to ``body``
    created_at: float = dataclasses.field(default_factory=time.time)
    attachments: Optional[list] = None  # raw ImageAttachments, until encoded
    predictions: Any = None  # raw predictions, until mapped
    image_specs: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    slots: List[ImageSlot] = dataclasses.field(default_factory=list)
    phase: Phase = Phase.QUEUED
    persisted: bool = False
    can_wait: bool = False  # the source can wait (file, request, script): never shed its images
    attempts: int = 0
    nbytes: int = 0  # what the budget currently counts for it
    ready_at: float = 0.0  # monotonic time it became ready to batch
    body_size: int = 0  # JSON size, for the batch bytes cap and the budget
    wire_json: Optional[bytes] = None  # the event as sent, serialised once when it is ready
    images_shed: int = 0  # images given up to keep the event within the memory budget
    images_degraded: int = 0  # images encoded smaller than configured (a live stream behind)
    base_nbytes: int = 0  # what it costs without any image (set on admission)

    @property
    def prepared(self) -> bool:
        return self.phase not in (Phase.QUEUED, Phase.ENCODING)

    @property
    def needs_upload(self) -> bool:
        return any(slot.source_id is None for slot in self.slots)

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
        self.images_shed += images
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
        self.images_shed += images
        self.mark_body()
        return images, annotations

    def mark_body(self) -> None:
        """Say on the event itself (``customMetadata.ve_images_shed`` / ``ve_images_degraded``)
        that images were given up or made smaller, so whoever looks at it knows why and can
        filter for them. Runs once the body exists (the encoder dumps it)."""
        if self.body is None:
            return
        marks = {SHED_MARK: self.images_shed, DEGRADED_MARK: self.images_degraded}
        metadata = dict(self.body.get("customMetadata") or {})
        for key, count in marks.items():
            if count and (key in metadata or len(metadata) < _MAX_METADATA_KEYS):
                metadata[key] = count
        if metadata:
            self.body["customMetadata"] = metadata

    def wire_event(self, placeholder: Optional[str] = None) -> Dict[str, Any]:
        """The event as sent: the body plus the sender's images with their ``sourceId``s."""
        event = dict(self.body or {})
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
