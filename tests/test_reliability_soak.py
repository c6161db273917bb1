"""Soak: a 30 fps camera through a sender while the server misbehaves at random.

Every frame submits an event; every third frame carries the (freshly allocated) 640x480 frame
and real ``sv.Detections``. Meanwhile the server's faults switch every few seconds between
healthy, random 503s, 429 storms with ``Retry-After``, slow answers and short outages. At the
end the faults stop and the sender drains. Then:

* **nothing is lost unexplained**: every submitted ``eventId`` is either stored on the server,
  or the sender reports it dropped (with a reason) or dead-lettered;
  ``submitted == stored + dropped + dead_lettered`` and ``stats()`` agrees with the server;
* **memory stays flat**: after warm-up, RSS never rises by more than the sender's byte budget
  plus a small margin, however long the soak runs.

The same soak runs once more with the durable outbox, and once with the server down the
whole time and a small budget, where frames (and events) *are* shed, each one counted.

Short forms in CI (45 s + 30 s + 15 s of load); ``--long`` runs five minutes.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import pytest
import supervision as sv

from vision_events_blocks.delivery import ImageAttachment
from vision_events_blocks.delivery.config import MB, SenderConfig
from vision_events_blocks.delivery.processor import Sender

pytestmark = pytest.mark.reliability

FAULT_PHASES = [
    ("healthy", {}),
    ("503 x30%", {"fail_rate": 0.3}),
    ("503 x80% + 100 ms", {"fail_rate": 0.8, "latency_ms": 100}),
    ("429 x50%, Retry-After 1 s", {"rate_limit_rate": 0.5, "retry_after_s": 1.0}),
    ("slow 400 ms", {"latency_ms": 400}),
    ("outage 3 s", {"outage_seconds": 3.0}),
]
BUFFER_BYTES = 48 * MB
RSS_MARGIN = 64 * MB  # allocator slack, httpx pools, SQLite page cache of the test process


class RssSampler(threading.Thread):
    def __init__(self, period_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.period_s = period_s
        self.samples: list = []
        self._halt = threading.Event()
        self._process = psutil.Process()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.monotonic(), self._process.memory_info().rss))
            self._halt.wait(self.period_s)

    def stop(self) -> list:
        self._halt.set()
        self.join()
        return self.samples


def camera_detections(rng: np.random.Generator, width: int, height: int) -> sv.Detections:
    count = int(rng.integers(0, 6))
    x1 = rng.uniform(0, width - 60, count)
    y1 = rng.uniform(0, height - 60, count)
    xyxy = np.stack([x1, y1, x1 + rng.uniform(10, 60, count), y1 + rng.uniform(10, 60, count)], axis=1)
    return sv.Detections(
        xyxy=xyxy.reshape(-1, 4),
        confidence=rng.uniform(0.3, 1.0, count),
        class_id=rng.integers(0, 3, count),
        data={"class_name": np.array(["person", "forklift", "box"])[rng.integers(0, 3, count)]},
    )


def run_soak(server, use_case_id: str, duration_s: float, fps: int = 30, seed: int = 30,
             phases=FAULT_PHASES, buffer_bytes: int = BUFFER_BYTES, outbox_dir=None) -> dict:
    rng = np.random.default_rng(seed)
    chooser = random.Random(seed)
    base_frames = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    sender = Sender(server.url, server.api_key, SenderConfig.from_env(
        max_buffer_bytes=buffer_bytes, overflow_policy="drop_oldest", retry_initial_s=0.2, retry_max_s=5.0,
        batch_linger_s=0.5, max_retry_age_s=None, stats_log_interval_s=3600.0,
        outbox_dir=str(outbox_dir) if outbox_dir else None))
    log_start = len(server.request_log())
    sampler = RssSampler()
    sampler.start()
    submitted: list = []
    submit_seconds: list = []
    phases_seen: Counter = Counter()
    start = time.monotonic()
    next_switch = start
    frames = int(duration_s * fps)
    try:
        for index in range(frames):
            now = time.monotonic()
            if now >= next_switch:
                name, faults = chooser.choice(phases)
                server.set_faults(**faults)
                phases_seen[name] += 1
                next_switch = now + chooser.uniform(2.0, 5.0)
            images, predictions = None, None
            if index % 3 == 0:
                frame = base_frames[index % 4].copy()  # a camera hands over a new array every frame
                images = [ImageAttachment(input=frame, label="line-3")]
                predictions = camera_detections(rng, 640, 480)
            before = time.perf_counter()
            event_id = sender.submit(
                {"eventType": "safety_alert", "useCaseId": use_case_id, "deviceId": "soak-cam",
                 "eventData": {"alertType": "no_helmet", "severity": "high"},
                 "customMetadata": {"frame": index, "line": "A1"}},
                images=images, predictions=predictions)
            submit_seconds.append(time.perf_counter() - before)
            submitted.append(event_id)
            delay = start + (index + 1) / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        load_seconds = time.monotonic() - start
        server.set_faults()
        drained = sender.flush(timeout=180.0, delivered=True)
        drain_seconds = time.monotonic() - start - load_seconds
        samples = sampler.stop()
        stats = sender.stats()
        outcomes = {event_id: sender.wait(event_id, timeout=0) for event_id in submitted}
    finally:
        server.set_faults()
        if sampler.is_alive():
            sampler.stop()
        sender.close(timeout=10.0)
    stored_events = server.events(use_case_id)
    stored = {event["eventId"] for event in stored_events}
    statuses = Counter(str(entry.get("status")) for entry in server.request_log()[log_start:])
    rss = [value for _, value in samples]
    warm = samples[len(samples) // 5][1]
    return {
        "duration_s": round(load_seconds, 1),
        "drain_s": round(drain_seconds, 1),
        "drained": drained,
        "fps": fps,
        "buffer_mb": round(buffer_bytes / MB, 1),
        "durable": bool(outbox_dir),
        "submitted": len(submitted),
        "stored": len(stored & set(submitted)),
        "events_per_s": round(len(stored & set(submitted)) / (load_seconds + drain_seconds), 1),
        "stats": {k: stats[k] for k in ("submitted", "sent", "retried", "dead_lettered", "dropped", "pending",
                                         "uploads", "requests", "peak_buffered_bytes", "images_shed", "events_shed")},
        "stored_marked_images_shed": sum(1 for e in stored_events if "ve_images_shed" in (e.get("customMetadata") or {})),
        "outcomes": Counter(outcome.status for outcome in outcomes.values()),
        "unexplained": sorted(e for e, o in outcomes.items() if e not in stored and o.status == "sent")[:5],
        "sent_not_stored": sum(1 for e, o in outcomes.items() if o.status == "sent" and e not in stored),
        "lost_without_reason": sum(1 for e, o in outcomes.items() if e not in stored and o.status not in ("dropped", "dead_lettered")),
        "dropped_with_reason": {o.message for o in outcomes.values() if o.status == "dropped"},
        "fault_phases": dict(phases_seen),
        "server_statuses": dict(statuses),
        "rss_mb": {"min": round(min(rss) / MB, 1), "max": round(max(rss) / MB, 1), "after_warmup": round(warm / MB, 1),
                   "growth_after_warmup": round((max(rss[len(rss) // 5:]) - warm) / MB, 1),
                   "by_quarter": [round(rss[min(len(rss) - 1, len(rss) * q // 4)] / MB, 1) for q in (1, 2, 3, 4)]},
        "submit_ms": {"p50": round(statistics.median(submit_seconds) * 1000, 3),
                      "p99": round(sorted(submit_seconds)[int(len(submit_seconds) * 0.99)] * 1000, 3),
                      "max": round(max(submit_seconds) * 1000, 3)},
    }


def check_soak(figures: dict) -> None:
    print("\nSOAK", json.dumps(figures, default=lambda v: sorted(v) if isinstance(v, set) else dict(v)))
    figures_dir = os.environ.get("RELIABILITY_FIGURES_DIR")
    if figures_dir:
        name = f"soak-{'durable-' if figures['durable'] else ''}{int(figures['duration_s'])}s.json"
        Path(figures_dir, name).write_text(
            json.dumps(figures, indent=2, default=lambda v: sorted(v) if isinstance(v, set) else dict(v)))
    stats = figures["stats"]
    assert figures["drained"], f"the sender did not drain after the faults stopped: {stats}"
    assert stats["pending"] == 0
    assert stats["submitted"] == figures["submitted"]
    dropped = sum(stats["dropped"].values())
    # Load and faults may cost events only through the documented overflow/expiry policies;
    # an encode or validation drop would be a bug, not back-pressure.
    assert set(stats["dropped"]) <= {"buffer_full", "retry_expired"}, figures["dropped_with_reason"]
    assert figures["submitted"] == figures["stored"] + dropped + stats["dead_lettered"], figures
    assert figures["sent_not_stored"] == 0, f"sender says sent, server never stored: {figures['unexplained']}"
    assert figures["lost_without_reason"] == 0
    assert stats["sent"] == figures["stored"]
    assert sum(v for k, v in figures["server_statuses"].items() if k in ("429", "503")) > 0, "no fault was injected"
    assert figures["rss_mb"]["growth_after_warmup"] * MB <= figures["buffer_mb"] * MB + RSS_MARGIN, figures["rss_mb"]


def test_long_outage_with_a_small_budget_loses_only_with_a_counted_reason(faults, use_case_id):
    """The server is down the whole time and the budget holds ~20 encoded frames: frames (and
    maybe events) are shed, but every loss is counted, the events sent without their frames
    are marked as such, and the accounting still balances."""
    figures = run_soak(faults, use_case_id, duration_s=15.0, phases=[("outage", {"outage_seconds": 16.0})],
                       buffer_bytes=8 * MB)
    stats = figures["stats"]
    assert stats["dropped"].get("buffer_full", 0) + stats["events_shed"] > 0, "the budget never overflowed"
    # Images go before events: an event sent without its frames says so on the server.
    assert figures["stored_marked_images_shed"] == stats["events_shed"], figures
    check_soak(figures)


def test_soak_30fps_durable_outbox_with_random_faults(faults, use_case_id, tmp_path):
    """The same camera with the durable outbox: every event goes through SQLite first."""
    figures = run_soak(faults, use_case_id, duration_s=float(os.environ.get("SOAK_DURABLE_SECONDS", 30)),
                       seed=32, outbox_dir=tmp_path / "outbox")
    check_soak(figures)
    assert not figures["stats"]["dropped"], "the durable outbox lost events"


def test_soak_30fps_with_random_faults(faults, use_case_id):
    check_soak(run_soak(faults, use_case_id, duration_s=float(os.environ.get("SOAK_SECONDS", 45))))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_soak_30fps_with_random_faults_long(faults, use_case_id):
    check_soak(run_soak(faults, use_case_id, duration_s=float(os.environ.get("SOAK_LONG_SECONDS", 300)), seed=31))
