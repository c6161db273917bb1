"""Sync and async clients for the whole Vision Events API (spec §1.1 rows 1-10).

Design (httpx style): ``_BaseClient`` (in :mod:`._base`) holds everything that is not I/O
(settings, request building, response parsing, error mapping); ``VisionEventsClient`` and
``AsyncVisionEventsClient`` only perform the requests, over one keep-alive ``httpx`` pool each.

>>> with VisionEventsClient(api_url="http://127.0.0.1:8000") as client:  # doctest: +SKIP
...     uploaded = client.upload_image(jpeg_bytes, metadata={"camera": "cam-1"})
...     client.create_event({"eventType": "quality_check", "useCaseId": use_case_id,
...                          "eventData": {"result": "fail"},       # eventId, timestamp: filled
...                          "images": [{"sourceId": uploaded.source_id}]})
...     for event in client.iter_events(use_case_id=use_case_id, event_types=["quality_check"],
...                                     device_id="cam-1"):          # a plain value means eq
...         print(event.event_id)

Events are dicts with the API's camelCase keys (snake_case works too) or
:class:`~.models.VisionEvent` models; a dict without ``eventId`` gets a uuid4 and one without
``timestamp`` the current time (UTC), as the sender does. Query filters are keyword arguments
(or a dict / :class:`~.models.QueryRequest`); ``device_id``, ``stream_id``, ``workflow_id``
and ``external_id`` take ``{"operator": "eq"|"neq", "value": ...}`` or a plain string (eq),
``detection_class`` a string (eq) or a list (in), ``image_count`` an int (eq), and a
``custom_metadata_filters`` item without ``type`` takes its value's type.

Settings resolution:

* API key: ``api_key`` argument, else ``ROBOFLOW_API_KEY``, else ``API_KEY``. It is kept as an
  :class:`~.secrets.ApiKey` and only ever sent as ``Authorization: Bearer``. A missing key
  raises :class:`~.errors.MissingApiKeyError` at the first request, not at construction, so
  a client can be built before the environment is complete.
* Base URL: ``api_url`` argument, else ``VISION_EVENTS_API_URL``, else ``API_BASE_URL``, else
  ``https://api.roboflow.com``. A URL with credentials or a query string is refused.
* Timeouts: connect 5 s, read 30 s, write 30 s, pool 5 s (``timeout=`` overrides: a number
  applies to all four).
* TLS is verified unless ``verify=False`` is passed explicitly. Redirects are not followed.

Errors:

* Bad arguments fail before anything is sent, with a ``ValueError`` naming the field (the
  models raise pydantic's ``ValidationError``, itself a ``ValueError``, whose message carries
  the field path, e.g. ``eventData.result``).
* Every failure after that is a :class:`~.errors.VisionEventsError`: a non-success status
  becomes the matching :class:`~.errors.APIStatusError` subclass (with ``retryable`` and
  ``retry_after``), an httpx timeout :class:`~.errors.RequestTimeout`, any other transport
  failure :class:`~.errors.TransportError`, an undocumented success answer
  :class:`~.errors.UnexpectedResponseError`. Messages are redacted and never hold the key.

The client does not retry: retries, back-off and persistence belong to the sender
(``vision_events_blocks.delivery``), which knows what may be dropped and what may not.
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Iterator, List, Mapping, Optional, Sequence, Set

import httpx

from ._base import (  # noqa: F401  (re-exported: the contract names live here)
    DEFAULT_API_URL,
    DEFAULT_TIMEOUT,
    Call,
    EventLike,
    ImageLike,
    QueryLike,
    _BaseClient,
    resolve_api_key,
    resolve_api_url,
)
from .models import (
    BatchCreateResponse,
    CreateEventResponse,
    CustomMetadataSchema,
    EventRecord,
    QueryRequest,
    QueryResponse,
    SuccessResponse,
    UploadImageResponse,
    UseCaseList,
    UseCaseResponse,
)

__all__ = [
    "AsyncVisionEventsClient",
    "DEFAULT_API_URL",
    "DEFAULT_TIMEOUT",
    "VisionEventsClient",
    "resolve_api_key",
    "resolve_api_url",
]


class VisionEventsClient(_BaseClient):
    """Blocking client over one keep-alive connection pool; safe to share between threads.

    Constructor: see :class:`~._base._BaseClient` (``api_key``, ``api_url``, ``timeout``,
    ``max_connections``, ``verify``, ``transport``, ``user_agent``).
    """

    _http_class = httpx.Client

    def _send(self, call: Call) -> Any:
        args = self._request_args(call)
        try:
            response = self._http.request(**args)
        except httpx.RequestError as exc:
            raise self._transport_error(call, exc) from None
        return self._read(call, response)

    def upload_image(
        self,
        image: ImageLike,
        *,
        name: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        content_type: str = "image/jpeg",
    ) -> UploadImageResponse:
        """Upload encoded image bytes (or a file path); the ``sourceId`` goes in an event's ``images``."""
        return self._send(self._upload_call(image, name, metadata, content_type))

    def create_event(self, event: EventLike) -> CreateEventResponse:
        """Create (or, for a known ``eventId``, overwrite) one event.

        A dict without ``eventId`` / ``timestamp`` gets a uuid4 / now (UTC); the answer's
        ``event_id`` says which id was used."""
        return self._send(self._create_event_call(event))

    def create_events(self, events: Sequence[EventLike]) -> BatchCreateResponse:
        """Batch create; lists longer than 100 are split, the responses are summed.

        Ids and times are filled as in :meth:`create_event` (``event_ids`` lists them in order).

        All events are validated before the first request. If a later chunk fails, the
        earlier chunks are already stored: re-sending the whole list is safe, because an
        ``eventId`` seen again overwrites rather than duplicates. Compare ``created`` with
        ``len(events)``: the spec does not settle partial acceptance.
        """
        return self._sum_batches([self._send(call) for call in self._batch_calls(events)])

    def create_events_encoded(self, encoded_events: Sequence[bytes]) -> BatchCreateResponse:
        """Batch create from 1-100 events that are each already JSON, sent without re-validation.

        For senders that validated and serialised each event when it became ready: building
        one large batch with ``json.dumps`` (~30 ms for 100 events of 100 detections) would hold
        the GIL and stall every other thread of the host, the video pipeline included.
        """
        return self._send(self._encoded_batch_call(encoded_events))

    def query(self, request: QueryLike = None, **filters: Any) -> QueryResponse:
        """One page of events (``request`` and/or snake_case keyword filters; keywords win)."""
        return self._send(self._query_call(self._query_model(request, filters)))

    def iter_pages(self, request: QueryLike = None, **filters: Any) -> Iterator[QueryResponse]:
        """Every page of a query, following ``nextCursor`` while ``hasMore``.

        The filters are validated now; pages are fetched as the iterator is consumed.
        """
        return self._pages(self._query_model(request, filters))

    def iter_events(self, request: QueryLike = None, **filters: Any) -> Iterator[EventRecord]:
        """Every matching event, following ``nextCursor`` while ``hasMore``."""
        return (event for page in self.iter_pages(request, **filters) for event in page.events)

    def _pages(self, query: Optional[QueryRequest]) -> Iterator[QueryResponse]:
        seen: Set[str] = set()
        while query is not None:
            page: QueryResponse = self._send(self._query_call(query))
            yield page
            query = self._next_page(query, page, seen)

    def list_use_cases(self, status: Optional[str] = None) -> UseCaseList:
        """Use cases with ``status`` ``active`` (the server's default) or ``inactive`` (archived)."""
        return self._send(self._list_use_cases_call(status))

    def get_custom_metadata_schema(self, use_case_id: str) -> CustomMetadataSchema:
        """The metadata keys seen in a use case's events, with their value types."""
        return self._send(self._schema_call(use_case_id))

    def create_use_case(self, name: str) -> UseCaseResponse:
        return self._send(self._create_use_case_call(name))

    def update_use_case(
        self, use_case_id: str, *, name: Optional[str] = None, status: Optional[str] = None
    ) -> UseCaseResponse:
        """Rename and/or change status; at least one of the two."""
        return self._send(self._update_use_case_call(use_case_id, name, status))

    def archive_use_case(self, use_case_id: str) -> SuccessResponse:
        return self._send(self._archive_call(use_case_id, "archive"))

    def unarchive_use_case(self, use_case_id: str) -> SuccessResponse:
        return self._send(self._archive_call(use_case_id, "unarchive"))

    def close(self) -> None:
        """Close the pooled connections; the client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> "VisionEventsClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncVisionEventsClient(_BaseClient):
    """Same constructor and methods as :class:`VisionEventsClient`, as coroutines;
    ``iter_events`` is an async iterator; ``aclose()`` and ``async with``."""

    _http_class = httpx.AsyncClient

    async def _send(self, call: Call) -> Any:
        args = self._request_args(call)
        try:
            response = await self._http.request(**args)
        except httpx.RequestError as exc:
            raise self._transport_error(call, exc) from None
        return self._read(call, response)

    async def upload_image(
        self,
        image: ImageLike,
        *,
        name: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        content_type: str = "image/jpeg",
    ) -> UploadImageResponse:
        return await self._send(self._upload_call(image, name, metadata, content_type))

    async def create_event(self, event: EventLike) -> CreateEventResponse:
        return await self._send(self._create_event_call(event))

    async def create_events(self, events: Sequence[EventLike]) -> BatchCreateResponse:
        """See :meth:`VisionEventsClient.create_events`."""
        responses: List[BatchCreateResponse] = []
        for call in self._batch_calls(events):
            responses.append(await self._send(call))
        return self._sum_batches(responses)

    async def create_events_encoded(self, encoded_events: Sequence[bytes]) -> BatchCreateResponse:
        """See :meth:`VisionEventsClient.create_events_encoded`."""
        return await self._send(self._encoded_batch_call(encoded_events))

    async def query(self, request: QueryLike = None, **filters: Any) -> QueryResponse:
        return await self._send(self._query_call(self._query_model(request, filters)))

    def iter_pages(self, request: QueryLike = None, **filters: Any) -> AsyncIterator[QueryResponse]:
        """``async for page in client.iter_pages(...)``; filters are validated now."""
        return self._pages(self._query_model(request, filters))

    def iter_events(self, request: QueryLike = None, **filters: Any) -> AsyncIterator[EventRecord]:
        """``async for event in client.iter_events(...)``, following ``nextCursor``."""
        return self._events(self.iter_pages(request, **filters))

    async def _pages(self, query: Optional[QueryRequest]) -> AsyncIterator[QueryResponse]:
        seen: Set[str] = set()
        while query is not None:
            page: QueryResponse = await self._send(self._query_call(query))
            yield page
            query = self._next_page(query, page, seen)

    @staticmethod
    async def _events(pages: AsyncIterator[QueryResponse]) -> AsyncIterator[EventRecord]:
        async for page in pages:
            for event in page.events:
                yield event

    async def list_use_cases(self, status: Optional[str] = None) -> UseCaseList:
        return await self._send(self._list_use_cases_call(status))

    async def get_custom_metadata_schema(self, use_case_id: str) -> CustomMetadataSchema:
        return await self._send(self._schema_call(use_case_id))

    async def create_use_case(self, name: str) -> UseCaseResponse:
        return await self._send(self._create_use_case_call(name))

    async def update_use_case(
        self, use_case_id: str, *, name: Optional[str] = None, status: Optional[str] = None
    ) -> UseCaseResponse:
        return await self._send(self._update_use_case_call(use_case_id, name, status))

    async def archive_use_case(self, use_case_id: str) -> SuccessResponse:
        return await self._send(self._archive_call(use_case_id, "archive"))

    async def unarchive_use_case(self, use_case_id: str) -> SuccessResponse:
        return await self._send(self._archive_call(use_case_id, "unarchive"))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncVisionEventsClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
