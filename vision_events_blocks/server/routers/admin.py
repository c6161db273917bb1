"""``GET /_health``, and with ``enable_admin`` the fault-injection and request-log routes
(:mod:`..faults`), which need the manage scope."""
from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, Request

from ..auth import MANAGE_SCOPES
from ..deps import needs
from ..faults import FaultSettings, FaultState, RequestLog
from ..service import validated
from .events import json_body

health = APIRouter()
admin = APIRouter(dependencies=[needs(MANAGE_SCOPES)])


@health.get("/_health")
async def get_health() -> Dict[str, Any]:
    return {"status": "ok"}


def _faults(request: Request) -> FaultState:
    return request.app.state.faults


def _request_log(request: Request) -> RequestLog:
    return request.app.state.request_log


@admin.get("/_admin/faults")
async def get_faults(request: Request) -> Dict[str, Any]:
    return _faults(request).describe()


@admin.put("/_admin/faults")
async def put_faults(request: Request) -> Dict[str, Any]:
    settings = validated(FaultSettings, await json_body(request, "Invalid faults"), "Invalid faults")
    _faults(request).set(settings)
    return _faults(request).describe()


@admin.get("/_admin/requests")
async def get_requests(request: Request) -> Dict[str, Any]:
    return {"requests": _request_log(request).entries()}


@admin.delete("/_admin/requests")
async def clear_requests(request: Request) -> Dict[str, Any]:
    _request_log(request).clear()
    return {"success": True}
