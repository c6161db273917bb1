"""Sync and async clients for the whole Vision Events API (spec §1.1 rows 1-10).

CONTRACT STUB — to be implemented (helper "client"). Signatures below are fixed: the sender,
the CLI, the blocks and the tests are written against them.

Design (httpx style): ``_BaseClient`` holds everything that is not I/O (settings, URL and
request building, response parsing, error mapping); ``VisionEventsClient`` and
``AsyncVisionEventsClient`` only perform the requests, over one keep-alive ``httpx`` pool each.

Settings resolution:
* API key: ``api_key`` argument, else ``ROBOFLOW_API_KEY``, else ``API_KEY``.
* Base URL: ``api_url`` argument, else ``VISION_EVENTS_API_URL``, else ``API_BASE_URL``, else
  ``https://api.roboflow.com``.
* Timeouts: connect 5 s, read 30 s, write 30 s, pool 5 s (``timeout=`` overrides).
* TLS is verified unless ``verify=False`` is passed explicitly.
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import httpx

from .models import (
    BatchCreateResponse,
    CreateEventResponse,
    CustomMetadataSchema,
    EventRecord,
    QueryRequest,
    SuccessResponse,
    UploadImageResponse,
    UseCaseList,
    UseCaseResponse,
    VisionEvent,
)
from .secrets import ApiKey

DEFAULT_API_URL = "https://api.roboflow.com"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)

EventLike = Union[VisionEvent, Mapping[str, Any]]
QueryLike = Union[QueryRequest, Mapping[str, Any], None]


def resolve_api_key(api_key: Optional[str] = None) -> Optional[ApiKey]:
    """``api_key``, else ``ROBOFLOW_API_KEY``, else ``API_KEY``; ``None`` when none is set."""
    raise NotImplementedError


def resolve_api_url(api_url: Optional[str] = None) -> str:
    """``api_url``, else ``VISION_EVENTS_API_URL``, else ``API_BASE_URL``, else the cloud URL."""
    raise NotImplementedError


class VisionEventsClient:
    def __init__(
        self,
        api_key: Optional[str] = None,
        api_url: Optional[str] = None,
        *,
        timeout: Union[float, httpx.Timeout, None] = None,
        max_connections: int = 10,
        verify: bool = True,
        transport: Optional[httpx.BaseTransport] = None,
        user_agent: Optional[str] = None,
    ) -> None: ...

    api_url: str  # resolved base URL, no trailing slash

    def upload_image(
        self,
        image: Union[bytes, str, "os.PathLike[str]"],
        *,
        name: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        content_type: str = "image/jpeg",
    ) -> UploadImageResponse: ...
    def create_event(self, event: EventLike) -> CreateEventResponse: ...
    def create_events(self, events: Sequence[EventLike]) -> BatchCreateResponse:
        """Batch create; lists longer than 100 are split, the responses are summed."""
    def query(self, request: QueryLike = None, **filters: Any) -> "QueryResponse": ...
    def iter_events(self, request: QueryLike = None, **filters: Any) -> Iterator[EventRecord]:
        """Every matching event, following ``nextCursor`` while ``hasMore``."""
    def list_use_cases(self, status: Optional[str] = None) -> UseCaseList: ...
    def get_custom_metadata_schema(self, use_case_id: str) -> CustomMetadataSchema: ...
    def create_use_case(self, name: str) -> UseCaseResponse: ...
    def update_use_case(self, use_case_id: str, *, name: Optional[str] = None, status: Optional[str] = None) -> UseCaseResponse: ...
    def archive_use_case(self, use_case_id: str) -> SuccessResponse: ...
    def unarchive_use_case(self, use_case_id: str) -> SuccessResponse: ...
    def close(self) -> None: ...
    def __enter__(self) -> "VisionEventsClient": ...
    def __exit__(self, *exc: Any) -> None: ...


class AsyncVisionEventsClient:
    """Same constructor and methods as :class:`VisionEventsClient`, as coroutines;
    ``iter_events`` is an async iterator; ``aclose()`` and ``async with``."""
