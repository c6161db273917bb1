"""The sender: bounded, batched, retried, optionally durable delivery of events.

    from vision_events_blocks.delivery import get_sender, ImageAttachment

    sender = get_sender(api_url="http://127.0.0.1:8787", api_key="...")   # process-wide, shared
    event_id = sender.submit(
        VisionEvent(...) or dict,            # eventId/timestamp filled in here when missing
        images=[ImageAttachment(input=frame_bgr, output=visualisation_bgr, label="line-3")],
        predictions=sv_detections_or_classification_dict_or_None,   # mapped onto images[0].input
    )                                        # returns at once: no encoding, no I/O
    sender.wait(event_id, timeout=2.0)       # DeliveryResult(status="sent" | "persisted" | ...)
    sender.flush(timeout=5.0) -> bool        # True when everything submitted is delivered/persisted
    sender.stats() -> dict                   # counters and gauges: see Sender.stats
    sender.close(timeout=5.0)

Modules: ``dispatcher`` (the Sender and its threads), ``buffer`` (envelopes, byte budget),
``retry`` (backoff, error verdicts), ``outbox`` (SQLite + files), ``registry`` (one sender
per destination, exit/SIGTERM/fork hooks, shared state), ``config`` (settings + env vars).
"""

from .api import (
    DeliveryResult,
    ImageAttachment,
    OutboxLockedError,
    OverflowPolicy,
)
from .config import ENVIRONMENT_VARIABLES, SenderConfig
from .dispatcher import Sender
from .outbox import outbox_status, purge_outbox, resolve_block_outbox_dir
from .registry import close_all, flush_all, get_sender, shared_state, stats_all

__all__ = [
    "DeliveryResult",
    "ENVIRONMENT_VARIABLES",
    "ImageAttachment",
    "OutboxLockedError",
    "OverflowPolicy",
    "Sender",
    "SenderConfig",
    "close_all",
    "flush_all",
    "get_sender",
    "outbox_status",
    "purge_outbox",
    "resolve_block_outbox_dir",
    "shared_state",
    "stats_all",
]
