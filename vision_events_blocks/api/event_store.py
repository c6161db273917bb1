"""A client for an edge Event Store (Roboflow's Event Ingestion Service): ``POST <url>/v2/events``.

It sends an event exactly the way inference's ``roboflow_vision_events@v1`` block does with
``write_to_event_store: true``: one JSON body per event, snake_case at the top, images inline
as base64, the key (if any) in ``X-API-Key``; the service answers 201 ``{"id": ...}``, and
**529 when the device applies back-pressure** (its disk queue waits for cloud uploads).

>>> with EventStoreClient("http://127.0.0.1:8001", api_key=None) as store:     # doctest: +SKIP
...     event_id = store.create_event(wire_event, [EventStoreImage(output=jpeg, input=jpeg_in)])

Mapping from our wire event (``VisionEvent`` dict): ``eventType`` -> ``event_schema``,
``useCaseId`` -> ``solution``, ``timestamp`` -> ``inference_timestamp``, ``eventData`` ->
``event_data``, ``customMetadata`` -> ``custom_metadata``; each ``images[i]`` keeps its label
and annotations and gets ``base64Image`` / ``inputBase64Image`` from ``images[i]`` of the
call. Fields the v2 body has no place for (``deviceId``, ``streamId``, ``workflowId``,
``comment``) travel as ``custom_metadata`` ``ve_device_id`` ... (our local server turns them
back into fields). ``eventId`` travels as ``Idempotency-Key`` so that a retry overwrites
instead of duplicating where the service honours it (ours does; the real one: UNCONFIRMED).

Errors: the usual :mod:`.errors` hierarchy; 529 is :class:`BackpressureError` (retryable,
``retry_after`` from the header when sent). The key never appears in a message or repr.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import httpx

from ._base import default_user_agent
from .errors import (
    RequestTimeout,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    error_from_response,
    error_message_from_body,
    parse_retry_after,
)
from .models import MAX_METADATA_KEYS, VisionEvent, validate_event
from .secrets import ApiKey, redact

DEFAULT_EVENT_STORE_URL = "http://localhost:8001"       # the built-in block's default
EVENT_STORE_URL_ENV = "VISION_EVENTS_EVENT_STORE_URL"
EVENT_STORE_KEY_ENV = "EVENT_INGESTION_API_KEY"          # the built-in block's variable
BACKPRESSURE_STATUS = 529
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
CONTEXT_METADATA = (("deviceId", "ve_device_id"), ("streamId", "ve_stream_id"),
                    ("workflowId", "ve_workflow_id"), ("comment", "ve_comment"))
_PLACEHOLDER = "event-store-inline"


class BackpressureError(ServerError):
    """529: the edge device is at capacity. Retryable: wait ``retry_after`` (if sent) and retry;
    the event is not lost, it was simply not taken yet."""

    def __init__(self, error_message: str, *, retry_after: Optional[float] = None, path: str = "/v2/events") -> None:
        super().__init__(BACKPRESSURE_STATUS, error_message, method="POST", path=path, retry_after=retry_after)
        self.retryable = True


@dataclasses.dataclass(frozen=True)
class EventStoreImage:
    """Encoded bytes (JPEG/PNG/...) for one ``images[i]`` slot: ``output`` is shown first
    (``base64Image``), ``input`` is the frame the annotations refer to (``inputBase64Image``)."""

    output: Optional[bytes] = None
    input: Optional[bytes] = None

    def __repr__(self) -> str:
        sizes = {k: len(v) for k, v in (("output", self.output), ("input", self.input)) if v is not None}
        return f"EventStoreImage({sizes})"


def _b64(data: Union[bytes, bytearray, memoryview]) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _iso_offset(timestamp: str) -> str:
    """``...Z`` -> ``...+00:00``, the form the built-in sends (``datetime.isoformat()``), which
    every ISO parser reads (Python's ``fromisoformat`` takes ``Z`` only from 3.11)."""
    return timestamp[:-1] + "+00:00" if timestamp.endswith("Z") else timestamp


def to_event_store_body(event: Union[VisionEvent, Mapping[str, Any]], images: Sequence[EventStoreImage] = ()) -> Dict[str, Any]:
    """The v2 body for ``event`` (validated first; ``ValueError`` names the field)."""
    wire = dict(event.to_wire() if isinstance(event, VisionEvent) else event)
    wire_images: List[Dict[str, Any]] = [dict(i) for i in (wire.get("images") or [])]
    if len(images) > len(wire_images):
        wire_images += [{} for _ in range(len(images) - len(wire_images))]
    if len(wire_images) > len(images):
        raise ValueError(f"images[{len(images)}]: the Event Store takes images inline; pass its bytes in images[{len(images)}]")
    for index, image in enumerate(images):
        if not isinstance(image, EventStoreImage) or (image.output is None and image.input is None):
            raise ValueError(f"images[{index}] must be an EventStoreImage with output and/or input bytes")
        if image.output is not None:
            wire_images[index]["sourceId"] = _PLACEHOLDER
        if image.input is not None:
            wire_images[index]["inputSourceId"] = _PLACEHOLDER
    probe = {**wire, "images": wire_images, "eventId": wire.get("eventId") or _PLACEHOLDER}  # the service may make the id
    checked = validate_event(probe).to_wire()  # raises ValidationError (a ValueError) naming the field
    metadata = dict(checked.get("customMetadata") or {})
    for field, key in CONTEXT_METADATA:
        if checked.get(field) is not None:
            metadata[key] = checked[field]
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"customMetadata: {len(metadata)} keys with the ve_* context keys; at most {MAX_METADATA_KEYS}")
    body_images = []
    for image, given in zip(checked.get("images") or [], images, strict=True):
        # like the built-in: no empty annotation lists
        entry = {k: v for k, v in image.items() if k not in ("sourceId", "inputSourceId") and v != []}
        if given.output is not None:
            entry["base64Image"] = _b64(given.output)
        if given.input is not None:
            entry["inputBase64Image"] = _b64(given.input)
        body_images.append(entry)
    body: Dict[str, Any] = {
        "inference_timestamp": _iso_offset(checked["timestamp"]),
        "solution": checked["useCaseId"],
        "event_schema": checked["eventType"],
        "event_data": checked.get("eventData") or {},
        "images": body_images,
    }
    if metadata:
        body["custom_metadata"] = metadata
    if body_images:
        body["displayImagePosition"] = checked.get("displayImagePosition", 0)
    return body


class EventStoreClient:
    """Blocking client for one Event Store; one keep-alive pool, safe to share between threads.

    ``url``: argument, else ``VISION_EVENTS_EVENT_STORE_URL``, else ``http://localhost:8001``.
    ``api_key``: argument, else ``EVENT_INGESTION_API_KEY``, else none (no header is sent, as
    the built-in block does). The client does not retry: the sender does.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Union[str, ApiKey, None] = None,
        *,
        timeout: Union[float, httpx.Timeout, None] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self.url = (url or os.environ.get(EVENT_STORE_URL_ENV) or DEFAULT_EVENT_STORE_URL).rstrip("/")
        if "?" in self.url or "@" in self.url.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError("the Event Store URL must not carry credentials or a query string")
        raw_key = api_key if api_key is not None else os.environ.get(EVENT_STORE_KEY_ENV) or None
        self._api_key = raw_key if isinstance(raw_key, ApiKey) or raw_key is None else ApiKey(raw_key)
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        self._http = httpx.Client(
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            headers={"User-Agent": default_user_agent(), "Accept": "application/json"},
            transport=transport, follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"EventStoreClient(url={self.url!r}, api_key={'***' if self._api_key else None})"

    def create_event(self, event: Union[VisionEvent, Mapping[str, Any]], images: Sequence[EventStoreImage] = ()) -> str:
        """Post one event; return the id the service gave it (ours: the event's ``eventId``).

        Raises ``ValueError`` (nothing sent) for an invalid event, :class:`BackpressureError`
        on 529, other :class:`~.errors.APIStatusError` subclasses, :class:`~.errors.TransportError`.
        """
        body = to_event_store_body(event, images)
        event_id = (event.event_id if isinstance(event, VisionEvent) else event.get("eventId")) or None
        return self.post_body(body, event_id=event_id)

    def post_body(self, body: Mapping[str, Any], *, event_id: Optional[str] = None) -> str:
        """Post a ready v2 body (see :func:`to_event_store_body`)."""
        path = "/v2/events"
        headers = {"Content-Type": "application/json"}
        if self._api_key is not None:
            headers["X-API-Key"] = self._api_key.reveal()
        if event_id:
            headers["Idempotency-Key"] = str(event_id)
        content = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        try:
            response = self._http.post(self.url + path, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"no answer in time on POST {path}: {type(exc).__name__}") from None
        except httpx.RequestError as exc:
            detail = redact(str(exc) or type(exc).__name__, self._api_key)
            raise TransportError(f"request failed on POST {path}: {type(exc).__name__}: {detail}") from None
        text = redact(response.text, self._api_key)
        if response.status_code == BACKPRESSURE_STATUS:
            raise BackpressureError(error_message_from_body(text, BACKPRESSURE_STATUS),
                                    retry_after=parse_retry_after(response.headers.get("retry-after")), path=path)
        if response.status_code != 201:
            if 200 <= response.status_code < 300:
                raise UnexpectedResponseError(f"POST {path} answered {response.status_code}, expected 201",
                                              status_code=response.status_code)
            raise error_from_response(response.status_code, text, response.headers, method="POST", path=path)
        try:
            server_id = response.json().get("id")
        except (ValueError, AttributeError):
            server_id = None
        if server_id in (None, ""):
            raise UnexpectedResponseError(f"POST {path} answered 201 without an id", status_code=201)
        return str(server_id)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "EventStoreClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
