"""Ingestion routes: ``POST /vision-events``, ``/batch``, ``/upload``, ``/bundle`` and the
image URLs (spec §1.1 rows 1-3, §12.1)."""
from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from ..auth import WRITE_SCOPES
from ..body import MAX_JSON_BYTES, json_object, read_body
from ..bundle import MAX_BUNDLE_BYTES
from ..deps import needs, service
from ..errors import ApiError
from ..service import Service

router = APIRouter()
FORM_PART_BYTES = 64 * 1024  # the upload form's parts other than the file


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def json_body(request: Request, what: str) -> Dict[str, Any]:
    return json_object(await read_body(request, MAX_JSON_BYTES, what), what)


@router.post("/vision-events", status_code=201, dependencies=[needs(WRITE_SCOPES)])
async def create_event(request: Request, svc: Service = Depends(service)) -> Dict[str, Any]:
    body = await json_body(request, "Invalid event")
    # validation is CPU work: on a worker thread, like the write, so the loop keeps answering
    return await run_in_threadpool(svc.create_event, body)


@router.post("/vision-events/batch", status_code=201, dependencies=[needs(WRITE_SCOPES)])
async def create_batch(request: Request, svc: Service = Depends(service)) -> Dict[str, Any]:
    body = await json_body(request, "Invalid batch")
    return await run_in_threadpool(svc.create_batch, body)


@router.post("/vision-events/upload", status_code=201, dependencies=[needs(WRITE_SCOPES)])
async def upload_image(request: Request, svc: Service = Depends(service)) -> Dict[str, Any]:
    limit = svc.max_upload_bytes
    too_large = ApiError(413, f"Image is larger than the {limit // (1024 * 1024)} MB limit")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + FORM_PART_BYTES:
        raise too_large
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=FORM_PART_BYTES)
    except Exception as exc:  # malformed multipart, too many parts, oversized field
        detail = getattr(exc, "detail", None) or "multipart/form-data body with a file part is required"
        raise ApiError(400, f"Invalid upload: {detail}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "Invalid upload: file is required (multipart part named 'file')")
        content = await upload.read(limit + 1)
        name, metadata = form.get("name"), form.get("metadata")
    finally:
        await form.close()
    return await run_in_threadpool(svc.upload_image, content, name, metadata, base_url(request))


@router.post("/vision-events/bundle", status_code=201, dependencies=[needs(WRITE_SCOPES, query_key=True)])
async def ingest_bundle(request: Request, svc: Service = Depends(service)) -> Dict[str, Any]:
    raw = await read_body(request, MAX_BUNDLE_BYTES, "Invalid bundle")
    return await run_in_threadpool(svc.ingest_bundle, raw, request.query_params.get("useCaseId"))


@router.get("/vision-events/images/{filename}")
async def get_image(filename: str, svc: Service = Depends(service)) -> FileResponse:
    """No key needed: the random sourceId is the capability (see :mod:`..app`)."""
    path, content_type = await run_in_threadpool(svc.image_file, filename)
    return FileResponse(path, media_type=content_type)
