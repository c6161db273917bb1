"""Exporters whose events carry their image bytes: the edge Event Store and bundle files.

No upload phase: the envelope's encoded images (in memory, or the outbox slot's files in
durable mode) are read when the event is sent, and travel inline — base64 in one
``POST <url>/v2/events`` per event, or as members of one bundle-format-v1 file per event.
The bytes are read at send time, not when the event becomes ready, so a waiting event costs
the byte budget only what it already cost, and images the budget shed meanwhile stay shed.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..api.bundles import BundleImage, BundleTooLargeError, write_bundle
from ..api.event_store import EventStoreClient, EventStoreImage, to_event_store_body
from .envelope import Envelope
from .exporter import GatedExporter, Outcome
from .limits import ConcurrencyGate
from .retry import Verdict

logger = logging.getLogger("vision_events_blocks.delivery")


@dataclasses.dataclass(frozen=True)
class InlineImage:
    """The bytes of one ``images[i]``: ``output`` (shown first) and/or ``input`` (annotated frame)."""

    output: Optional[bytes] = None
    input: Optional[bytes] = None


def inline_parts(env: Envelope, read_image: Optional[Callable[[str], bytes]],
                 missing: Callable[[str], None]) -> Tuple[Dict[str, Any], List[InlineImage]]:
    """(wire event, bytes of each ``images[i]``) for an envelope, images read now.

    Images the event carried itself (``sourceId``s of uploaded images) get no bytes: the
    exporter refuses them, naming the image. An outbox file that is gone is reported through
    ``missing`` and the event goes without that image (as the cloud path does).
    """
    event = dict(env.body or {})
    images: List[Dict[str, Any]] = [dict(i) for i in (event.get("images") or [])]
    data: List[InlineImage] = [InlineImage() for _ in images]
    for spec in env.image_specs:
        got: Dict[str, bytes] = {}
        for index in spec["_slots"].values():
            slot = env.slots[index]
            try:
                if slot.data is not None:
                    got[slot.role] = slot.data
                elif slot.file and read_image is not None:
                    got[slot.role] = read_image(slot.file)
                else:
                    raise OSError(errno.ENOENT, "image not in memory and not in the outbox")
            except OSError as exc:
                missing(f"image {slot.file or slot.role} of {env.event_id} unreadable: {exc}")
        if got:  # an entry without any image cannot carry annotations
            images.append({k: v for k, v in spec.items() if k != "_slots"})
            data.append(InlineImage(output=got.get("output"), input=got.get("input")))
    if images:
        event["images"] = images
        event.setdefault("displayImagePosition", 0)
    else:
        event.pop("images", None)
        event.pop("displayImagePosition", None)
    return event, data


def _refuse_uploaded(event: Dict[str, Any], images: Sequence[InlineImage], where: str) -> None:
    for index, image in enumerate(images):
        if image.output is None and image.input is None:
            raise ValueError(f"images[{index}]: refers to an uploaded image (sourceId); {where} takes image bytes "
                             "only (attach the image to the event instead)")


class EventStoreExporter(GatedExporter):
    """One event per ``POST <url>/v2/events`` (no batch form is known); 201 with an id is success,
    529 back-pressure (retryable, pauses sends; see :mod:`.retry`)."""

    uploads_first = False
    max_batch_events = 1

    def __init__(self, client: EventStoreClient, gate: ConcurrencyGate) -> None:
        super().__init__(gate)
        self.client = client

    def send_event(self, event: Dict[str, Any], images: Sequence[InlineImage]) -> Outcome:
        def post() -> Outcome:
            _refuse_uploaded(event, images, "the Event Store")
            body = to_event_store_body(event, [EventStoreImage(output=i.output, input=i.input) for i in images])
            # eventId as Idempotency-Key: a retry after a lost answer overwrites where honoured
            self.client.post_body(body, event_id=event.get("eventId"))
            return Outcome(created=1, accepted={event["eventId"]})
        return self._call(post)


class BundleExporter(GatedExporter):
    """One bundle-format-v1 file per event in ``directory`` (:func:`~..api.bundles.write_bundle`:
    dot-temp file, fsync, link, folder fsync; 25 MiB cap). Success once the file is durable.

    An invalid or oversized event is permanent (a dead letter with the reason); a disk error
    (full, read-only, permissions) is retryable and pauses writes, since it is the folder's
    trouble, not the event's. A bundle already there for this event (written by an attempt
    whose success a crash kept from the outbox) counts as written: never a second file.
    """

    uploads_first = False
    max_batch_events = 1

    def __init__(self, directory: str, gate: ConcurrencyGate) -> None:
        super().__init__(gate)
        self.directory = Path(directory)
        self.written = 0
        self.already_written = 0
        self.refused: Counter = Counter()
        self.write_errors: Counter = Counter()

    def send_event(self, event: Dict[str, Any], images: Sequence[InlineImage]) -> Outcome:
        def write() -> Outcome:
            _refuse_uploaded(event, images, "a bundle")
            try:
                write_bundle(self.directory, event, [BundleImage(output=i.output, input=i.input) for i in images])
                self.written += 1
            except FileExistsError as exc:
                if not self._is_bundle_of(exc.filename, event["eventId"]):
                    raise  # e.g. a file where the folder should be: a disk problem, retried
                self.already_written += 1
            return Outcome(created=1, accepted={event["eventId"]})
        return self._call(write)

    def _is_bundle_of(self, filename: Optional[str], event_id: str) -> bool:
        """Whether an existing file is this event's bundle in this folder (and not, say, the folder
        itself turned into a file): only then is "already there" a success."""
        if not filename:
            return False
        path = Path(filename)
        return path.parent == self.directory and path.name.endswith(f"_{event_id}.tar.gz") and path.is_file()

    def classify(self, error: BaseException) -> Verdict:  # type: ignore[override]
        if isinstance(error, BundleTooLargeError):
            self.refused["too_large"] += 1
            return Verdict(False, False, None, None, f"bundle refused: {error.problem}")
        if isinstance(error, ValueError):
            self.refused["invalid_event"] += 1
            return Verdict(False, False, None, None, f"bundle refused: {error}")
        if isinstance(error, OSError):
            reason = errno.errorcode.get(error.errno or 0, "os_error")
            self.write_errors[reason] += 1
            return Verdict(True, True, None, None,
                           f"cannot write a bundle in {self.directory}: {error.strerror or error} ({reason})")
        return Verdict(False, False, None, None, f"{type(error).__name__}: {error}")

    def stats(self) -> Dict[str, Any]:
        return {"bundle_dir": str(self.directory), "bundles_written": self.written,
                "bundles_already_written": self.already_written, "bundles_refused": dict(self.refused),
                "bundle_write_errors": dict(self.write_errors)}
