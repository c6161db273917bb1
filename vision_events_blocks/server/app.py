"""The FastAPI app: every Vision Events endpoint (spec §1.1 rows 1-10) on a :class:`Store`.

The app is assembled here: the :class:`~.service.Service` (what the server does, without
HTTP), the routers of :mod:`.routers` (auth as a dependency stating each route's scope), the
error shaping of :mod:`.errors`, the fault middleware and the retention task.

Behaviour chosen where the spec says UNCONFIRMED (safest for the user; also in the README):

* Errors are always exactly ``{"error": "..."}`` -- also for unknown routes (404), wrong
  methods (405), framework validation (400, never 422) and crashes (500, generic message).
* Validation messages name the field: ``Invalid event: events[3].customMetadata: ...``.
* Unknown top-level or ``eventData`` keys are rejected (the wire models forbid them).
* An event naming an unknown or archived use case is a **400** naming the field (it is a bad
  body); routes whose subject is the use case (query, schema, update, archive) answer **404**
  ``Solution not found``.
* Batches are **all-or-nothing**: one invalid event -> 400 naming its index, nothing written.
  ``created`` is the number of events written (new or overwritten).
* A duplicate ``eventId`` overwrites; the answer is still 201 ``{"eventId", "created": true}``.
* An image id that was never uploaded here is accepted, and the event is flagged
  ``hasWarnings`` (the dashboard's "ingestion warnings"), not rejected.
* Uploads: at most 20 MB (413), only the image types of spec §4 by magic bytes (400).
  Image files are served without a key at the ``url`` the upload returns: the 96-bit random
  ``sourceId`` makes it a capability URL, like a signed storage URL.
* Archiving an archived use case is a no-op 200 (safe to retry).
* Retention: events older than ``lookbackDays`` are accepted if inside the one-year timestamp
  window, never returned, and deleted at start and hourly.
* Use cases are listed even before they have events (with ``eventCount``).
* The key is accepted only in ``Authorization: Bearer``; ``?api_key=`` is refused (401) so
  that keys stay out of URLs and logs -- except on ``/vision-events/bundle``, where the docs
  allow it. Access-log lines redact ``api_key=`` values.
* Bundles (§12.1): 201 ``{"success": true, "eventId", "created": true}``; the archive, its
  images and the event are all checked before anything is written.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Sequence

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from . import DEFAULT_LOOKBACK_DAYS
from .auth import KeyRing, KeySpec
from .errors import install_error_handlers
from .event_store import DEFAULT_USE_CASE_ENV
from .faults import FaultMiddleware, FaultSettings, FaultState, RequestLog
from .query import CursorCodec
from .routers import admin, event_store, events, use_cases
from .service import Service, image_url, validated
from .store import Store
from .viewer import ViewerHooks, mount_viewer

log = logging.getLogger("vision_events_blocks.server")

__all__ = ["MAX_UPLOAD_BYTES", "RedactApiKeys", "ServerConfig", "create_app"]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PURGE_INTERVAL_S = 3600.0


class RedactApiKeys(logging.Filter):
    """Access-log lines print the query string; hide any ``api_key=`` value in it."""

    _pattern = re.compile(r"(api_key=)[^&\s\"]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._pattern.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


@dataclass
class ServerConfig:
    data_dir: Path
    api_keys: Sequence[KeySpec]
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    enable_admin: bool = False           # /_admin/faults and /_admin/requests
    faults: FaultSettings = field(default_factory=FaultSettings)
    max_upload_bytes: int = MAX_UPLOAD_BYTES

    def __repr__(self) -> str:
        return f"ServerConfig(data_dir={str(self.data_dir)!r}, keys={len(self.api_keys)}, lookback_days={self.lookback_days})"


def _load_secret(data_dir: Path, name: str) -> bytes:
    """A random secret kept in the data dir, so cursors stay valid across restarts."""
    path = data_dir / name
    if not path.exists():
        path.write_bytes(secrets.token_bytes(32))
        os.chmod(path, 0o600)
    return path.read_bytes()


def include_routers(app: FastAPI, config: ServerConfig) -> None:
    """Every router the app serves, in one place (add a new one here); ``app.state.routers``
    lists them, for whoever needs the route table (FastAPI keeps included routers nested)."""
    routers = [events.router, use_cases.router, event_store.router, admin.health]
    if config.enable_admin:
        routers.append(admin.admin)
    for router in routers:
        app.include_router(router)
    app.state.routers = routers


def create_app(config: ServerConfig) -> FastAPI:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir)
    service = Service(
        store, CursorCodec(_load_secret(config.data_dir, "cursor-secret")), config.lookback_days,
        config.max_upload_bytes, default_event_store_use_case=os.environ.get(DEFAULT_USE_CASE_ENV) or None,
    )
    faults = FaultState(config.faults)
    request_log = RequestLog() if config.enable_admin else None

    async def purge_expired_events() -> None:
        """Retention: drop events older than ``lookbackDays`` (queries already hide them; this
        keeps the database from growing without bound)."""
        deleted = await run_in_threadpool(service.purge_expired)
        if deleted:
            log.info("retention: deleted %d events older than %d days", deleted, config.lookback_days)

    async def purge_hourly() -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL_S)
            await purge_expired_events()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logging.getLogger("uvicorn.access").addFilter(RedactApiKeys())  # after uvicorn set up logging
        await purge_expired_events()  # before the first request is served
        purger = asyncio.create_task(purge_hourly())
        yield
        purger.cancel()
        with suppress(asyncio.CancelledError):
            await purger
        store.close()

    app = FastAPI(title="Vision Events (local)", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.service = service
    app.state.keys = KeyRing(config.api_keys)
    app.state.faults = faults
    app.state.request_log = request_log
    app.add_middleware(FaultMiddleware, faults=faults, log=request_log)
    install_error_handlers(app)
    include_routers(app, config)
    keys = app.state.keys
    mount_viewer(app, ViewerHooks(  # the event viewer (issue 14): pages + read-only JSON twins
        store, config.lookback_days,
        authorize=lambda request, scopes: keys.authorize(request.headers.get("authorization"), scopes),
        json_body=events.json_body, validate=validated, image_url=image_url))
    return app
