"""``POST /v2/events``: the edge Event Store (Event Ingestion Service) endpoint, on the same store.

inference's ``roboflow_core/roboflow_vision_events@v1`` (``write_to_event_store: true``) and the
enterprise ``event_writer`` sink post here. Their body (snake_case at the top, camelCase inside,
images inline as base64)::

    {"inference_timestamp": "2026-...+00:00", "solution": "<use case id>",
     "event_schema": "quality_check", "event_data": {"result": "fail"},
     "images": [{"base64Image": "...", "inputBase64Image": "...", "label": "workflow",
                 "objectDetections": [...], ...}],
     "custom_metadata": {...}, "displayImagePosition": 0}

with ``X-API-Key`` (``EVENT_INGESTION_API_KEY``). The answer is 201 ``{"id": "<event id>"}``;
the clients read ``detail`` of an error, so errors carry ``{"error", "detail"}`` (same text).

The route is in :mod:`.routers.event_store`, the ingestion in
:meth:`.service.Service.ingest_event_store`; this module turns the v2 body into a wire event.
Each event becomes an ordinary stored event: the images are saved like uploads, the event is
validated with :class:`~vision_events_blocks.api.models.VisionEvent` and is visible through
``/vision-events/query``. Choices where no public source settles the behaviour (UNCONFIRMED,
see docs/event-store.md) are the safe ones:

* a key is always required (``X-API-Key``, or ``Authorization: Bearer``), with write scope;
* ``solution`` must name an active use case (a bad one is a 400 naming it); a body without one
  (the enterprise ``event_writer`` sink sends none) goes to the use case named by
  ``VISION_EVENTS_EVENT_STORE_USE_CASE`` on the server, else is a 400 ``solution: required``;
* unknown top-level or image keys are refused, naming the key;
* ``Idempotency-Key: <eventId>`` (sent by our client) makes a retry overwrite instead of
  duplicating; without it the server makes a uuid4 ``id``;
* ``customMetadata`` keys ``ve_device_id``/``ve_stream_id``/``ve_workflow_id``/``ve_comment``
  (how our client carries fields the v2 body has no place for) become the event's fields.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Dict, List, Optional, Tuple

from pydantic import ValidationError

from ..api.media import SUPPORTED_IMAGES, sniff_image
from ..api.models import MAX_ID_LENGTH, MAX_IMAGES_PER_EVENT, VisionEvent
from ..api.validation import error_text
from .errors import EventStoreError
from .store import new_source_id

__all__ = ["DEFAULT_USE_CASE_ENV", "MAX_BODY_BYTES", "EventStoreError", "decode_image", "idempotency_key", "to_wire_event"]

MAX_BODY_BYTES = 48 * 1024 * 1024          # base64 inflates images by a third
TOP_LEVEL_KEYS = ("inference_timestamp", "solution", "event_schema", "event_data", "images",
                  "custom_metadata", "displayImagePosition")
REQUIRED_KEYS = ("inference_timestamp", "solution", "event_schema")
DEFAULT_USE_CASE_ENV = "VISION_EVENTS_EVENT_STORE_USE_CASE"
IMAGE_KEYS = ("base64Image", "inputBase64Image", "label", "objectDetections", "classifications",
              "instanceSegmentations", "keypoints")
IMAGE_SOURCES = (("base64Image", "sourceId"), ("inputBase64Image", "inputSourceId"))
CONTEXT_METADATA = {"ve_device_id": "deviceId", "ve_stream_id": "streamId", "ve_workflow_id": "workflowId",
                    "ve_comment": "comment"}
# wire name -> v2 name, so a validation message names the field the client sent
_V2_NAMES = {"eventType": "event_schema", "useCaseId": "solution", "timestamp": "inference_timestamp",
             "eventData": "event_data", "customMetadata": "custom_metadata", "sourceId": "base64Image",
             "inputSourceId": "inputBase64Image", "deviceId": "custom_metadata.ve_device_id",
             "streamId": "custom_metadata.ve_stream_id", "workflowId": "custom_metadata.ve_workflow_id",
             "comment": "custom_metadata.ve_comment", "eventId": "Idempotency-Key"}
_TEXT_NAMES = {"eventData": "event_data", "customMetadata": "custom_metadata", "eventType": "event_schema",
               "useCaseId": "solution"}
_RENAME_IN_TEXT = re.compile(r"\b(" + "|".join(_TEXT_NAMES) + r")\b")
_DATA_URL = re.compile(r"^data:[\w/+.-]+;base64,", re.IGNORECASE)
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,%d}$" % MAX_ID_LENGTH)


def decode_image(value: Any, where: str, max_bytes: int) -> Tuple[bytes, str]:
    """Strict base64 (an optional ``data:...;base64,`` prefix allowed) that must be an image."""
    if not isinstance(value, str) or not value:
        raise EventStoreError(400, f"{where}: must be a non-empty base64 string")
    text = _DATA_URL.sub("", value.strip(), count=1)
    if len(text) > (max_bytes * 4) // 3 + 4:
        raise EventStoreError(413, f"{where}: image is larger than the {max_bytes // (1024 * 1024)} MB limit")
    try:
        content = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EventStoreError(400, f"{where}: invalid base64") from None
    if not content:
        raise EventStoreError(400, f"{where}: empty image")
    ext = sniff_image(content)
    if ext is None:
        raise EventStoreError(400, f"{where}: not a supported image ({SUPPORTED_IMAGES})")
    return content, ext


def to_wire_event(body: Dict[str, Any], event_id: str, max_image_bytes: int,
                  default_use_case: Optional[str] = None) -> Tuple[VisionEvent, List[Tuple[str, bytes, str]]]:
    """The v2 body as a validated :class:`VisionEvent` plus the decoded images to save."""
    unknown = [k for k in body if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise EventStoreError(400, f"{unknown[0][:100]}: unknown field (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    if body.get("solution") in (None, "") and default_use_case:
        body = {**body, "solution": default_use_case}
    for key in REQUIRED_KEYS:
        if body.get(key) in (None, ""):
            hint = f" (or set {DEFAULT_USE_CASE_ENV} on the server)" if key == "solution" else ""
            raise EventStoreError(400, f"{key}: required{hint}")
    images = body.get("images", [])
    if not isinstance(images, list):
        raise EventStoreError(400, "images: must be a list")
    if len(images) > MAX_IMAGES_PER_EVENT:
        raise EventStoreError(400, f"images: {len(images)} images; at most {MAX_IMAGES_PER_EVENT} per event")
    metadata = body.get("custom_metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise EventStoreError(400, "custom_metadata: must be a flat object")
    metadata = dict(metadata)
    wire: Dict[str, Any] = {
        "eventId": event_id, "eventType": body["event_schema"], "useCaseId": body["solution"],
        "timestamp": body["inference_timestamp"], "eventData": body.get("event_data") or {},
    }
    for meta_key, field in CONTEXT_METADATA.items():
        if meta_key in metadata:
            wire[field] = metadata.pop(meta_key)
    if metadata:
        wire["customMetadata"] = metadata
    if "displayImagePosition" in body:
        wire["displayImagePosition"] = body["displayImagePosition"]
    pending: List[tuple] = []
    wire_images = []
    for index, image in enumerate(images):
        if not isinstance(image, dict):
            raise EventStoreError(400, f"images[{index}]: must be an object")
        extra = [k for k in image if k not in IMAGE_KEYS]
        if extra:
            raise EventStoreError(400, f"images[{index}].{extra[0][:100]}: unknown field (allowed: {', '.join(IMAGE_KEYS)})")
        converted = {k: v for k, v in image.items() if k not in dict(IMAGE_SOURCES)}
        for v2_key, wire_key in IMAGE_SOURCES:
            if v2_key in image:
                content, ext = decode_image(image[v2_key], f"images[{index}].{v2_key}", max_image_bytes)
                converted[wire_key] = new_source_id()
                pending.append((converted[wire_key], content, ext))
        if "sourceId" not in converted and "inputSourceId" not in converted:
            raise EventStoreError(400, f"images[{index}]: needs base64Image or inputBase64Image")
        wire_images.append(converted)
    wire["images"] = wire_images
    try:
        return VisionEvent.model_validate(wire), pending
    except ValidationError as exc:
        raise EventStoreError(400, f"Invalid event: {_v2_text(exc)}") from None


def _v2_text(exc: ValidationError) -> str:
    """The validation problems with the v2 field names (the ones the client sent)."""
    text = error_text(exc, rename=_V2_NAMES, count_rest=False)
    return _RENAME_IN_TEXT.sub(lambda m: _TEXT_NAMES[m.group(0)], text)


def idempotency_key(given: Optional[str]) -> Optional[str]:
    """The ``Idempotency-Key`` header checked (1-256 visible ASCII characters), or ``None``."""
    if given is not None and not _IDEMPOTENCY_KEY.match(given):
        raise EventStoreError(400, f"Idempotency-Key: must be 1 to {MAX_ID_LENGTH} visible ASCII characters")
    return given
