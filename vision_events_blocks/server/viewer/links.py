"""Links to the event viewer, as printed by ``vision-events serve`` and the demo.

A key, when given, rides in the URL *fragment* (``#key=...``): browsers never send the
fragment to the server, so it reaches no access log, and the page moves it to session storage
and out of the address bar at once.
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import quote, urlencode

FAILED_QUALITY_CHECKS = {
    "eventTypes": "quality_check",
    "eventFieldFilters.0.column": "result",
    "eventFieldFilters.0.operator": "eq",
    "eventFieldFilters.0.value": "fail",
}


def viewer_link(base_url: str, use_case_id: Optional[str] = None, filters: Optional[dict] = None,
                key: Optional[str] = None) -> str:
    """``http://host:port/`` or ``.../view/<useCaseId>?<filters>``, with ``#key=...`` when given."""
    link = base_url.rstrip("/") + "/"
    if use_case_id:
        link += f"view/{quote(use_case_id, safe='')}"
    if filters:
        link += "?" + urlencode(filters)
    if key:
        link += "#" + urlencode({"key": key})
    return link
