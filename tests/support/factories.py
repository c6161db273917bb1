"""Events and images for tests: one factory for wire events, the smallest valid images.

``make_event`` is the one event factory; test modules that want other defaults (a failing
quality check, a fixed use case) pass them, they do not write a factory of their own.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional

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
# The least eventData each event type needs (spec §7).
EVENT_DATA = {
    "quality_check": {"result": "pass"},
    "inventory_count": {"itemCount": 1},
    "safety_alert": {"alertType": "no_hardhat"},
    "custom": {},
    "operator_feedback": {"relatedEventId": "other", "feedback": "correct"},
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def make_event(use_case_id: Optional[str], event_type: str = "quality_check", *, ago: timedelta = timedelta(0),
               event_id: Optional[str] = None, data: Optional[Dict[str, Any]] = None, **fields: Any) -> Dict[str, Any]:
    """A valid wire event (``useCaseId`` left out when ``None``); ``data`` replaces the type's
    default ``eventData``, ``fields`` are camelCase keys that replace anything."""
    event = {
        "eventId": event_id or str(uuid.uuid4()),
        "eventType": event_type,
        "useCaseId": use_case_id,
        "timestamp": iso(now() - ago),
        "eventData": dict(EVENT_DATA[event_type] if data is None else data),
    }
    if use_case_id is None:
        del event["useCaseId"]
    event.update(fields)
    return event


def custom_event(use_case_id: str, i: Optional[int] = None, **fields: Any) -> Dict[str, Any]:
    """What a sender is given: a ``custom`` event without id or time (the sender fixes them),
    ``eventData.value`` = ``str(i)`` when ``i`` is given."""
    event: Dict[str, Any] = {"eventType": "custom", "useCaseId": use_case_id}
    if i is not None:
        event["eventData"] = {"value": str(i)}
    event.update(fields)
    return event


def box(cls: str) -> Dict[str, Any]:
    """An object detection on the wire."""
    return {"class": cls, "x": 10, "y": 10, "width": 4, "height": 4, "confidence": 0.9}
