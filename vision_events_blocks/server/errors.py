"""Every refusal the server makes, and the one place that turns it into a response.

A route, a dependency or the service raises :class:`ApiError` (or a subclass) with the HTTP
status and a message naming the problem; :func:`install_error_handlers` shapes every error
of the app, including the framework's own (unknown route 404, wrong method 405, request
validation 400, never 422) and crashes (500, a generic message, logged).

* ``{"error": "..."}`` for every ``/vision-events`` route and the admin routes;
* ``{"error": "...", "detail": "..."}`` (same text) on ``/v2/events``
  (:class:`EventStoreError`): inference's Event Store clients read ``detail``.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..api.validation import field_path

log = logging.getLogger("vision_events_blocks.server")

__all__ = ["ApiError", "EventStoreError", "error_response", "install_error_handlers"]


class ApiError(Exception):
    """A refusal: HTTP status and a message for the caller (never a secret)."""

    with_detail = False  # also repeat the message as ``detail`` (the /v2/events shape)

    def __init__(self, status_code: int, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


class EventStoreError(ApiError):
    """A refusal on ``/v2/events``: the body is ``{"error", "detail"}``."""

    with_detail = True


def error_response(status_code: int, message: str, headers: Optional[Dict[str, str]] = None,
                   *, with_detail: bool = False) -> JSONResponse:
    body = {"error": message, "detail": message} if with_detail else {"error": message}
    return JSONResponse(body, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Shape every error of ``app`` (see the module docstring)."""

    @app.exception_handler(ApiError)
    async def _refused(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.headers, with_detail=exc.with_detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{field_path(e['loc'][1:])}: {e['msg']}" for e in exc.errors()[:3])
        return error_response(400, f"Invalid request: {problems}")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error")
