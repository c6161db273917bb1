"""Helpers shared by the server tests: event factories, raw HTTP, tiny valid images."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional

import httpx

# Smallest headers that pass the server's magic-byte sniffing, per spec §4 type.
IMAGES = {
    "jpeg": b"\xff\xd8\xff\xe0" + b"\x00" * 60,
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 60,
    "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 60,
    "gif": b"GIF89a" + b"\x00" * 60,
    "tiff": b"II*\x00" + b"\x00" * 60,
    "bmp": b"BM" + b"\x00" * 60,
    "heic": b"\x00\x00\x00\x18ftypheic" + b"\x00" * 60,
    "avif": b"\x00\x00\x00\x18ftypavif" + b"\x00" * 60,
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def make_event(use_case_id: str, event_type: str = "quality_check", *, ago: timedelta = timedelta(0),
               event_id: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    """A valid wire event; ``fields`` are camelCase keys that replace the defaults."""
    data = {
        "quality_check": {"result": "pass"},
        "inventory_count": {"itemCount": 1},
        "safety_alert": {"alertType": "no_hardhat"},
        "custom": {},
        "operator_feedback": {"relatedEventId": "other", "feedback": "correct"},
    }[event_type]
    event = {
        "eventId": event_id or str(uuid.uuid4()),
        "eventType": event_type,
        "useCaseId": use_case_id,
        "timestamp": iso(now() - ago),
        "eventData": data,
    }
    event.update(fields)
    return event


def box(cls: str) -> Dict[str, Any]:
    return {"class": cls, "x": 10, "y": 10, "width": 4, "height": 4, "confidence": 0.9}


class Raw:
    """Plain httpx against the server, for requests the project's client would refuse to send."""

    def __init__(self, url: str, key: Optional[str]) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=30.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)

    def close(self) -> None:
        self.http.close()


def error_of(response: httpx.Response, status: int) -> str:
    """Assert the status and the exact ``{"error": str}`` envelope; return the message."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return body["error"]
