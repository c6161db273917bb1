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
import json
import os
import re
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ..api.models import MAX_ID_LENGTH, MAX_IMAGES_PER_EVENT, VisionEvent
from .auth import WRITE_SCOPES, AuthError, KeyRing
from .store import Store, event_row, image_ids, new_source_id

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


class EventStoreError(Exception):
    """A refusal: HTTP status and a message that names the field."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def error_response(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "detail": message}, status_code=status_code)


def _where(loc: Tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w -]*", str(part)) and not str(part)[0].isupper():
            name = _V2_NAMES.get(str(part), str(part))
            text += f".{name}" if text else name
    return text


def describe(exc: ValidationError, limit: int = 3) -> str:
    """``field: problem`` for the first few errors, with the v2 field names."""
    problems = []
    for err in exc.errors()[:limit]:
        message = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        where = _where(err["loc"])
        problems.append(f"{where}: {message}" if where else message)
    return _RENAME_IN_TEXT.sub(lambda m: _TEXT_NAMES[m.group(0)], "; ".join(problems))


def decode_image(value: Any, where: str, max_bytes: int, sniff: Callable[[bytes], Optional[tuple]]) -> Tuple[bytes, tuple]:
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
    kind = sniff(content[:32])
    if kind is None:
        raise EventStoreError(400, f"{where}: not a supported image (JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC, AVIF)")
    return content, kind


def to_wire_event(body: Dict[str, Any], event_id: str, max_image_bytes: int,
                  sniff: Callable[[bytes], Optional[tuple]],
                  default_use_case: Optional[str] = None) -> Tuple[VisionEvent, List[tuple]]:
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
                content, kind = decode_image(image[v2_key], f"images[{index}].{v2_key}", max_image_bytes, sniff)
                converted[wire_key] = new_source_id()
                pending.append((converted[wire_key], content, kind))
        if "sourceId" not in converted and "inputSourceId" not in converted:
            raise EventStoreError(400, f"images[{index}]: needs base64Image or inputBase64Image")
        wire_images.append(converted)
    wire["images"] = wire_images
    try:
        return VisionEvent.model_validate(wire), pending
    except ValidationError as exc:
        raise EventStoreError(400, f"Invalid event: {describe(exc)}") from None


def build_router(store: Store, keys: KeyRing, *, max_image_bytes: int,
                 sniff: Callable[[bytes], Optional[tuple]]) -> APIRouter:
    """The ``/v2/events`` route on the server's store and keys (mounted by :func:`..app.create_app`)."""
    router = APIRouter()
    default_use_case = os.environ.get(DEFAULT_USE_CASE_ENV) or None

    def authorize(request: Request) -> None:
        key = request.headers.get("x-api-key")
        header = f"Bearer {key.strip()}" if key and key.strip() else request.headers.get("authorization")
        try:
            keys.authorize(header, WRITE_SCOPES)
        except AuthError as exc:
            message = "X-API-Key: missing API key (set EVENT_INGESTION_API_KEY)" if not header else exc.message
            raise EventStoreError(exc.status_code, message) from None

    async def read_json(request: Request) -> Dict[str, Any]:
        declared = request.headers.get("content-length")
        too_large = EventStoreError(413, f"body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except ValueError as exc:
            raise EventStoreError(400, f"body is not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise EventStoreError(400, f"the body must be a JSON object, not {type(body).__name__}")
        return body

    def event_id_for(request: Request) -> str:
        given = request.headers.get("idempotency-key")
        if given is None:
            return str(uuid.uuid4())
        if not _IDEMPOTENCY_KEY.match(given):
            raise EventStoreError(400, f"Idempotency-Key: must be 1 to {MAX_ID_LENGTH} visible ASCII characters")
        return given

    def ingest(body: Dict[str, Any], event_id: str) -> str:
        """Validate everything, then save the images and the event (nothing written on a refusal)."""
        event, pending = to_wire_event(body, event_id, max_image_bytes, sniff, default_use_case)
        if event.use_case_id not in store.active_use_case_ids([event.use_case_id]):
            raise EventStoreError(400, f"solution: Solution not found (no active use case {event.use_case_id[:100]!r})")
        for source_id, content, (ext, content_type) in pending:
            store.save_image(content, ext, content_type, None, {}, source_id=source_id)
        known = set(store.image_exts(image_ids(event)))
        store.put_events([event_row(event, known)])
        return event.event_id

    @router.post("/v2/events", status_code=201)
    async def create_v2_event(request: Request) -> JSONResponse:
        try:
            authorize(request)
            event_id = event_id_for(request)
            body = await read_json(request)
            stored = await run_in_threadpool(ingest, body, event_id)
        except EventStoreError as exc:
            return error_response(exc.status_code, exc.message)
        return JSONResponse({"id": stored}, status_code=201)

    return router

