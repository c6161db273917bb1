"""What a sender reports: ``stats()`` and the periodic summary line."""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional

from . import api
from .outbox.location import refused_count

logger = logging.getLogger("vision_events_blocks.delivery")


def sender_stats(sender: Any) -> Dict[str, Any]:
    """Counters and gauges (see ``Sender.stats``); never the key."""
    ledger, budget, scheduler, gate = sender._ledger, sender._budget, sender._scheduler, sender._gate
    with ledger.lock:
        counts = ledger.counts
        oldest = ledger.oldest_created_at()
        stats: Dict[str, Any] = {
            "label": sender.label,
            "destination": sender.destination.kind,
            "api_url": sender.api_url,
            "durable": sender._outbox is not None,
            "submitted": counts["submitted"],
            "replayed": counts["replayed"],
            "sent": counts["sent"],
            "retried": counts["retried"],
            "backpressure_529": counts["backpressure_529"],
            "dead_lettered": counts["dead_lettered"],
            "dropped": dict(ledger.dropped),
            "dropped_total": sum(ledger.dropped.values()),
            "pending": len(ledger.live),
            "uploads": counts["uploads"],
            "bisections": counts["bisections"],
            "annotations_dropped": counts["annotations_dropped"],
            "images_degraded": counts["images_degraded"],
            "dead_letters": list(ledger.dead_letters),
        }
    paused_for = scheduler.paused_for()
    stats.update({
        "buffered_events": len(budget),
        "buffered_bytes": budget.used,
        "peak_buffered_bytes": budget.peak,
        "max_buffer_bytes": budget.cap,
        "oldest_age_s": round(max(0.0, time.time() - oldest), 3) if oldest else 0.0,  # a clock set back: 0
        "in_flight": budget.in_flight,
        "requests": sender._exporter.requests,
        "concurrency_limit": gate.limit,
        "peak_concurrency": gate.peak,
        "images_shed": {api.DROP_BUFFER_FULL: budget.images_shed} if budget.images_shed else {},
        "events_shed": budget.events_shed,
        "annotations_shed": budget.annotations_shed,
        "backpressure_waits": budget.backpressure_waits,
        "backpressure_timeouts": budget.backpressure_timeouts,
        "paused_for_s": round(paused_for, 3),
        "pauses": scheduler.pauses,
        "last_error": sender._last_error,
        "durable_refused": refused_count(),
        "durability": sender._durability.describe(),
        **sender._exporter.stats(),
    })
    outbox = sender._outbox
    if outbox is not None:
        stats["outbox_dir"] = str(outbox.root)
        stats["outbox_events"] = outbox.rows
        stats["outbox_bytes"] = outbox.bytes
        stats["outbox_write_errors"] = outbox.write_errors
    stats["healthy"] = (scheduler.consecutive_failures < 3 and paused_for == 0.0
                        and stats["buffered_bytes"] < 0.9 * stats["max_buffer_bytes"])
    return stats


def log_summary(sender: Any, last: Optional[tuple]) -> Optional[tuple]:
    """One line per interval when something changed; WARNING when events were dropped or images shed."""
    s = sender_stats(sender)
    key = (s["submitted"], s["sent"], s["dropped_total"], s["dead_lettered"], s["events_shed"], s["pending"])
    if key == last:
        return last
    new_losses = last is None or key[2:5] != last[2:5]
    level = (logging.WARNING if new_losses and (s["dropped_total"] or s["dead_lettered"] or s["events_shed"])
             else logging.INFO)
    logger.log(level, "vision-events %s: submitted=%d sent=%d pending=%d retried=%d dead_lettered=%d dropped=%s "
               "images_shed=%s images_degraded=%d buffered=%.1fMB durable=%s healthy=%s%s", s["label"], s["submitted"],
               s["sent"], s["pending"], s["retried"], s["dead_lettered"], s["dropped"] or 0, s["images_shed"] or 0,
               s["images_degraded"], s["buffered_bytes"] / 1e6, s["durable"], s["healthy"],
               f" last_error={s['last_error']}" if s["last_error"] else "")
    return key
