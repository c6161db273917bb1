"""Opt-in fault injection and the request log, as one ASGI middleware.

Faults apply only to the API routes (``/vision-events...`` and the Event Store's ``/v2/...``),
before authentication, the way a failing load balancer would answer: an outage window (503 +
``Retry-After`` for N seconds), random 429s (with ``Retry-After``), random 503s, added
latency, and -- on the Event Store routes only -- random 529s (the edge device's
back-pressure, with ``Retry-After``). They are all off by default. Connection-refused outages are made by stopping the server instead
(``LocalServer.stop()`` / ``start()``).

The request log records method, path, status and a connection id (client host:port, unique
per open TCP connection) for every API request, so tests can count requests and connections
per event. It is bounded (oldest entries are dropped).
"""
from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

API_PREFIX = "/vision-events"
EVENT_STORE_PREFIX = "/v2/"
API_PREFIXES = (API_PREFIX, EVENT_STORE_PREFIX)
BACKPRESSURE_STATUS = 529
REQUEST_LOG_SIZE = 200_000


class FaultSettings(BaseModel):
    """Body of ``PUT /_admin/faults``; every field missing means 'off'."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    rate_limit_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    retry_after_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    outage_seconds: float = Field(default=0.0, ge=0.0, le=86_400.0)
    backpressure_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # 529 on /v2/... only


class FaultState:
    """Current faults; ``outage_seconds`` becomes a deadline when set."""

    def __init__(self, settings: Optional[FaultSettings] = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random()
        self.set(settings or FaultSettings())

    def set(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self.outage_until = time.monotonic() + settings.outage_seconds if settings.outage_seconds else 0.0

    def describe(self) -> Dict[str, Any]:
        body = self.settings.model_dump(by_alias=True)
        body["outageRemainingSeconds"] = max(0.0, self.outage_until - time.monotonic())
        return body

    def decide(self, path: str = API_PREFIX) -> Optional[tuple]:
        """``(status, message, retry_after)`` for an injected failure, or ``None``."""
        s = self.settings
        remaining = self.outage_until - time.monotonic()
        if remaining > 0:
            return 503, "Service unavailable (injected outage)", max(1, round(remaining))
        with self._lock:
            draw = self._random.random()
            pressure = self._random.random() if s.backpressure_rate else 1.0
        if path.startswith(EVENT_STORE_PREFIX) and pressure < s.backpressure_rate:
            return BACKPRESSURE_STATUS, "Device at capacity: waiting for cloud uploads to drain (injected)", s.retry_after_s
        if draw < s.rate_limit_rate:
            return 429, "Rate limit exceeded (injected)", s.retry_after_s
        if draw < s.rate_limit_rate + s.fail_rate:
            return 503, "Service unavailable (injected fault)", None
        return None


class RequestLog:
    def __init__(self, size: int = REQUEST_LOG_SIZE) -> None:
        self._entries: Deque[Dict[str, Any]] = deque(maxlen=size)

    def add(self, entry: Dict[str, Any]) -> None:
        self._entries.append(entry)

    def entries(self) -> List[Dict[str, Any]]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()


def _format_retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class FaultMiddleware:
    """Logs API requests and, when faults are on, answers some of them with a failure."""

    def __init__(self, app: Any, faults: Optional[FaultState], log: Optional[RequestLog]) -> None:
        self.app = app
        self.faults = faults
        self.log = log

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        status_seen: List[int] = []

        async def send_and_record(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(message["status"])
            await send(message)

        try:
            injected = self.faults.decide(scope["path"]) if self.faults else None
            if self.faults and self.faults.settings.latency_ms:
                await asyncio.sleep(self.faults.settings.latency_ms / 1000)
            if injected:
                await _send_error(send_and_record, *injected, detail=scope["path"].startswith(EVENT_STORE_PREFIX))
            else:
                await self.app(scope, receive, send_and_record)
        finally:
            if self.log is not None:
                client = scope.get("client") or ("?", 0)
                self.log.add({
                    "time": time.time(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status_seen[0] if status_seen else 500,
                    "connectionId": f"{client[0]}:{client[1]}",
                })


async def _send_error(send: Any, status: int, message: str, retry_after: Optional[float], detail: bool = False) -> None:
    """``{"error"}`` like every API error; Event Store routes add ``detail`` (what its clients read)."""
    body = json.dumps({"error": message, "detail": message} if detail else {"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", _format_retry_after(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
