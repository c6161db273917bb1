"""What the server does, without HTTP: ingestion, queries, use cases (spec §1.1 rows 1-10).

:class:`Service` takes parsed bodies (dicts, bytes) and returns the JSON-ready answers; it
refuses with :class:`~.errors.ApiError` (status + a message naming the field). The routers
in :mod:`.routers` only authorize, read the body and hand it here, so every rule below can be
tested by calling a method. Calls do CPU and SQLite work: routers run them on a worker thread.

Rules chosen where the spec says UNCONFIRMED (see also :mod:`.app`):

* batches are all-or-nothing: one invalid event -> 400 naming its index, nothing written;
* an event naming an unknown or archived use case is a 400 naming the field; routes whose
  subject is the use case answer 404 ``Solution not found``;
* an image id never uploaded here is accepted and flags the event ``hasWarnings``;
* a bundle's archive, images and event are all checked before anything is written.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar

from pydantic import BaseModel, ValidationError

from ..api.media import CONTENT_TYPES, SUPPORTED_IMAGES, sniff_image
from ..api.models import (
    MAX_BATCH_EVENTS,
    MAX_TEXT_LENGTH,
    USE_CASE_STATUSES,
    BatchCreateRequest,
    CreateUseCaseRequest,
    QueryRequest,
    UpdateUseCaseRequest,
    VisionEvent,
    validate_custom_metadata,
)
from ..api.validation import error_text
from .body import parse_json
from .bundle import BundleError, read_bundle, referenced_files
from .errors import ApiError, EventStoreError
from .event_store import to_wire_event
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

log = logging.getLogger("vision_events_blocks.server")

__all__ = ["NAME_TAKEN", "SOLUTION_NOT_FOUND", "Service", "image_url", "validated"]

SOLUTION_NOT_FOUND = "Solution not found"
NAME_TAKEN = "A solution with this name already exists"
IMAGE_FILENAME = re.compile(r"^(ve-img-[0-9a-f]{24})\.([a-z]{3,4})$")
NOT_AN_IMAGE = f"not a supported image ({SUPPORTED_IMAGES})"
Model = TypeVar("Model", bound=BaseModel)


def validated(model: Type[Model], body: Any, prefix: str) -> Model:
    """``body`` as ``model``, or a 400 ``<prefix>: field: problem; ...``."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiError(400, f"{prefix}: {error_text(exc)}") from None


def image_url(base: str, source_id: str, ext: str) -> str:
    """Where the image route serves a stored image (the form ``IMAGE_FILENAME`` accepts)."""
    return f"{base}/vision-events/images/{source_id}.{ext}"


def _mb(limit: int) -> int:
    return limit // (1024 * 1024)


@dataclass
class Service:
    """The server's behaviour on one :class:`Store`."""

    store: Store
    cursors: CursorCodec
    lookback_days: int
    max_upload_bytes: int
    default_event_store_use_case: Optional[str] = None  # /v2/events bodies without ``solution``

    # -- ingestion ---------------------------------------------------------------------------
    def _check_use_cases(self, events: List[VisionEvent], where: List[str]) -> None:
        active = self.store.active_use_case_ids(e.use_case_id for e in events)
        for event, path in zip(events, where):
            if event.use_case_id not in active:
                raise ApiError(
                    400,
                    f"Invalid event: {path}useCaseId: {SOLUTION_NOT_FOUND} "
                    f"(no active use case {event.use_case_id!r}; archived use cases do not accept events)",
                )

    def _ingest(self, events: List[VisionEvent], where: List[str]) -> None:
        """Check use cases, then write everything in one transaction (all-or-nothing)."""
        self._check_use_cases(events, where)
        known = set(self.store.image_exts(i for e in events for i in image_ids(e)))
        self.store.put_events([event_row(e, known) for e in events])

    def create_event(self, body: Dict[str, Any]) -> Dict[str, Any]:
        event = validated(VisionEvent, body, "Invalid event")
        self._ingest([event], [""])
        return {"eventId": event.event_id, "created": True}

    def create_batch(self, body: Dict[str, Any]) -> Dict[str, Any]:
        events = body.get("events")
        if isinstance(events, list) and len(events) > MAX_BATCH_EVENTS:
            raise ApiError(400, f"Invalid batch: events holds {len(events)} events; at most {MAX_BATCH_EVENTS} per batch")
        batch = validated(BatchCreateRequest, body, "Invalid event")
        self._ingest(batch.events, [f"events[{i}]." for i in range(len(batch.events))])
        return {"created": len(batch.events), "eventIds": [e.event_id for e in batch.events]}

    def upload_image(self, content: bytes, name: Any, raw_metadata: Any, base: str) -> Dict[str, Any]:
        """Store an uploaded image: a supported type by its magic bytes, an optional ``name``
        and flat ``metadata`` (JSON text)."""
        if len(content) > self.max_upload_bytes:
            raise ApiError(413, f"Image is larger than the {_mb(self.max_upload_bytes)} MB limit")
        ext = sniff_image(content)
        if ext is None:
            raise ApiError(400, f"Invalid upload: file is not a supported image ({SUPPORTED_IMAGES})")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_TEXT_LENGTH):
            raise ApiError(400, f"Invalid upload: name must be a string of at most {MAX_TEXT_LENGTH} characters")
        metadata: Dict[str, Any] = {}
        if raw_metadata not in (None, ""):
            try:
                metadata = validate_custom_metadata(parse_json(str(raw_metadata)), "metadata")
            except ValueError as exc:  # not JSON, or not flat metadata
                raise ApiError(400, f"Invalid upload: metadata: {exc}") from None
        source_id = self.store.save_image(content, ext, CONTENT_TYPES[ext], name, metadata)
        return {"success": True, "sourceId": source_id, "url": image_url(base, source_id, ext)}

    def ingest_bundle(self, raw: bytes, use_case_id: Optional[str]) -> Dict[str, Any]:
        """A bundle (§12.1): check everything (archive, images, event) before writing anything."""
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
            if len(content) > self.max_upload_bytes:
                raise ApiError(413, f"{where}: image is larger than the {_mb(self.max_upload_bytes)} MB limit")
            ext = sniff_image(content)
            if ext is None:
                raise ApiError(400, f"{where}: {NOT_AN_IMAGE}")
            image = payload["images"][index]
            del image[file_key]
            image[wire_key] = new_source_id()
            pending.append((image[wire_key], content, ext))
        event = validated(VisionEvent, payload, "Invalid event")
        self._check_use_cases([event], [""])
        self._save_images(pending)
        self._ingest([event], [""])
        return {"success": True, "eventId": event.event_id, "created": True}

    def ingest_event_store(self, body: Dict[str, Any], event_id: str) -> Dict[str, Any]:
        """A ``/v2/events`` body (see :mod:`.event_store`): validate everything, then save the
        images and the event (nothing written on a refusal)."""
        event, pending = to_wire_event(body, event_id, self.max_upload_bytes, self.default_event_store_use_case)
        if event.use_case_id not in self.store.active_use_case_ids([event.use_case_id]):
            raise EventStoreError(400, f"solution: {SOLUTION_NOT_FOUND} (no active use case {event.use_case_id[:100]!r})")
        self._save_images(pending)
        known = set(self.store.image_exts(image_ids(event)))
        self.store.put_events([event_row(event, known)])
        return {"id": event.event_id}

    def _save_images(self, pending: List[Tuple[str, bytes, str]]) -> None:
        for source_id, content, ext in pending:
            self.store.save_image(content, ext, CONTENT_TYPES[ext], None, {}, source_id=source_id)

    def image_file(self, filename: str) -> Tuple[Path, str]:
        """The stored file and content type behind an image URL's last segment, else 404."""
        match = IMAGE_FILENAME.match(filename)
        found = self.store.image_file(match.group(1)) if match else None
        if found is None or found[0].suffix != f".{match.group(2)}":
            raise ApiError(404, "Image not found")
        return found

    # -- queries -----------------------------------------------------------------------------
    def query(self, body: Dict[str, Any], base: str) -> Dict[str, Any]:
        """One page of events, newest first, with image URLs and the next cursor."""
        if "useCaseId" not in body:
            raise ApiError(400, "Invalid query: useCaseId is required")
        query = validated(QueryRequest, body, "Invalid query")
        try:
            after = self.cursors.decode(query.use_case_id, query.cursor) if query.cursor else None
        except InvalidCursor as exc:
            raise ApiError(400, f"Invalid query: {exc}") from None
        self.use_case(query.use_case_id)
        sql, params = build_query(query, self._cutoff(), after)
        rows = self.store.read(sql, params)
        page, has_more = rows[: query.limit], len(rows) > query.limit
        events = [json.loads(r["body"]) for r in page]
        self._add_image_urls(events, base)
        response: Dict[str, Any] = {"events": events, "hasMore": has_more}
        if has_more:
            last = page[-1]
            response["nextCursor"] = self.cursors.encode(query.use_case_id, CursorKey(last["ts_us"], last["event_id"]))
        response["lookbackDays"] = self.lookback_days
        return response

    def _add_image_urls(self, events: List[Dict[str, Any]], base: str) -> None:
        images = [img for e in events for img in e.get("images", ())]
        exts = self.store.image_exts(i for img in images for i in (img.get("sourceId"), img.get("inputSourceId")) if i)
        for img in images:
            for id_key, url_key in (("sourceId", "url"), ("inputSourceId", "inputUrl")):
                ext = exts.get(img.get(id_key))
                if ext:
                    img[url_key] = image_url(base, img[id_key], ext)

    def _cutoff(self) -> int:
        return cutoff_micros(self.lookback_days)

    def purge_expired(self) -> int:
        """Retention: delete events older than ``lookbackDays``; how many went."""
        return self.store.purge_before(self._cutoff())

    # -- use cases ---------------------------------------------------------------------------
    def use_case(self, use_case_id: str) -> Dict[str, Any]:
        use_case = self.store.get_use_case(use_case_id)
        if use_case is None:
            raise ApiError(404, SOLUTION_NOT_FOUND)
        return use_case

    def list_use_cases(self, status: str) -> Dict[str, Any]:
        if status not in USE_CASE_STATUSES:
            raise ApiError(400, f"Invalid request: status must be 'active' or 'inactive', got {status[:50]!r}")
        rows = self.store.list_use_cases(status, self._cutoff())
        return {"useCases": [_use_case_wire(r) for r in rows], "lookbackDays": self.lookback_days}

    def create_use_case(self, body: Dict[str, Any]) -> Dict[str, Any]:
        request = validated(CreateUseCaseRequest, body, "Invalid request")
        try:
            row = self.store.create_use_case(request.name)
        except NameTaken:
            raise ApiError(400, NAME_TAKEN) from None
        return {"id": row["id"], "name": row["name"]}

    def _change(self, use_case_id: str, name: Optional[str] = None, status: Optional[str] = None) -> Dict[str, Any]:
        try:
            return self.store.update_use_case(use_case_id, name, status)
        except UseCaseNotFound:
            raise ApiError(404, SOLUTION_NOT_FOUND) from None
        except NameTaken:
            raise ApiError(400, NAME_TAKEN) from None

    def update_use_case(self, use_case_id: str, body: Dict[str, Any]) -> Dict[str, Any]:
        request = validated(UpdateUseCaseRequest, body, "Invalid request")
        row = self._change(use_case_id, request.name, request.status)
        return {"id": row["id"], "name": row["name"], "status": row["status"]}

    def archive_use_case(self, use_case_id: str) -> Dict[str, Any]:
        """Archiving an archived use case is a no-op (safe to retry)."""
        self._change(use_case_id, status="inactive")
        return {"success": True}

    def unarchive_use_case(self, use_case_id: str) -> Dict[str, Any]:
        if self.use_case(use_case_id)["status"] != "inactive":
            raise ApiError(400, "Solution is not archived")
        self._change(use_case_id, status="active")
        return {"success": True}

    def metadata_schema(self, use_case_id: str) -> Dict[str, Any]:
        self.use_case(use_case_id)
        fields = self.store.metadata_schema(use_case_id, self._cutoff())
        return {"fields": {k: {"types": v} for k, v in fields.items()}, "useCaseId": use_case_id}


def _use_case_wire(row: Dict[str, Any]) -> Dict[str, Any]:
    wire = {
        "id": row["id"], "name": row["name"], "status": row["status"], "workspaceId": WORKSPACE_ID,
        "createdAt": row["created_at"], "updatedAt": row["updated_at"],
    }
    if "event_count" in row:
        wire["eventCount"] = row["event_count"]
    return wire
