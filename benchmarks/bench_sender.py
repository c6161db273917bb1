"""Sender benchmark: hot-path submit latency and delivered events/s against the local server.

    scripts/py benchmarks/bench_sender.py [--quick]

Prints a table and writes ``benchmarks/results/sender.json``. Figures depend on the machine
(2 shared cores here); they are measurements, not test assertions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import supervision as sv  # noqa: E402

from vision_events_blocks.delivery import ImageAttachment, Sender, SenderConfig  # noqa: E402
from vision_events_blocks.mapping.images import encode_jpeg  # noqa: E402
from vision_events_blocks.server.testing import LocalServer  # noqa: E402


def textured_frame(height: int, width: int, seed: int) -> np.ndarray:
    """A frame with structure (JPEG size like a real scene, not a flat colour)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=np.uint8)
    frame = np.repeat(np.repeat(small, 16, axis=0), 16, axis=1)
    noise = rng.integers(0, 24, frame.shape, dtype=np.uint8)
    return np.ascontiguousarray(frame + noise)


def detections(n: int, width: int, height: int, seed: int = 0) -> sv.Detections:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [width - 60, height - 60], (n, 2))
    wh = rng.uniform(10, 60, (n, 2))
    return sv.Detections(
        xyxy=np.hstack([xy, xy + wh]).astype(np.float32),
        confidence=rng.uniform(0.3, 1.0, n).astype(np.float32),
        class_id=rng.integers(0, 5, n),
        data={"class_name": np.array([f"class_{i}" for i in rng.integers(0, 5, n)])},
    )


def percentiles(samples_ns: List[int]) -> Dict[str, float]:
    values = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {"p50_ms": round(float(np.percentile(values, 50)), 4), "p99_ms": round(float(np.percentile(values, 99)), 4),
            "max_ms": round(float(values.max()), 4), "n": int(values.size)}


def event(use_case: str, i: int) -> Dict[str, Any]:
    return {"eventType": "quality_check", "useCaseId": use_case, "eventData": {"result": "fail" if i % 7 else "pass"},
            "customMetadata": {"line": "A1", "frame": i}}


def timed_submits(sender: Sender, make: Callable[[int], tuple], count: int, pace_s: float = 0.0) -> List[int]:
    samples = []
    next_at = time.perf_counter()
    for i in range(count):
        args = make(i)
        start = time.perf_counter_ns()
        sender.submit(*args)
        samples.append(time.perf_counter_ns() - start)
        if pace_s:
            next_at += pace_s
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    results: Dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    with tempfile.TemporaryDirectory() as data_dir, LocalServer(data_dir=data_dir, faults=True) as server:
        use_case = server.create_use_case("bench")
        frame_a, frame_b = textured_frame(1080, 1920, 1), textured_frame(1080, 1920, 2)
        dets = detections(100, 1920, 1080)

        # 1. hot path, no images
        sender = Sender(server.url, server.api_key, SenderConfig())
        samples = timed_submits(sender, lambda i: (event(use_case, i),), int(5000 * scale))
        results["submit_no_images"] = percentiles(samples)
        sender.flush(60, delivered=True)

        # 2. hot path, two 1080p frames + 100 detections, at 30 submits/s (a camera)
        samples = timed_submits(
            sender, lambda i: (event(use_case, i), [ImageAttachment(input=frame_a, output=frame_b)], dets),
            int(300 * scale), pace_s=1 / 30)
        results["submit_two_1080p_100_dets_30fps"] = percentiles(samples)
        # 2b. the same, back to back (the buffer fills; drop_oldest works under the lock)
        samples = timed_submits(
            sender, lambda i: (event(use_case, i), [ImageAttachment(input=frame_a, output=frame_b)], dets),
            int(300 * scale))
        results["submit_two_1080p_100_dets_burst"] = percentiles(samples)
        sender.flush(120, delivered=True)
        s = sender.stats()
        jpeg = encode_jpeg(frame_a, quality=sender.config.jpeg_quality, max_side=sender.config.max_image_side)
        results["image_submits"] = {"uploads": s["uploads"], "dropped": s["dropped"],
                                    "peak_buffered_mb": round(s["peak_buffered_bytes"] / 1e6, 1),
                                    "jpeg_kb_per_1080p_frame": round(len(jpeg.data) / 1024)}
        sender.close(10)

        # 3. delivered events/s, no images
        n = int(5000 * scale)
        sender = Sender(server.url, server.api_key, SenderConfig())
        before = len(server.request_log())
        start = time.perf_counter()
        for i in range(n):
            sender.submit(event(use_case, i))
        ok = sender.flush(300, delivered=True)
        elapsed = time.perf_counter() - start
        requests = len(server.request_log()) - before
        results["delivered_no_images"] = {"events": n, "seconds": round(elapsed, 2), "events_per_s": round(n / elapsed, 1),
                                          "requests": requests, "all_delivered": ok}
        sender.close(10)

        # 3b. the same through the durable outbox (group commits, rows deleted after the 2xx)
        sender = Sender(server.url, server.api_key, SenderConfig(outbox_dir=os.path.join(data_dir, "outbox")))
        start = time.perf_counter()
        for i in range(n):
            sender.submit(event(use_case, i))
        ok = sender.flush(300, delivered=True)
        elapsed = time.perf_counter() - start
        results["delivered_no_images_durable"] = {"events": n, "seconds": round(elapsed, 2),
                                                  "events_per_s": round(n / elapsed, 1), "all_delivered": ok}
        sender.close(10)

        # 4. delivered events/s with one 1080p frame + 100 detections each ("block" policy:
        #    the submitter waits for room, so this measures the sender, not the drops)
        n = int(200 * scale)
        sender = Sender(server.url, server.api_key, SenderConfig(overflow_policy="block", block_timeout_s=60))
        before = len(server.request_log())
        start = time.perf_counter()
        for i in range(n):
            sender.submit(event(use_case, i), [ImageAttachment(input=frame_a)], dets)
        ok = sender.flush(300, delivered=True)
        elapsed = time.perf_counter() - start
        stats = sender.stats()
        requests = len(server.request_log()) - before
        results["delivered_1080p_100_dets"] = {"events": n, "seconds": round(elapsed, 2), "events_per_s": round(n / elapsed, 1),
                                               "requests": requests, "sent": stats["sent"], "dropped": stats["dropped"],
                                               "all_delivered": ok}
        sender.close(10)

    out = ROOT / "benchmarks" / "results" / "sender.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measurement':40} {'figure':>40}")
    for name, value in results.items():
        if name == "machine":
            continue
        shown = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"{name:40} {shown}")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
