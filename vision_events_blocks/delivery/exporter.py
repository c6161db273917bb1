"""The exporters: upload one image, send one batch (or one event), say what happened as a typed outcome.

They know their transport and nothing about queues, budgets or retries; the processor
decides what an outcome means (:mod:`.retry`). Every request passes the adaptive
:class:`~.limits.ConcurrencyGate`, which learns from each one's round trip and congestion.
:class:`Exporter` speaks the Vision Events API (images uploaded first, events in batches);
:mod:`.inline` holds the Event Store and bundle exporters (images inline, one event each).
``uploads_first`` is the one thing the processor asks to tell them apart.
:class:`ExportPool` runs the requests on the sender's own threads (never an executor: an
exit flush must not find its workers already shut down).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Dict, Optional, Sequence, Set

from .limits import ConcurrencyGate
from .retry import Verdict, classify

logger = logging.getLogger("vision_events_blocks.delivery")
EXPORTER_THREADS = "vision-events-exporter"  # the name (prefix) of the threads that run the requests


class _OwnRequestsFilter(logging.Filter):
    """httpx logs every request at INFO, and importing inference sets the root logger to INFO:
    a camera's sender would print a line per upload. The sender's own requests are left out
    (``stats()`` counts them); httpx requests made by anyone else are untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not record.threadName.startswith(EXPORTER_THREADS)


def quiet_own_request_logs() -> None:
    """Install the filter on the ``httpx`` logger once per process."""
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _OwnRequestsFilter) for f in httpx_logger.filters):
        httpx_logger.addFilter(_OwnRequestsFilter())


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one request came to: ``verdict`` is None on success.

    For a batch, ``accepted`` holds the eventIds the server confirmed (None when it did not
    list them) and ``created`` how many it created; for an upload, ``source_id``.
    """

    verdict: Optional[Verdict] = None
    source_id: Optional[str] = None
    created: int = 0
    accepted: Optional[Set[str]] = None

    @property
    def ok(self) -> bool:
        return self.verdict is None


class GatedExporter:
    """What every exporter shares: the gate around each request, failures as outcomes.

    ``uploads_first``: True when images are uploaded on their own before the event is sent
    (they then travel as ``sourceId``s); False when the event carries its image bytes and is
    sent with :meth:`send_event`. ``max_batch_events``: events per request (None: the config's).
    """

    uploads_first = True
    max_batch_events: Optional[int] = None

    def __init__(self, gate: ConcurrencyGate) -> None:
        self.gate = gate
        self.requests = 0
        quiet_own_request_logs()

    @staticmethod
    def classify(error: BaseException) -> Verdict:
        return classify(error)

    def _call(self, request: Callable[[], Outcome]) -> Outcome:
        self.gate.acquire()
        self.requests += 1
        started = time.monotonic()
        congested = False
        try:
            return request()
        except Exception as exc:  # noqa: BLE001 - every failure becomes an outcome
            verdict = self.classify(exc)
            congested = verdict.retryable  # 429, 529, 5xx, timeouts, refused connections, a full disk
            return Outcome(verdict=verdict)
        finally:
            self.gate.release(time.monotonic() - started, congested)

    def stats(self) -> Dict[str, Any]:
        """Exporter-specific counters for ``Sender.stats()``."""
        return {}

    client: Any = None  # an HTTP client with close(), for the exporters that have one

    def close(self) -> None:
        if self.client is None:
            return
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a pool at exit must not raise
            pass


class Exporter(GatedExporter):
    """Speaks the Vision Events API for the processor (one keep-alive pool)."""

    def __init__(self, client, gate: ConcurrencyGate) -> None:
        super().__init__(gate)
        self.client = client

    def upload(self, data: bytes, name: str, content_type: str) -> Outcome:
        return self._call(lambda: Outcome(source_id=self.client.upload_image(
            data, name=name, content_type=content_type).source_id))

    def send_batch(self, events_json: Sequence[bytes]) -> Outcome:
        def post() -> Outcome:
            response = self.client.create_events_encoded(list(events_json))
            accepted = set(response.event_ids) if response.event_ids else None
            return Outcome(created=response.created, accepted=accepted)
        return self._call(post)


