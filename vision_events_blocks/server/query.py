"""``POST /vision-events/query`` filters -> one SQL statement (seed 004, spec §10).

Semantics chosen where the seed is silent (also in the README):

* every filter combines with AND; ``startTime`` and ``endTime`` are inclusive;
* newest first: ``timestamp`` desc, then ``eventId`` desc, so keyset cursors are stable while
  new events arrive (no duplicates, no skipped older events);
* ``neq`` / ``not_in`` are the exact complement of ``eq`` / ``in``: an event that lacks the
  field (no ``deviceId``, no such metadata key, no annotation at all) matches ``neq``;
* ``detectionClass`` ``eq``/``in``: any annotation on any image has the class; ``neq``/``not_in``:
  no annotation has it;
* a metadata filter only matches values stored with the same ``type`` (``"72"`` is not 72);
* events older than ``lookbackDays`` are never returned.

Cursors are opaque: base64url JSON of the last (timestamp, eventId, useCaseId) plus an HMAC,
so a tampered or foreign cursor is rejected with 400 instead of silently skipping events.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from ..api.models import EVENT_FIELD_COLUMNS, QueryRequest
from .store import to_micros

_COMPARE = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_NEGATIVE = {"neq": "eq", "not_in": "in"}
_CONTEXT_COLUMNS = {"device_id": "device_id", "stream_id": "stream_id", "workflow_id": "workflow_id", "external_id": "external_id"}


class InvalidCursor(ValueError):
    """The cursor was not issued by this server for this query's use case."""


@dataclass(frozen=True)
class CursorKey:
    ts_us: int
    event_id: str


class CursorCodec:
    """Signs and checks cursors with a per-data-dir secret (kept across restarts)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, use_case_id: str, key: CursorKey) -> str:
        payload = json.dumps({"t": key.ts_us, "id": key.event_id, "u": use_case_id}, separators=(",", ":")).encode()
        return _b64(payload) + "." + _b64(self._sign(payload))

    def decode(self, use_case_id: str, cursor: str) -> CursorKey:
        try:
            payload_part, signature_part = cursor.split(".")
            payload, signature = _unb64(payload_part), _unb64(signature_part)
        except (ValueError, binascii.Error):
            raise InvalidCursor("cursor is malformed") from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidCursor("cursor was not issued by this server (tampered or corrupted)")
        data = json.loads(payload)
        if data["u"] != use_case_id:
            raise InvalidCursor("cursor belongs to a different useCaseId")
        return CursorKey(int(data["t"]), str(data["id"]))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _marks(values: List[Any]) -> str:
    return ",".join("?" * len(values))


def _as_list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else [value]


def _column_condition(column: str, operator: str, value: Any) -> Tuple[str, List[Any]]:
    """A condition on an events column; negatives also match rows where the column is NULL."""
    if operator in _NEGATIVE:
        positive, params = _column_condition(column, _NEGATIVE[operator], value)
        return f"NOT coalesce({positive}, 0)", params
    if operator == "in":
        values = _as_list(value)
        return f"e.{column} IN ({_marks(values)})", values
    return f"e.{column} {_COMPARE[operator]} ?", [value]


def _member_of(subquery: str, params: List[Any], negate: bool) -> Tuple[str, List[Any]]:
    """``e.pk [NOT] IN (subquery of event_pk)``: the planner may drive the query from the
    child index (rare values) or probe it per event (common values)."""
    return f"e.pk {'NOT ' if negate else ''}IN ({subquery})", params


def _detection_class_condition(operator: str, value: Any) -> Tuple[str, List[Any]]:
    values = _as_list(value)
    sub = f"SELECT c.event_pk FROM event_classes c WHERE c.class IN ({_marks(values)})"
    return _member_of(sub, values, negate=operator in _NEGATIVE)


def _metadata_condition(field: str, vtype: str, operator: str, value: Any) -> Tuple[str, List[Any]]:
    negate = operator in _NEGATIVE
    operator = _NEGATIVE.get(operator, operator)
    value_column = "text_value" if vtype == "string" else "num_value"
    values = [float(v) if vtype != "string" else v for v in _as_list(value)]
    test = f"m.{value_column} IN ({_marks(values)})" if operator == "in" else f"m.{value_column} {_COMPARE[operator]} ?"
    sub = f"SELECT m.event_pk FROM event_metadata m WHERE m.key = ? AND m.vtype = ? AND {test}"
    return _member_of(sub, [field, vtype, *values], negate)


def build_query(request: QueryRequest, cutoff_us: int, after: Optional[CursorKey]) -> Tuple[str, List[Any]]:
    """The SELECT for one page (``limit + 1`` rows, to know whether there is more)."""
    where = ["e.use_case_id = ?", "e.ts_us >= ?"]
    params: List[Any] = [request.use_case_id, cutoff_us]

    def add(condition: Tuple[str, List[Any]]) -> None:
        where.append(condition[0])
        params.extend(condition[1])

    if request.start_time is not None:
        add(("e.ts_us >= ?", [to_micros(request.start_time)]))
    if request.end_time is not None:
        add(("e.ts_us <= ?", [to_micros(request.end_time)]))
    if request.event_types:
        add(_column_condition("event_type", "in", list(request.event_types)))
    for attribute, column in _CONTEXT_COLUMNS.items():
        context = getattr(request, attribute)
        if context is not None:
            add(_column_condition(column, context.operator, context.value))
    if request.detection_class is not None:
        add(_detection_class_condition(request.detection_class.operator, request.detection_class.value))
    if request.image_count is not None:
        add(_column_condition("image_count", request.image_count.operator, request.image_count.value))
    if request.has_warnings is not None:
        add(("e.has_warnings = ?", [int(request.has_warnings)]))
    for meta in request.custom_metadata_filters or ():
        add(_metadata_condition(meta.field, meta.type, meta.operator, meta.value))
    for field in request.event_field_filters or ():
        assert field.column in EVENT_FIELD_COLUMNS  # the model's Literal guarantees it
        add(_column_condition(field.column, field.operator, field.value))
    if after is not None:
        add(("(e.ts_us, e.event_id) < (?, ?)", [after.ts_us, after.event_id]))

    sql = (
        "SELECT e.event_id, e.ts_us, e.body FROM events e WHERE "
        + " AND ".join(where)
        + " ORDER BY e.ts_us DESC, e.event_id DESC LIMIT ?"
    )
    return sql, params + [request.limit + 1]
