"""Routes of the event viewer: three pages, their static files, two JSON twins.

Pages (no key needed: they are fixed HTML shells holding no data):

* ``GET /``                               use cases with their event counts
* ``GET /view/{useCaseId}``               events newest first; filters in the query string
* ``GET /view/{useCaseId}/{eventId}``     one event: images with overlays, data, feedback

JSON (the same keys and scopes as the API; read scope):

* ``GET  /viewer/api/use-cases/{useCaseId}/events/{eventId}``  one event (with image URLs
  and ``hasWarnings``) and the ``operator_feedback`` events that refer to it -- the query API
  has no filter by ``eventId`` or ``relatedEventId``.
* ``POST /viewer/api/stats``  a query body (as ``/vision-events/query``, without ``cursor``
  and ``limit``) -> counts by event type and by result over time, for the list page's chart.

Every viewer response carries a Content-Security-Policy that allows scripts, styles, images
and fetches from this origin only (no inline script, no ``eval``), plus ``nosniff``,
``no-referrer`` and ``frame-ancestors 'none'``.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...api.models import QueryRequest
from ..auth import READ_SCOPES
from ..query import build_query
from ..store import Store, cutoff_micros, iso_millis, to_micros

HERE = Path(__file__).parent
PAGES_DIR = HERE / "pages"
STATIC_DIR = HERE / "static"
STATIC_NAME = re.compile(r"^[a-z0-9_-]+\.(js|css|svg)$")
STATIC_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}

VIEWER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": VIEWER_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_FEEDBACK_SHOWN = 200
STATS_MAX_EVENTS = 20_000       # the newest matching events the chart counts
STATS_TARGET_BUCKETS = 24
NICE_BUCKET_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class ViewerHooks:
    """What the viewer borrows from the app that mounts it (so it never imports the app)."""

    store: Store
    lookback_days: int
    authorize: Callable[[Request, frozenset], None]          # raises the app's 401/403
    json_body: Callable[[Request, str], Awaitable[Any]]       # the app's JSON reader (413/400)
    validate: Callable[[type, Any, str], Any]                 # model validation -> 400 naming the field
    image_url: Callable[[str, str, str], str]                 # (base, sourceId, ext) -> URL


def _page(name: str) -> FileResponse:
    return FileResponse(PAGES_DIR / name, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


def bucket_seconds(span_s: float) -> int:
    """The smallest 'nice' bucket that splits ``span_s`` into at most the target count."""
    wanted = span_s / STATS_TARGET_BUCKETS
    return next((b for b in NICE_BUCKET_SECONDS if b >= wanted), max(86400, math.ceil(wanted / 86400) * 86400))


def count_over_time(rows: List[Any], since_us: Optional[int] = None, until_us: Optional[int] = None) -> Dict[str, Any]:
    """``(ts_us, event_type, result)`` rows -> totals and per-bucket counts, buckets oldest first
    from ``since_us`` (default: the first event) to ``until_us`` (default: the last event), the
    empty ones included, so a quiet stretch shows as a gap."""
    totals: Dict[str, Dict[str, int]] = {"byType": {}, "byResult": {}}
    if not rows:
        return {"eventCount": 0, "bucketSeconds": None, "buckets": [], "totals": totals}
    first = min(min(r[0] for r in rows), since_us if since_us is not None else math.inf)
    last = max(max(r[0] for r in rows), until_us if until_us is not None else -math.inf)
    size = bucket_seconds((last - first) / 1e6)
    size_us = size * 1_000_000
    start = first // size_us * size_us
    buckets = [{"byType": {}, "byResult": {}} for _ in range((last - start) // size_us + 1)]
    for ts_us, event_type, result in rows:
        bucket = buckets[(ts_us - start) // size_us]
        for group, key in (("byType", event_type), ("byResult", result)):
            if key is not None:
                bucket[group][key] = bucket[group].get(key, 0) + 1
                totals[group][key] = totals[group].get(key, 0) + 1
    for index, bucket in enumerate(buckets):
        bucket["start"] = iso_millis(datetime.fromtimestamp((start + index * size_us) / 1e6, tz=timezone.utc))
    return {"eventCount": len(rows), "bucketSeconds": size, "buckets": buckets, "totals": totals}


class AnyTextConvertor(PathConvertor):
    """Like ``:path`` but also across line breaks: an ``eventId`` is any string the client chose,
    and a route that fails to match answers 404 before the key is checked (it must be 401)."""

    regex = r"[\s\S]*"


register_url_convertor("anytext", AnyTextConvertor())


def mount_viewer(app: FastAPI, hooks: ViewerHooks) -> None:
    """Add the viewer's routes to ``app``."""
    store = hooks.store

    def cutoff() -> int:
        return cutoff_micros(hooks.lookback_days)

    # -- pages and static files ------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def viewer_home() -> FileResponse:
        return _page("index.html")

    @app.get("/view/{use_case_id}", include_in_schema=False)
    async def viewer_event_list(use_case_id: str) -> FileResponse:
        return _page("list.html")

    @app.get("/view/{use_case_id}/{event_id:anytext}", include_in_schema=False)
    async def viewer_event_page(use_case_id: str, event_id: str) -> FileResponse:
        return _page("event.html" if event_id else "list.html")  # "/view/<id>/" is the list

    @app.get("/viewer/static/{name}", include_in_schema=False)
    async def viewer_static(name: str) -> FileResponse:
        path = STATIC_DIR / name
        if not STATIC_NAME.match(name) or not path.is_file():
            raise StarletteHTTPException(404, "Not found")
        return FileResponse(path, media_type=STATIC_TYPES[name.rsplit(".", 1)[1]], headers=SECURITY_HEADERS)

    # -- one event with its feedback -------------------------------------------------------
    def with_image_urls(event: Dict[str, Any], base: str) -> Dict[str, Any]:
        images = event.get("images", ())
        exts = store.image_exts(i for img in images for i in (img.get("sourceId"), img.get("inputSourceId")) if i)
        for img in images:
            for id_key, url_key in (("sourceId", "url"), ("inputSourceId", "inputUrl")):
                ext = exts.get(img.get(id_key))
                if ext:
                    img[url_key] = hooks.image_url(base, img[id_key], ext)
        return event

    def read_event(use_case_id: str, event_id: str, base: str) -> Dict[str, Any]:
        use_case = store.get_use_case(use_case_id)
        if use_case is None:
            raise StarletteHTTPException(404, "Solution not found")
        rows = store.read(
            "SELECT body, has_warnings FROM events WHERE use_case_id = ? AND event_id = ? AND ts_us >= ?",
            (use_case_id, event_id, cutoff()),
        )
        if not rows:
            raise StarletteHTTPException(404, "Event not found (unknown eventId, another use case, or past lookbackDays)")
        event = with_image_urls(json.loads(rows[0]["body"]), base)
        event["hasWarnings"] = bool(rows[0]["has_warnings"])
        feedback_rows = store.read(
            """SELECT body FROM events WHERE use_case_id = ? AND event_type = 'operator_feedback' AND ts_us >= ?
               AND json_extract(body, '$.eventData.relatedEventId') = ? ORDER BY ts_us DESC, event_id DESC LIMIT ?""",
            (use_case_id, cutoff(), event_id, MAX_FEEDBACK_SHOWN),
        )
        return {
            "useCase": {"id": use_case["id"], "name": use_case["name"], "status": use_case["status"]},
            "event": event,
            "feedback": [json.loads(r["body"]) for r in feedback_rows],
        }

    @app.get("/viewer/api/use-cases/{use_case_id}/events/{event_id:anytext}")
    async def viewer_event(use_case_id: str, event_id: str, request: Request) -> Response:
        hooks.authorize(request, READ_SCOPES)
        body = await run_in_threadpool(read_event, use_case_id, event_id, str(request.base_url).rstrip("/"))
        return Response(json.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"})

    # -- counts over time ------------------------------------------------------------------
    def stats(query: QueryRequest) -> Dict[str, Any]:
        if store.get_use_case(query.use_case_id) is None:
            raise StarletteHTTPException(404, "Solution not found")
        sql, params = build_query(query, cutoff(), None)
        params[-1] = STATS_MAX_EVENTS + 1  # build_query's last parameter is the page size + 1
        rows = store.read(
            f"SELECT p.ts_us, ev.event_type, ev.result FROM ({sql}) p JOIN events ev ON ev.event_id = p.event_id",
            params,
        )
        truncated = len(rows) > STATS_MAX_EVENTS
        rows = sorted(((r[0], r[1], r[2]) for r in rows), reverse=True)[:STATS_MAX_EVENTS]
        # The strip runs to the end of the asked range, else to now: new events arrive on its right.
        since = to_micros(query.start_time) if query.start_time else None
        until = to_micros(query.end_time) if query.end_time else to_micros(datetime.now(timezone.utc))
        answer = count_over_time(rows, since, until)
        answer["truncated"] = truncated
        return answer

    @app.post("/viewer/api/stats")
    async def viewer_stats(request: Request) -> Response:
        hooks.authorize(request, READ_SCOPES)
        body = await hooks.json_body(request, "Invalid query")
        if "useCaseId" not in body:
            raise StarletteHTTPException(400, "Invalid query: useCaseId is required")
        for ignored in ("cursor", "limit"):
            body.pop(ignored, None)
        query = hooks.validate(QueryRequest, body, "Invalid query")
        answer = await run_in_threadpool(stats, query)
        return Response(json.dumps(answer), media_type="application/json", headers={"Cache-Control": "no-store"})


__all__ = ["VIEWER_CSP", "ViewerHooks", "mount_viewer", "count_over_time", "bucket_seconds"]
