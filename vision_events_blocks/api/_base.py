"""Everything the sync and async clients share that is not I/O.

``_BaseClient`` resolves the settings, turns every API method into a :class:`Call` (method,
path, body, expected status, response model), reads the answers and maps failures onto
:mod:`.errors`. The two public clients in :mod:`.client` only send calls; that keeps one copy
of the logic, as httpx does for its own two clients.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Type, Union
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from .._version import __version__
from .errors import (
    MissingApiKeyError,
    RequestTimeout,
    TransportError,
    UnexpectedResponseError,
    error_from_response,
)
from .models import (
    MAX_BATCH_EVENTS,
    MAX_ID_LENGTH,
    USE_CASE_STATUSES,
    BatchCreateResponse,
    CreateEventResponse,
    CreateUseCaseRequest,
    CustomMetadataSchema,
    QueryRequest,
    QueryResponse,
    SuccessResponse,
    UpdateUseCaseRequest,
    UploadImageResponse,
    UseCaseList,
    UseCaseResponse,
    VisionEvent,
    validate_custom_metadata,
    validate_event,
)
from .media import extension_for
from .secrets import ApiKey, redact

logger = logging.getLogger("vision_events_blocks.api.client")

DEFAULT_API_URL = "https://api.roboflow.com"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
API_KEY_ENV_VARS = ("ROBOFLOW_API_KEY", "API_KEY")
API_URL_ENV_VARS = ("VISION_EVENTS_API_URL", "API_BASE_URL")

EventLike = Union[VisionEvent, Mapping[str, Any]]
QueryLike = Union[QueryRequest, Mapping[str, Any], None]
ImageLike = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]


def resolve_api_key(api_key: Union[str, ApiKey, None] = None) -> Optional[ApiKey]:
    """``api_key``, else ``ROBOFLOW_API_KEY``, else ``API_KEY``; ``None`` when none is set.

    Empty or blank values count as "not set", so an empty ``--api-key ""`` falls back to the
    environment instead of sending ``Bearer`` with nothing after it.
    """
    if isinstance(api_key, ApiKey):
        return api_key
    candidates = [api_key] + [os.environ.get(name) for name in API_KEY_ENV_VARS]
    for value in candidates:
        if value is not None and value.strip():
            return ApiKey(value)
    return None


def resolve_api_url(api_url: Optional[str] = None) -> str:
    """``api_url``, else ``VISION_EVENTS_API_URL``, else ``API_BASE_URL``, else the cloud URL.

    The URL is checked once here: http(s) only, a host, no ``user:password@`` and no query
    string or fragment (a key pasted into the URL would end up in every log line). The
    error message never repeats the URL, since the URL is what might hold a secret.
    """
    candidates = [("api_url", api_url)] + [(name, os.environ.get(name)) for name in API_URL_ENV_VARS]
    source, value = next(
        ((name, v.strip()) for name, v in candidates if v is not None and v.strip()), ("api_url", DEFAULT_API_URL)
    )
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ValueError(f"{source} is not a valid URL; expected e.g. https://api.roboflow.com") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{source} must be an http:// or https:// URL with a host, e.g. https://api.roboflow.com")
    if url.userinfo:
        raise ValueError(f"{source} must not contain credentials (user:password@); pass the key as api_key")
    if url.query or url.fragment or "?" in value or "#" in value:
        raise ValueError(f"{source} must not contain a query string or fragment; pass the key as api_key")
    return value.rstrip("/")


def resolve_timeout(timeout: Union[float, httpx.Timeout, None]) -> httpx.Timeout:
    """``None`` -> the defaults; a number -> that many seconds for connect, read, write and pool."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or an httpx.Timeout, got {timeout!r}")
    return httpx.Timeout(float(timeout))


def default_user_agent() -> str:
    return f"vision-events-blocks/{__version__}"


def path_id(value: str, what: str) -> str:
    """A path segment for an id, checked and percent-encoded (an id is data, never a path)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what} is {len(value)} characters; at most {MAX_ID_LENGTH}")
    return quote(value, safe="")


@dataclasses.dataclass(frozen=True)
class Call:
    """One request to make and how to read its answer."""

    method: str
    path: str
    expect: int  # the one documented success status (spec §1.1)
    model: Type[BaseModel]
    json: Any = None
    params: Optional[Dict[str, str]] = None
    files: Optional[Dict[str, Tuple[str, bytes, str]]] = None
    data: Optional[Dict[str, str]] = None
    content: Optional[bytes] = None  # a body that is already JSON (sent as is)


class _BaseClient:
    """Settings, request building, response parsing and error mapping (no I/O).

    Client-side validation: every request body goes through its pydantic model first, so a
    bad field fails *before* anything is sent, with a ``ValueError`` that names it (a
    pydantic ``ValidationError`` for model fields; a plain ``ValueError`` for arguments such
    as ``status`` or upload ``metadata``). Everything that goes wrong after that is a
    :class:`~.errors.VisionEventsError`.

    ``transport`` replaces the network (an ``httpx.MockTransport`` in a test, say); when it
    is given, ``verify`` and ``max_connections`` are the transport's business. The subclass
    names its pool type (``httpx.Client`` or ``httpx.AsyncClient``) in ``_http_class``.
    """

    _http_class: Type[Union[httpx.Client, httpx.AsyncClient]]

    def __init__(
        self,
        api_key: Union[str, ApiKey, None] = None,
        api_url: Optional[str] = None,
        *,
        timeout: Union[float, httpx.Timeout, None] = None,
        max_connections: int = 10,
        verify: bool = True,
        transport: Union[httpx.BaseTransport, httpx.AsyncBaseTransport, None] = None,
        user_agent: Optional[str] = None,
    ) -> None:
        if not isinstance(max_connections, int) or isinstance(max_connections, bool) or max_connections < 1:
            raise ValueError(f"max_connections must be a positive integer, got {max_connections!r}")
        self._api_key = resolve_api_key(api_key)
        self.api_url = resolve_api_url(api_url)
        self.timeout = resolve_timeout(timeout)
        self.verify = bool(verify)
        self._http = self._http_class(
            headers={"User-Agent": user_agent or default_user_agent(), "Accept": "application/json"},
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            verify=self.verify,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        key = "ApiKey('***')" if self._api_key is not None else "None"
        return f"{type(self).__name__}(api_url={self.api_url!r}, api_key={key})"

    # -- calls: one per endpoint (spec §1.1) --------------------------------------------------
    def _upload_call(
        self, image: ImageLike, name: Optional[str], metadata: Optional[Mapping[str, Any]], content_type: str
    ) -> Call:
        content, default_name = _read_image(image)
        data: Dict[str, str] = {}
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise ValueError("name must be a non-empty string")
            data["name"] = name
        if metadata is not None:
            data["metadata"] = json.dumps(validate_custom_metadata(dict(metadata), "metadata"), allow_nan=False)
        filename = name or default_name or f"image.{extension_for(content_type)}"
        return Call(
            "POST", "/vision-events/upload", 201, UploadImageResponse,
            files={"file": (filename, content, content_type)}, data=data or None,
        )

    def _create_event_call(self, event: EventLike) -> Call:
        return Call("POST", "/vision-events", 201, CreateEventResponse, json=_event_wire(event))

    def _batch_calls(self, events: Sequence[EventLike]) -> List[Call]:
        """Every event validated before the first request; then chunks of at most 100."""
        if isinstance(events, (Mapping, VisionEvent)) or not isinstance(events, Iterable):
            raise ValueError("events must be a list of events")
        bodies = [_event_wire(event, index=i) for i, event in enumerate(events)]
        return [
            Call("POST", "/vision-events/batch", 201, BatchCreateResponse, json={"events": bodies[i:i + MAX_BATCH_EVENTS]})
            for i in range(0, len(bodies), MAX_BATCH_EVENTS)
        ]

    @staticmethod
    def _encoded_batch_call(encoded_events: Sequence[bytes]) -> Call:
        """``{"events": [...]}`` joined from events that are each already JSON, 1 to 100 of them."""
        if not 1 <= len(encoded_events) <= MAX_BATCH_EVENTS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_EVENTS} events, got {len(encoded_events)}")
        body = b'{"events":[' + b",".join(encoded_events) + b"]}"
        return Call("POST", "/vision-events/batch", 201, BatchCreateResponse, content=body)

    @staticmethod
    def _sum_batches(responses: Sequence[BatchCreateResponse]) -> BatchCreateResponse:
        """One answer for a split batch: ``created`` summed, ``eventIds`` concatenated."""
        return BatchCreateResponse(
            created=sum(r.created for r in responses),
            event_ids=[event_id for r in responses for event_id in r.event_ids],
        )

    def _query_call(self, query: QueryRequest) -> Call:
        return Call("POST", "/vision-events/query", 200, QueryResponse, json=query.to_wire())

    @staticmethod
    def _query_model(request: QueryLike, filters: Mapping[str, Any]) -> QueryRequest:
        """A :class:`QueryRequest` from a model, a dict (camelCase or snake_case) and/or keywords.

        Keywords win over the same filter in ``request``.
        """
        if isinstance(request, QueryRequest) and not filters:
            return request
        if isinstance(request, QueryRequest):
            base: Mapping[str, Any] = request.to_wire()
        elif request is None or isinstance(request, Mapping):
            base = request or {}
        else:
            raise ValueError("request must be a QueryRequest, a dict of filters or None")
        merged: Dict[str, Any] = {}
        aliases = {f.alias for f in QueryRequest.model_fields.values() if f.alias}
        for key, value in list(base.items()) + list(filters.items()):
            field = QueryRequest.model_fields.get(key)
            if field is None and key not in aliases:
                known = sorted(QueryRequest.model_fields)
                close = (difflib.get_close_matches(str(key), known, n=1)
                         or difflib.get_close_matches(str(key), sorted(aliases), n=1))
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown query filter {key!r}{hint} (filters: {', '.join(known)})")
            alias = field.alias if field is not None and field.alias else key
            merged[alias] = _plain_filter(alias, value)
        return QueryRequest.model_validate(merged)

    @staticmethod
    def _next_page(query: QueryRequest, page: QueryResponse, seen: Set[str]) -> Optional[QueryRequest]:
        """The query for the page after ``page``, or ``None`` at the end.

        A server that says ``hasMore`` without a new cursor would make us loop or stop early
        without saying so; both are errors rather than silently lost events.
        """
        if not page.has_more:
            return None
        cursor = page.next_cursor
        if not cursor:
            raise UnexpectedResponseError("the query answered hasMore=true without a nextCursor")
        if cursor in seen:
            raise UnexpectedResponseError("the query returned the same nextCursor twice; stopping to avoid a loop")
        seen.add(cursor)
        return query.model_copy(update={"cursor": cursor})

    def _list_use_cases_call(self, status: Optional[str]) -> Call:
        if status is not None and status not in USE_CASE_STATUSES:
            raise ValueError(f"status must be one of {USE_CASE_STATUSES}, got {status!r}")
        params = {"status": status} if status else None
        return Call("GET", "/vision-events/use-cases", 200, UseCaseList, params=params)

    def _schema_call(self, use_case_id: str) -> Call:
        path = f"/vision-events/custom-metadata-schema/{path_id(use_case_id, 'use_case_id')}"
        return Call("GET", path, 200, CustomMetadataSchema)

    def _create_use_case_call(self, name: str) -> Call:
        body = CreateUseCaseRequest(name=name).to_wire()
        return Call("POST", "/vision-events/use-cases", 201, UseCaseResponse, json=body)

    def _update_use_case_call(self, use_case_id: str, name: Optional[str], status: Optional[str]) -> Call:
        body = UpdateUseCaseRequest(name=name, status=status).to_wire()
        path = f"/vision-events/use-cases/{path_id(use_case_id, 'use_case_id')}"
        return Call("PUT", path, 200, UseCaseResponse, json=body)

    def _archive_call(self, use_case_id: str, action: str) -> Call:
        path = f"/vision-events/use-cases/{path_id(use_case_id, 'use_case_id')}/{action}"
        return Call("POST", path, 200, SuccessResponse)

    # -- sending and reading --------------------------------------------------------------------
    def _request_args(self, call: Call) -> Dict[str, Any]:
        """The keyword arguments for ``httpx.Client.request``; the key goes in the header only."""
        if self._api_key is None:
            raise MissingApiKeyError(
                "no Roboflow API key: pass api_key=... (CLI: --api-key) or set ROBOFLOW_API_KEY (or API_KEY)"
            )
        key = self._api_key.reveal()
        if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
            # httpx would fail with an encoding error, or h11 with one that quotes the header.
            raise MissingApiKeyError(
                "the API key contains spaces, control or non-ASCII characters and cannot be sent; "
                "check the value of api_key / ROBOFLOW_API_KEY"
            )
        headers = {"Authorization": f"Bearer {key}"}
        if call.content is not None:
            headers["Content-Type"] = "application/json"
        return {
            "method": call.method,
            "url": self.api_url + call.path,
            "headers": headers,
            "json": call.json,
            "params": call.params,
            "files": call.files,
            "data": call.data,
            "content": call.content,
        }

    def _transport_error(self, call: Call, exc: Exception) -> TransportError:
        """An httpx failure as our error; the message is redacted in case it echoes the request."""
        detail = redact(str(exc) or type(exc).__name__, self._api_key)
        error_type = RequestTimeout if isinstance(exc, httpx.TimeoutException) else TransportError
        what = "no answer in time" if error_type is RequestTimeout else "request failed"
        logger.debug("%s %s: %s (%s)", call.method, call.path, what, type(exc).__name__)
        url = redact(self.api_url, self._api_key)  # no credentials or query (resolve_api_url); a key in the path: ***
        error = error_type(f"{what} on {call.method} {call.path} at {url}: {type(exc).__name__}: {detail}")
        error.api_url = url
        error.detail = f"{type(exc).__name__}: {detail}"
        return error

    def _read(self, call: Call, response: httpx.Response) -> Any:
        """The response model for the documented success status; a typed error otherwise."""
        status = response.status_code
        logger.debug("%s %s -> %d (%d bytes)", call.method, call.path, status, len(response.content))
        if status != call.expect:
            if 200 <= status < 300:
                raise UnexpectedResponseError(
                    f"{call.method} {call.path} answered {status}, expected {call.expect}", status_code=status
                )
            raise error_from_response(
                status, redact(response.text, self._api_key), response.headers, method=call.method, path=call.path
            )
        try:
            return call.model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:  # not JSON, or not the documented shape
            detail = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self._api_key)
            raise UnexpectedResponseError(
                f"{call.method} {call.path} answered {status} with a body that is not a "
                f"{call.model.__name__}: {detail}",
                status_code=status,
            ) from None


# Query filters that take {"operator", "value"}: a plain value means "eq" (a list: "in").
_CONTEXT_FILTERS = ("deviceId", "streamId", "workflowId", "externalId")
_METADATA_TYPE_OF = ((bool, "boolean"), ((int, float), "number"), (str, "string"))


def _plain_filter(alias: str, value: Any) -> Any:
    """The client's shorthand for a query filter, spelled out as the API wants it.

    ``device_id="cam-1"`` (also stream, workflow and external id) -> ``{"operator": "eq",
    "value": "cam-1"}``; ``detection_class="defect"`` -> eq, a list -> ``in``;
    ``image_count=0`` -> eq; ``event_types="safety_alert"`` -> a list of one; a metadata
    filter without ``type`` gets the type of its value (bool, number or string). Anything
    else is left for the model to validate (and name).
    """
    if alias in _CONTEXT_FILTERS and isinstance(value, str):
        return {"operator": "eq", "value": value}
    if alias == "detectionClass" and isinstance(value, str):
        return {"operator": "eq", "value": value}
    if alias == "detectionClass" and isinstance(value, (list, tuple)):
        return {"operator": "in", "value": list(value)}
    if alias == "imageCount" and isinstance(value, int) and not isinstance(value, bool):
        return {"operator": "eq", "value": value}
    if alias == "eventTypes" and isinstance(value, str):
        return [value]
    if alias == "customMetadataFilters" and isinstance(value, (list, tuple)):
        return [_typed_metadata_filter(item) for item in value]
    return value


def _typed_metadata_filter(item: Any) -> Any:
    if not isinstance(item, Mapping) or "type" in item or "value" not in item:
        return item
    value = item["value"]
    sample = value[0] if isinstance(value, (list, tuple)) and value else value
    for python_types, name in _METADATA_TYPE_OF:
        if isinstance(sample, python_types):
            return {**item, "type": name}
    return item


def with_identity(event: Mapping[str, Any]) -> Dict[str, Any]:
    """The event with an ``eventId`` (uuid4) and a ``timestamp`` (now, UTC) when it has none,
    as the sender does; a given id or time is kept as is."""
    data = dict(event)
    if not data.get("eventId") and not data.get("event_id"):
        data.pop("event_id", None)
        data["eventId"] = str(uuid.uuid4())
    if data.get("timestamp") is None:
        data["timestamp"] = datetime.now(timezone.utc)
    return data


def _event_wire(event: EventLike, index: Optional[int] = None) -> Dict[str, Any]:
    """The wire dict of an event, validated (a dict goes through :class:`VisionEvent`).

    In a batch (``index`` given) the error locations start with ``events.<index>`` so the
    message says which event of the list is wrong.
    """
    where = "event" if index is None else f"events[{index}]"
    if isinstance(event, VisionEvent):
        return event.to_wire()
    if not isinstance(event, Mapping):
        raise ValueError(f"{where} must be a VisionEvent or a dict, not {type(event).__name__}")
    try:
        return validate_event(with_identity(event)).to_wire()
    except ValidationError as exc:
        if index is None:
            raise
        errors = [
            {key: value for key, value in error.items() if key in ("type", "input", "ctx")}
            | {"loc": ("events", index, *error["loc"])}
            for error in exc.errors()
        ]
        raise ValidationError.from_exception_data("BatchCreateRequest", errors) from None


def _read_image(image: ImageLike) -> Tuple[bytes, Optional[str]]:
    """The bytes to upload and, for a file, its base name."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        content = bytes(image)
        name = None
    elif isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"image file {str(path)!r} does not exist")
        content, name = path.read_bytes(), path.name
    else:
        raise ValueError(f"image must be bytes or a file path, not {type(image).__name__}")
    if not content:
        raise ValueError("image is empty (0 bytes)")
    return content, name

