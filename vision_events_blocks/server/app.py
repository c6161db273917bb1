"""The FastAPI app: every Vision Events endpoint (spec §1.1 rows 1-10) on a :class:`Store`.

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
import json
import logging
import os
import re
import secrets
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..api.models import (
    MAX_BATCH_EVENTS,
    BatchCreateRequest,
    CreateUseCaseRequest,
    QueryRequest,
    UpdateUseCaseRequest,
    VisionEvent,
    validate_custom_metadata,
)
from . import DEFAULT_LOOKBACK_DAYS
from .auth import MANAGE_SCOPES, READ_SCOPES, WRITE_SCOPES, AuthError, KeyRing, KeySpec
from .bundle import MAX_BUNDLE_BYTES, BundleError, read_bundle, referenced_files
from .event_store import build_router as build_event_store_router
from .faults import FaultMiddleware, FaultSettings, FaultState, RequestLog
from .query import CursorCodec, CursorKey, InvalidCursor, build_query
from .store import (
    WORKSPACE_ID,
    NameTaken,
    Store,
    UseCaseNotFound,
    cutoff_micros,
    event_row,
    image_ids,
    new_source_id,
)
from .viewer import ViewerHooks, mount_viewer

log = logging.getLogger("vision_events_blocks.server")

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_JSON_BYTES = 32 * 1024 * 1024
PURGE_INTERVAL_S = 3600.0
SOLUTION_NOT_FOUND = "Solution not found"
NAME_TAKEN = "A solution with this name already exists"
IMAGE_FILENAME = re.compile(r"^(ve-img-[0-9a-f]{24})\.([a-z]{3,4})$")


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


class ApiError(Exception):
    def __init__(self, status_code: int, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


def _error(status_code: int, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


# ---------------------------------------------------------------------------------------------
# Validation messages
# ---------------------------------------------------------------------------------------------
def _location(loc: Sequence[Any]) -> str:
    """``('events', 3, 'customMetadata')`` -> ``events[3].customMetadata``; drops pydantic's
    internal union/function tags so the path reads like the JSON."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w -]*", str(part)) and not str(part)[0].isupper():
            text += f".{part}" if text else str(part)
    return text


def describe(exc: ValidationError, limit: int = 3) -> str:
    """The first few problems of a pydantic error, each as ``field: message``."""
    problems = []
    for err in exc.errors()[:limit]:
        message = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        where = _location(err["loc"])
        problems.append(f"{where}: {message}" if where else message)
    more = len(exc.errors()) - limit
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _validate(model: type, body: Any, prefix: str) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiError(400, f"{prefix}: {describe(exc)}") from None


# ---------------------------------------------------------------------------------------------
# Image type sniffing (spec §4: JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC, AVIF)
# ---------------------------------------------------------------------------------------------
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def sniff_image(head: bytes) -> Optional[tuple]:
    """``(extension, content type)`` from the file's magic bytes, or ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg", "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif", "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff", "image/tiff"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp", "image/bmp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "avif", "image/avif"
        if brand in _HEIC_BRANDS:
            return "heic", "image/heic"
    return None


# ---------------------------------------------------------------------------------------------
# App
# ---------------------------------------------------------------------------------------------
def _load_secret(data_dir: Path, name: str) -> bytes:
    """A random secret kept in the data dir, so cursors stay valid across restarts."""
    path = data_dir / name
    if not path.exists():
        path.write_bytes(secrets.token_bytes(32))
        os.chmod(path, 0o600)
    return path.read_bytes()


def create_app(config: ServerConfig) -> FastAPI:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir)
    keys = KeyRing(config.api_keys)
    cursors = CursorCodec(_load_secret(config.data_dir, "cursor-secret"))
    faults = FaultState(config.faults)
    request_log = RequestLog() if config.enable_admin else None

    async def purge_expired_events() -> None:
        """Retention: drop events older than ``lookbackDays`` (queries already hide them; this
        keeps the database from growing without bound)."""
        deleted = await run_in_threadpool(store.purge_before, cutoff_micros(config.lookback_days))
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
    app.state.faults = faults
    app.add_middleware(FaultMiddleware, faults=faults, log=request_log)

    # -- errors: always {"error": "..."} ----------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status_code, exc.message, exc.headers)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
        return _error(exc.status_code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{_location(e['loc'][1:])}: {e['msg']}" for e in exc.errors()[:3])
        return _error(400, f"Invalid request: {problems}")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "Internal server error")

    # -- helpers -----------------------------------------------------------------------------
    def authorize(request: Request, needed: frozenset) -> None:
        if "api_key" in request.query_params and "authorization" not in request.headers:
            raise AuthError(401, "Send the API key as 'Authorization: Bearer <key>'; ?api_key= is not accepted")
        keys.authorize(request.headers.get("authorization"), needed)

    async def read_body(request: Request, limit: int, what: str) -> bytes:
        too_large = ApiError(413, f"{what}: body is larger than {limit // (1024 * 1024)} MB")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():  # a chunked body is cut off at the limit too
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def json_body(request: Request, what: str) -> Any:
        raw = await read_body(request, MAX_JSON_BYTES, what)
        if not raw.strip():
            raise ApiError(400, f"{what}: the body must be a JSON object")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"{what}: body is not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ApiError(400, f"{what}: the body must be a JSON object, not {type(body).__name__}")
        return body

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def image_url(base: str, source_id: str, ext: str) -> str:
        """Where ``get_image`` serves a stored image (the form ``IMAGE_FILENAME`` accepts)."""
        return f"{base}/vision-events/images/{source_id}.{ext}"

    def use_case_or_404(use_case_id: str) -> Dict[str, Any]:
        use_case = store.get_use_case(use_case_id)
        if use_case is None:
            raise ApiError(404, SOLUTION_NOT_FOUND)
        return use_case

    def check_use_cases(events: List[VisionEvent], where: List[str]) -> None:
        active = store.active_use_case_ids(e.use_case_id for e in events)
        for event, path in zip(events, where):
            if event.use_case_id not in active:
                raise ApiError(
                    400,
                    f"Invalid event: {path}useCaseId: {SOLUTION_NOT_FOUND} "
                    f"(no active use case {event.use_case_id!r}; archived use cases do not accept events)",
                )

    def ingest(events: List[VisionEvent], where: List[str]) -> None:
        """Check use cases, then write everything in one transaction (all-or-nothing)."""
        check_use_cases(events, where)
        known = set(store.image_exts(i for e in events for i in image_ids(e)))
        store.put_events([event_row(e, known) for e in events])

    def validate_and_ingest(model: type, body: Dict[str, Any]) -> Any:
        """Validation is CPU work: it runs on a worker thread, like the write, so the event
        loop keeps answering other clients."""
        parsed = _validate(model, body, "Invalid event")
        if isinstance(parsed, BatchCreateRequest):
            ingest(parsed.events, [f"events[{i}]." for i in range(len(parsed.events))])
        else:
            ingest([parsed], [""])
        return parsed

    # -- events ------------------------------------------------------------------------------
    @app.post("/vision-events", status_code=201)
    async def create_event(request: Request) -> Dict[str, Any]:
        authorize(request, WRITE_SCOPES)
        body = await json_body(request, "Invalid event")
        event = await run_in_threadpool(validate_and_ingest, VisionEvent, body)
        return {"eventId": event.event_id, "created": True}

    @app.post("/vision-events/batch", status_code=201)
    async def create_batch(request: Request) -> Dict[str, Any]:
        authorize(request, WRITE_SCOPES)
        body = await json_body(request, "Invalid batch")
        events = body.get("events")
        if isinstance(events, list) and len(events) > MAX_BATCH_EVENTS:
            raise ApiError(400, f"Invalid batch: events holds {len(events)} events; at most {MAX_BATCH_EVENTS} per batch")
        batch = await run_in_threadpool(validate_and_ingest, BatchCreateRequest, body)
        return {"created": len(batch.events), "eventIds": [e.event_id for e in batch.events]}

    @app.post("/vision-events/upload", status_code=201)
    async def upload_image(request: Request) -> Dict[str, Any]:
        authorize(request, WRITE_SCOPES)
        limit = config.max_upload_bytes
        too_large = ApiError(413, f"Image is larger than the {limit // (1024 * 1024)} MB limit")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:  # + the form's other parts
            raise too_large
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=64 * 1024)
        except Exception as exc:  # malformed multipart, too many parts, oversized field
            raise ApiError(400, f"Invalid upload: {getattr(exc, 'detail', None) or 'multipart/form-data body with a file part is required'}") from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "Invalid upload: file is required (multipart part named 'file')")
            content = await upload.read(limit + 1)
            if len(content) > limit:
                raise too_large
            kind = sniff_image(content[:32])
            if kind is None:
                raise ApiError(400, "Invalid upload: file is not a supported image (JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC, AVIF)")
            name = form.get("name")
            if name is not None and (not isinstance(name, str) or len(name) > 1000):
                raise ApiError(400, "Invalid upload: name must be a string of at most 1000 characters")
            metadata: Dict[str, Any] = {}
            raw_metadata = form.get("metadata")
            if raw_metadata not in (None, ""):
                try:
                    metadata = validate_custom_metadata(json.loads(str(raw_metadata)), "metadata")
                except ValueError as exc:  # JSONDecodeError is a ValueError too
                    raise ApiError(400, f"Invalid upload: metadata: {exc}") from None
        finally:
            await form.close()
        ext, content_type = kind
        source_id = await run_in_threadpool(store.save_image, content, ext, content_type, name, metadata)
        return {"success": True, "sourceId": source_id, "url": image_url(base_url(request), source_id, ext)}

    @app.post("/vision-events/bundle", status_code=201)
    async def ingest_bundle(request: Request) -> Dict[str, Any]:
        header = request.headers.get("authorization")
        if header is None and "api_key" in request.query_params:  # documented for this endpoint only
            header = f"Bearer {request.query_params['api_key']}"
        keys.authorize(header, WRITE_SCOPES)
        raw = await read_body(request, MAX_BUNDLE_BYTES, "Invalid bundle")
        return await run_in_threadpool(store_bundle, raw, request.query_params.get("useCaseId"))

    def store_bundle(raw: bytes, use_case_id: Optional[str]) -> Dict[str, Any]:
        """Check everything (archive, images, event) before writing anything."""
        try:
            payload, files = read_bundle(raw)
            references = referenced_files(payload)
        except BundleError as exc:
            raise ApiError(413 if exc.too_large else 400, f"Invalid bundle: {exc}") from None
        if use_case_id:
            payload["useCaseId"] = use_case_id
        pending = []
        for index, file_key, wire_key, member in references:
            where = f"Invalid bundle: images[{index}].{file_key}"
            content = files.get(member)
            if content is None:
                raise ApiError(400, f"{where}: the archive has no member {member[:200]!r}")
            if len(content) > config.max_upload_bytes:
                raise ApiError(413, f"{where}: image is larger than the {config.max_upload_bytes // (1024 * 1024)} MB limit")
            kind = sniff_image(content[:32])
            if kind is None:
                raise ApiError(400, f"{where}: not a supported image (JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC, AVIF)")
            image = payload["images"][index]
            del image[file_key]
            image[wire_key] = new_source_id()
            pending.append((image[wire_key], content, kind))
        event = _validate(VisionEvent, payload, "Invalid event")
        check_use_cases([event], [""])
        for source_id, content, (ext, content_type) in pending:
            store.save_image(content, ext, content_type, None, {}, source_id=source_id)
        ingest([event], [""])
        return {"success": True, "eventId": event.event_id, "created": True}

    @app.get("/vision-events/images/{filename}")
    async def get_image(filename: str) -> FileResponse:
        """No key needed: the random sourceId is the capability (see module docstring)."""
        match = IMAGE_FILENAME.match(filename)
        found = await run_in_threadpool(store.image_file, match.group(1)) if match else None
        if found is None or found[0].suffix != f".{match.group(2)}":
            raise ApiError(404, "Image not found")
        return FileResponse(found[0], media_type=found[1])

    # -- query -------------------------------------------------------------------------------
    @app.post("/vision-events/query")
    async def query_events(request: Request) -> JSONResponse:
        authorize(request, READ_SCOPES)
        body = await json_body(request, "Invalid query")
        if "useCaseId" not in body:
            raise ApiError(400, "Invalid query: useCaseId is required")
        query = _validate(QueryRequest, body, "Invalid query")
        try:
            after = cursors.decode(query.use_case_id, query.cursor) if query.cursor else None
        except InvalidCursor as exc:
            raise ApiError(400, f"Invalid query: {exc}") from None
        # JSONResponse directly: FastAPI's generic encoder would walk every stored event again.
        return JSONResponse(await run_in_threadpool(run_query, query, after, base_url(request)))

    def run_query(query: QueryRequest, after: Optional[CursorKey], base: str) -> Dict[str, Any]:
        use_case_or_404(query.use_case_id)
        sql, params = build_query(query, cutoff_micros(config.lookback_days), after)
        rows = store.read(sql, params)
        page, has_more = rows[: query.limit], len(rows) > query.limit
        events = [json.loads(r["body"]) for r in page]
        _add_image_urls(events, base)
        response: Dict[str, Any] = {"events": events, "hasMore": has_more}
        if has_more:
            last = page[-1]
            response["nextCursor"] = cursors.encode(query.use_case_id, CursorKey(last["ts_us"], last["event_id"]))
        response["lookbackDays"] = config.lookback_days
        return response

    def _add_image_urls(events: List[Dict[str, Any]], base: str) -> None:
        images = [img for e in events for img in e.get("images", ())]
        exts = store.image_exts(i for img in images for i in (img.get("sourceId"), img.get("inputSourceId")) if i)
        for img in images:
            for id_key, url_key in (("sourceId", "url"), ("inputSourceId", "inputUrl")):
                ext = exts.get(img.get(id_key))
                if ext:
                    img[url_key] = image_url(base, img[id_key], ext)

    # -- use cases ---------------------------------------------------------------------------
    def use_case_wire(row: Dict[str, Any]) -> Dict[str, Any]:
        wire = {
            "id": row["id"], "name": row["name"], "status": row["status"], "workspaceId": WORKSPACE_ID,
            "createdAt": row["created_at"], "updatedAt": row["updated_at"],
        }
        if "event_count" in row:
            wire["eventCount"] = row["event_count"]
        return wire

    @app.get("/vision-events/use-cases")
    async def list_use_cases(request: Request, status: str = "active") -> Dict[str, Any]:
        authorize(request, READ_SCOPES)
        if status not in ("active", "inactive"):
            raise ApiError(400, f"Invalid request: status must be 'active' or 'inactive', got {status[:50]!r}")
        rows = await run_in_threadpool(store.list_use_cases, status, cutoff_micros(config.lookback_days))
        return {"useCases": [use_case_wire(r) for r in rows], "lookbackDays": config.lookback_days}

    @app.post("/vision-events/use-cases", status_code=201)
    async def create_use_case(request: Request) -> Dict[str, Any]:
        authorize(request, MANAGE_SCOPES)
        body = _validate(CreateUseCaseRequest, await json_body(request, "Invalid request"), "Invalid request")
        try:
            row = await run_in_threadpool(store.create_use_case, body.name)
        except NameTaken:
            raise ApiError(400, NAME_TAKEN) from None
        return {"id": row["id"], "name": row["name"]}

    def change_use_case(use_case_id: str, name: Optional[str] = None, status: Optional[str] = None) -> Dict[str, Any]:
        try:
            return store.update_use_case(use_case_id, name, status)
        except UseCaseNotFound:
            raise ApiError(404, SOLUTION_NOT_FOUND) from None
        except NameTaken:
            raise ApiError(400, NAME_TAKEN) from None

    @app.put("/vision-events/use-cases/{use_case_id}")
    async def update_use_case(use_case_id: str, request: Request) -> Dict[str, Any]:
        authorize(request, MANAGE_SCOPES)
        body = _validate(UpdateUseCaseRequest, await json_body(request, "Invalid request"), "Invalid request")
        row = await run_in_threadpool(change_use_case, use_case_id, body.name, body.status)
        return {"id": row["id"], "name": row["name"], "status": row["status"]}

    @app.post("/vision-events/use-cases/{use_case_id}/archive")
    async def archive_use_case(use_case_id: str, request: Request) -> Dict[str, Any]:
        authorize(request, MANAGE_SCOPES)
        await run_in_threadpool(change_use_case, use_case_id, status="inactive")
        return {"success": True}

    @app.post("/vision-events/use-cases/{use_case_id}/unarchive")
    async def unarchive_use_case(use_case_id: str, request: Request) -> Dict[str, Any]:
        authorize(request, MANAGE_SCOPES)
        use_case = await run_in_threadpool(use_case_or_404, use_case_id)
        if use_case["status"] != "inactive":
            raise ApiError(400, "Solution is not archived")
        await run_in_threadpool(change_use_case, use_case_id, status="active")
        return {"success": True}

    @app.get("/vision-events/custom-metadata-schema/{use_case_id}")
    async def metadata_schema(use_case_id: str, request: Request) -> Dict[str, Any]:
        authorize(request, READ_SCOPES)
        await run_in_threadpool(use_case_or_404, use_case_id)
        fields = await run_in_threadpool(store.metadata_schema, use_case_id, cutoff_micros(config.lookback_days))
        return {"fields": {k: {"types": v} for k, v in fields.items()}, "useCaseId": use_case_id}

    app.include_router(build_event_store_router(store, keys, max_image_bytes=config.max_upload_bytes, sniff=sniff_image))
    mount_viewer(app, ViewerHooks(store, config.lookback_days, authorize, json_body, _validate, image_url))  # issue 14

    # -- health and admin --------------------------------------------------------------------
    @app.get("/_health")
    async def health() -> Dict[str, Any]:
        return {"status": "ok"}

    if config.enable_admin:
        assert request_log is not None

        @app.get("/_admin/faults")
        async def get_faults(request: Request) -> Dict[str, Any]:
            authorize(request, MANAGE_SCOPES)
            return faults.describe()

        @app.put("/_admin/faults")
        async def put_faults(request: Request) -> Dict[str, Any]:
            authorize(request, MANAGE_SCOPES)
            faults.set(_validate(FaultSettings, await json_body(request, "Invalid faults"), "Invalid faults"))
            return faults.describe()

        @app.get("/_admin/requests")
        async def get_requests(request: Request) -> Dict[str, Any]:
            authorize(request, MANAGE_SCOPES)
            return {"requests": request_log.entries()}

        @app.delete("/_admin/requests")
        async def clear_requests(request: Request) -> Dict[str, Any]:
            authorize(request, MANAGE_SCOPES)
            request_log.clear()
            return {"success": True}

    return app
