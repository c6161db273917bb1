"""``POST /v2/events``: the edge Event Store endpoint (see :mod:`..event_store`); every
refusal is ``{"error", "detail"}``."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..auth import WRITE_SCOPES
from ..body import json_object, read_body
from ..deps import event_store_key, service
from ..errors import EventStoreError
from ..event_store import MAX_BODY_BYTES, idempotency_key
from ..service import Service

router = APIRouter()


@router.post("/v2/events", status_code=201, dependencies=[event_store_key(WRITE_SCOPES)])
async def create_v2_event(request: Request, svc: Service = Depends(service)) -> JSONResponse:
    event_id = idempotency_key(request.headers.get("idempotency-key")) or str(uuid.uuid4())
    raw = await read_body(request, MAX_BODY_BYTES, "", EventStoreError)
    body = json_object(raw, "", EventStoreError)
    return JSONResponse(await run_in_threadpool(svc.ingest_event_store, body, event_id), status_code=201)
