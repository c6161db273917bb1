"""A live one-line progress bar for a pipeline run: frames, events submitted and sent.

The pipeline calls :meth:`ProgressLine.update` from its own thread after every frame; the
line is redrawn in place on a terminal and printed every ``every`` frames otherwise (logs,
CI), so the output stays readable in both.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Dict, TextIO

from .runner import PipelineRun

BAR_WIDTH = 24


def delivery_totals(stats: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Counters summed over every destination's sender (``vision_events_blocks.stats()``)."""
    totals: Dict[str, Any] = {"submitted": 0, "sent": 0, "retried": 0, "dead_lettered": 0, "pending": 0,
                              "requests": 0, "uploads": 0, "dropped": {}}
    for sender in stats.values():
        for key in ("submitted", "sent", "retried", "dead_lettered", "pending", "requests", "uploads"):
            totals[key] += sender.get(key, 0)
        for reason, count in sender.get("dropped", {}).items():
            totals["dropped"][reason] = totals["dropped"].get(reason, 0) + count
    totals["dropped_total"] = sum(totals["dropped"].values())
    return totals


class ProgressLine:
    def __init__(self, label: str, total_frames: int, stream: TextIO = sys.stderr, every: int = 10) -> None:
        self.label = label
        self.total = max(1, total_frames)
        self.stream = stream
        self.every = every
        self.interactive = stream.isatty()
        self._lock = threading.Lock()

    def _line(self, run: PipelineRun) -> str:
        import vision_events_blocks

        totals = delivery_totals(vision_events_blocks.stats())
        filled = int(BAR_WIDTH * min(run.frames, self.total) / self.total)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return (f"{self.label:<22} [{bar}] {run.frames:>4}/{self.total} frames | "
                f"events: {len(run.event_ids)} this workflow, {totals['submitted']} submitted, {totals['sent']} sent")

    def update(self, run: PipelineRun) -> None:
        if not self.interactive and (run.frames % self.every or run.frames >= self.total):
            return  # plain output: every ``every`` frames; the last line is done()'s
        with self._lock:
            line = self._line(run)
            self.stream.write(f"\r{line}\033[K" if self.interactive else f"{line}\n")
            self.stream.flush()

    def done(self, run: PipelineRun) -> None:
        with self._lock:
            line = self._line(run)
            self.stream.write(f"\r{line}\033[K\n" if self.interactive else f"{line}\n")
            self.stream.flush()
