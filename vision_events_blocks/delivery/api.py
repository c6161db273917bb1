"""Public types of the delivery layer: attachments, drop reasons, outcomes, errors.

These names are the contract the blocks, tests and benchmarks are written against.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional, Union

import numpy as np

ImageData = Union[np.ndarray, bytes]  # BGR/gray/BGRA uint8 array (encoded off the hot path) or ready JPEG/PNG bytes
OverflowPolicy = Literal["drop_oldest", "drop_newest", "block"]


@dataclasses.dataclass(frozen=True)
class ImageAttachment:
    """One image slot of an event.

    ``input`` is the frame the annotations refer to (uploaded as ``inputSourceId``);
    ``output`` is the visualisation shown first (uploaded as ``sourceId``). Either may be
    ``None``, not both. Arrays are referenced, not copied: hosts do not mutate frames.
    """

    input: Optional[ImageData] = None
    output: Optional[ImageData] = None
    label: Optional[str] = None


# Drop reasons, as they appear in stats()["dropped"]:
DROP_BUFFER_FULL = "buffer_full"              # drop_oldest / drop_newest evicted it
DROP_BLOCK_TIMEOUT = "block_timeout"          # policy "block" waited too long
DROP_ENCODE_FAILED = "encode_failed"          # the image could not be encoded
DROP_INVALID_EVENT = "invalid_event"          # failed model validation after mapping
DROP_SHUTDOWN = "shutdown_unsent"             # left unsent at close() without an outbox
DROP_OUTBOX_FULL = "outbox_full"              # durable outbox over its disk cap
DROP_OUTBOX_WRITE_FAILED = "outbox_write_failed"  # disk error (e.g. ENOSPC)
DROP_RETRY_EXPIRED = "retry_expired"          # gave up retrying (memory mode max age)
DROP_SUPERSEDED = "superseded"                # the same eventId was submitted again before this one was sent
# Dead-lettered (permanent 4xx) events are counted under stats()["dead_lettered"], with the
# server's message kept in stats()["dead_letters"] (most recent N).

DeliveryStatus = Literal["sent", "dead_lettered", "dropped", "persisted", "pending"]


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    """What became of one event, as answered by ``Sender.wait(event_id, timeout)``.

    ``persisted`` means the event sits in the durable outbox and will be delivered later;
    ``pending`` means it is neither delivered nor safe on disk yet. ``message`` carries the
    server's error for dead letters and the drop reason for drops.
    """

    status: DeliveryStatus
    message: str = ""

    @property
    def ok(self) -> bool:
        """Delivered, or safe on disk."""
        return self.status in ("sent", "persisted")


class OutboxLockedError(RuntimeError):
    """Another process (or another sender in this one) already owns this outbox directory."""
