"""Reading routes and use cases: ``POST /vision-events/query``, the use-case routes and the
custom-metadata schema (spec §1.1 rows 4-10)."""
from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..auth import MANAGE_SCOPES, READ_SCOPES
from ..deps import needs, service
from ..service import Service
from .events import base_url, json_body

router = APIRouter()


@router.post("/vision-events/query", dependencies=[needs(READ_SCOPES)])
async def query_events(request: Request, svc: Service = Depends(service)) -> JSONResponse:
    body = await json_body(request, "Invalid query")
    # JSONResponse directly: FastAPI's generic encoder would walk every stored event again.
    return JSONResponse(await run_in_threadpool(svc.query, body, base_url(request)))


@router.get("/vision-events/use-cases", dependencies=[needs(READ_SCOPES)])
async def list_use_cases(status: str = "active", svc: Service = Depends(service)) -> Dict[str, Any]:
    return await run_in_threadpool(svc.list_use_cases, status)


@router.post("/vision-events/use-cases", status_code=201, dependencies=[needs(MANAGE_SCOPES)])
async def create_use_case(request: Request, svc: Service = Depends(service)) -> Dict[str, Any]:
    body = await json_body(request, "Invalid request")
    return await run_in_threadpool(svc.create_use_case, body)


@router.put("/vision-events/use-cases/{use_case_id}", dependencies=[needs(MANAGE_SCOPES)])
async def update_use_case(use_case_id: str, request: Request, svc: Service = Depends(service)) -> Dict[str, Any]:
    body = await json_body(request, "Invalid request")
    return await run_in_threadpool(svc.update_use_case, use_case_id, body)


@router.post("/vision-events/use-cases/{use_case_id}/archive", dependencies=[needs(MANAGE_SCOPES)])
async def archive_use_case(use_case_id: str, svc: Service = Depends(service)) -> Dict[str, Any]:
    return await run_in_threadpool(svc.archive_use_case, use_case_id)


@router.post("/vision-events/use-cases/{use_case_id}/unarchive", dependencies=[needs(MANAGE_SCOPES)])
async def unarchive_use_case(use_case_id: str, svc: Service = Depends(service)) -> Dict[str, Any]:
    return await run_in_threadpool(svc.unarchive_use_case, use_case_id)


@router.get("/vision-events/custom-metadata-schema/{use_case_id}", dependencies=[needs(READ_SCOPES)])
async def metadata_schema(use_case_id: str, svc: Service = Depends(service)) -> Dict[str, Any]:
    return await run_in_threadpool(svc.metadata_schema, use_case_id)
