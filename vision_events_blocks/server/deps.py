"""Route dependencies: who may call a route (the scope it needs) and the service it runs on.

A route states its scope where it is declared::

    @router.post("/vision-events", dependencies=[needs(WRITE_SCOPES)])

and the key is checked before the body is read: a caller without the scope gets its 401/403
without the server parsing anything it sent.
"""
from __future__ import annotations

from typing import Any, FrozenSet

from fastapi import Depends, Request

from .auth import AuthError, KeyRing
from .errors import EventStoreError
from .service import Service

__all__ = ["event_store_key", "needs", "service"]

QUERY_KEY_REFUSED = "Send the API key as 'Authorization: Bearer <key>'; ?api_key= is not accepted"
MISSING_EVENT_STORE_KEY = "X-API-Key: missing API key (set EVENT_INGESTION_API_KEY)"


def service(request: Request) -> Service:
    """The app's :class:`Service` (``Depends(service)``)."""
    return request.app.state.service


def _keys(request: Request) -> KeyRing:
    return request.app.state.keys


def needs(scopes: FrozenSet[str], *, query_key: bool = False) -> Any:
    """A dependency that admits a key with one of ``scopes`` (401 without a known key, 403
    without the scope).

    The key goes in ``Authorization: Bearer``; ``?api_key=`` is refused so that keys stay out
    of URLs and logs, except where ``query_key`` is set (the bundle endpoint, whose docs allow
    it).
    """

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization")
        if header is None and "api_key" in request.query_params:
            if not query_key:
                raise AuthError(401, QUERY_KEY_REFUSED)
            header = f"Bearer {request.query_params['api_key']}"
        _keys(request).authorize(header, scopes)

    authorize.scopes = scopes  # type: ignore[attr-defined]  # for the reader and the tests
    return Depends(authorize)


def event_store_key(scopes: FrozenSet[str]) -> Any:
    """``/v2/events``: ``X-API-Key`` (or ``Authorization: Bearer``), refusals in its shape."""

    def authorize(request: Request) -> None:
        key = request.headers.get("x-api-key")
        header = f"Bearer {key.strip()}" if key and key.strip() else request.headers.get("authorization")
        try:
            _keys(request).authorize(header, scopes)
        except AuthError as exc:
            raise EventStoreError(exc.status_code, MISSING_EVENT_STORE_KEY if not header else exc.message) from None

    authorize.scopes = scopes  # type: ignore[attr-defined]
    return Depends(authorize)


