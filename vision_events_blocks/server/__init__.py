"""A local Vision Events server: the whole API (spec §1.1 rows 1-10), offline, on SQLite.

It implements the public Vision Events API reference (the "spec" the ``§`` numbers cite), not
our client's habits: it rejects what the real API rejects, so client bugs show up in tests.
Pieces:

* :mod:`.store`   SQLite in WAL mode (one writer, per-thread readers): use cases, events and
                  their filterable columns, detection classes, metadata, images, API keys.
* :mod:`.query`   query filters -> one SQL statement, keyset cursors.
* :mod:`.service` what the server does (ingestion, queries, use cases), without HTTP.
* :mod:`.routers` the routes, one router per subject; each states its scope with
                  :func:`.deps.needs`.
* :mod:`.errors`  every refusal and the one place that shapes it (``{"error": "..."}``).
* :mod:`.body`    body size limits and strict JSON.
* :mod:`.app`     assembles the FastAPI app (service, routers, errors, faults, retention).
* :mod:`.faults`  opt-in fault injection (503s, 429s, latency, outage windows) and the request log.
* :mod:`.testing` :class:`LocalServer`, the subprocess wrapper that tests use.

Run it with ``vision-events serve`` or ``python -m vision_events_blocks.server``.
"""
from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_LOOKBACK_DAYS = 14

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_LOOKBACK_DAYS"]
