"""The sender: bounded, batched, retried, durable-by-default delivery of events.

    from vision_events_blocks.delivery import get_sender, ImageAttachment

    sender = get_sender(api_url="http://127.0.0.1:8787", api_key="...")   # process-wide, durable
    event_id = sender.submit(
        VisionEvent(...) or dict,            # eventId/timestamp filled in here when missing
        images=[ImageAttachment(input=frame_bgr, output=visualisation_bgr, label="line-3")],
        predictions=sv_detections_or_classification_dict_or_None,   # mapped onto images[0].input
        can_wait=True,                       # a file/request/script: back-pressure, never shed images
    )                                        # returns at once: no encoding, no I/O
    sender.wait(event_id, timeout=2.0)       # DeliveryResult(status="sent" | "persisted" | ...)
    sender.flush(timeout=5.0) -> bool        # True when everything submitted is delivered/persisted
    sender.stats() -> dict                   # counters and gauges: see Sender.stats
    sender.close(timeout=5.0)

Other destinations: ``get_sender(destination="event_store", event_store_url=...)`` (edge Event
Store, images inline, 529 = back-pressure) or ``get_sender(destination="bundle", bundle_dir=...)``
(one bundle-format-v1 file per event); see ``destinations``.

Modules: ``processor`` (the Sender: state, lifecycle), ``outcomes`` (export outcomes -> next
step), ``exporter`` (HTTP: one upload, one batch -> typed outcome), ``inline`` (Event Store and
bundle exporters: one event, images inline), ``destinations`` (kinds, defaults, identity),
``retry`` (pure decisions),
``batching`` (pure batch policy), ``limits`` (adaptive concurrency), ``encoder`` (JPEG +
annotations on cores), ``envelope`` / ``budget`` / ``ledger`` / ``scheduler`` (in-memory
state), ``replay`` + ``outbox/`` (durable slots, adoption), ``registry`` + ``hooks`` (one
sender per destination; exit, SIGTERM, fork), ``config`` (settings + env vars).
"""

from .api import (
    DeliveryResult,
    ImageAttachment,
    OutboxLockedError,
    OverflowPolicy,
)
from .config import ENVIRONMENT_VARIABLES, SenderConfig
from .outbox import configured_root, outbox_status, purge_outbox, resolve_outbox_root
from .processor import Sender
from .registry import close_all, flush_all, get_sender, resume_backlog, stats_all

__all__ = [
    "DeliveryResult",
    "ENVIRONMENT_VARIABLES",
    "ImageAttachment",
    "OutboxLockedError",
    "OverflowPolicy",
    "Sender",
    "SenderConfig",
    "close_all",
    "configured_root",
    "flush_all",
    "get_sender",
    "outbox_status",
    "purge_outbox",
    "resolve_outbox_root",
    "resume_backlog",
    "stats_all",
]
