"""What ``submit`` checks on the caller's thread: cheap, and enough to report a bad event on
its own frame (the encoder checks the images and annotations it adds, off the hot path)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, List, Mapping, Tuple

import numpy as np

from ..api.ids import new_event_id
from ..api.models import MAX_TEXT_LENGTH, FramedEvent, VisionEvent
from .api import ImageAttachment


def validated_event(event: Any) -> "VisionEvent | FramedEvent":
    """A validated event with its eventId and timestamp fixed now. A ``VisionEvent`` or a
    ``FramedEvent`` is taken as it is (validated when it was built: once, not twice); a dict
    is validated here."""
    if isinstance(event, (VisionEvent, FramedEvent)):
        return event
    if not isinstance(event, Mapping):
        raise TypeError(f"event must be a VisionEvent or a dict, not {type(event).__name__}")
    data = dict(event)
    if not data.get("eventId") and not data.get("event_id"):
        data["eventId"] = new_event_id()
    if data.get("timestamp") is None:
        data["timestamp"] = datetime.now(timezone.utc)
    return VisionEvent.model_validate(data)


def attachments_of(images: Any, predictions: Any) -> Tuple[List[ImageAttachment], int]:
    """The images as a list, each checked (shape, type, label) so a bad one fails on its frame,
    and their size in bytes (arrays or encoded)."""
    if images is None:
        attachments: List[ImageAttachment] = []
    elif isinstance(images, ImageAttachment):
        attachments = [images]
    else:
        attachments = list(images)
    nbytes = 0
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, ImageAttachment):
            raise TypeError(f"images[{index}] must be an ImageAttachment, not {type(attachment).__name__}")
        if attachment.input is None and attachment.output is None:
            raise ValueError(f"images[{index}] needs an input or an output image")
        if attachment.label is not None and (not isinstance(attachment.label, str) or len(attachment.label) > MAX_TEXT_LENGTH):
            raise ValueError(f"images[{index}].label must be a string of at most {MAX_TEXT_LENGTH} characters")
        for role in ("input", "output"):
            data = getattr(attachment, role)
            if data is None:
                continue
            if isinstance(data, (bytes, bytearray, memoryview)):
                nbytes += len(data)
                continue
            if (not isinstance(data, np.ndarray) or data.ndim not in (2, 3) or data.size == 0
                    or (data.ndim == 3 and data.shape[2] not in (1, 3, 4)) or data.dtype.kind not in "uifb"):
                raise ValueError(f"images[{index}].{role} must be a non-empty image array (HxW, HxWx1/3/4) or encoded bytes")
            nbytes += data.nbytes
    if predictions is not None and (not attachments or attachments[0].input is None):
        raise ValueError("predictions need images[0].input: annotations are drawn on the input frame")
    return attachments, nbytes
