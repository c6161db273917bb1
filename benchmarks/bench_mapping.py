"""Mapping benchmark: JPEG sizes/timings of realistic frames and annotation mapping timings.

    scripts/py benchmarks/bench_mapping.py [--quick]

Prints a table and writes ``benchmarks/results/mapping.json``. Figures depend on the machine
(2 shared cores here); they are measurements, not test assertions.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict

import cv2
import numpy as np
import supervision as sv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision_events_blocks.mapping import encode_jpeg, predictions_to_annotations  # noqa: E402


def textured_frame(height: int, width: int, seed: int = 0, noise: float = 6.0) -> np.ndarray:
    """Camera-like content: gradients, filled shapes, outlines and sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=2)
    scale = width / 1920
    for _ in range(40):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(frame, centre, int(rng.integers(10, 200) * scale) + 1, rng.integers(0, 255, 3).tolist(), -1)
        corner = (centre[0] + int(rng.integers(20, 300) * scale), centre[1] + int(80 * scale))
        cv2.rectangle(frame, centre, corner, rng.integers(0, 255, 3).tolist(), 3)
    frame += rng.normal(0, noise, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def timed(function: Callable[[], Any], repeat: int) -> Dict[str, float]:
    """Median and best wall time of ``repeat`` calls, in milliseconds."""
    function()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(float(np.median(times)), 2), "best_ms": round(min(times), 2)}


def many_masks(count: int, height: int, width: int, seed: int = 0) -> sv.Detections:
    """``count`` filled ellipses with ragged edges, one per mask, spread over the frame."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, height, width), dtype=bool)
    for i in range(count):
        centre = (int(rng.integers(20, width - 20)), int(rng.integers(20, height - 20)))
        axes = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
        cv2.ellipse(masks[i].view(np.uint8), centre, axes, float(rng.integers(0, 180)), 0, 360, 1, -1)
    xyxy = sv.mask_to_xyxy(masks).astype(float)
    return sv.Detections(xyxy=xyxy, mask=masks, confidence=rng.random(count),
                         data={"class_name": np.array([f"c{i % 5}" for i in range(count)])})


def many_boxes(count: int, seed: int = 0) -> sv.Detections:
    rng = np.random.default_rng(seed)
    top_left = rng.random((count, 2)) * 1800
    xyxy = np.hstack([top_left, top_left + rng.random((count, 2)) * 100 + 1])
    return sv.Detections(xyxy=xyxy, confidence=rng.random(count), class_id=rng.integers(0, 80, count),
                         data={"class_name": np.array([f"class-{i % 80}" for i in range(count)])})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 3 if args.quick else 10
    results: Dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version(),
                               "opencv": cv2.__version__, "jpeg": {}, "mapping": {}}

    for label, (height, width) in {"720p": (720, 1280), "1080p": (1080, 1920), "4K": (2160, 3840)}.items():
        for noise in (3.0, 6.0, 10.0):
            frame = textured_frame(height, width, noise=noise)
            encoded = encode_jpeg(frame)
            row = {"bytes": len(encoded.data), "kb": round(len(encoded.data) / 1024, 1),
                   "uploaded": f"{encoded.width}x{encoded.height}", "scale": encoded.scale,
                   **timed(lambda: encode_jpeg(frame), repeat)}
            results["jpeg"][f"{label} noise={noise:g}"] = row

    for name, predictions in {
        "100 boxes": many_boxes(100),
        "1000 boxes": many_boxes(1000),
        "5000 boxes (capped to 1000)": many_boxes(5000),
        "100 masks 640x480": many_masks(100, 480, 640),
        "1000 masks 640x480": many_masks(1000, 480, 640),
        "100 masks 1920x1080": many_masks(100, 1080, 1920),
    }.items():
        lists = predictions_to_annotations(predictions)
        points = sum(len(s["points"]) for s in lists.instance_segmentations)
        results["mapping"][name] = {
            "annotations": len(lists), "polygon_points": points,
            "json_kb": round(len(json.dumps(lists.to_wire())) / 1024, 1),
            **timed(lambda: predictions_to_annotations(predictions), max(2, repeat // 2) if "mask" in name else repeat),
        }

    print(f"{'JPEG (quality 80, max side 1920)':<34}{'KB':>8}{'uploaded':>12}{'median ms':>11}")
    for name, row in results["jpeg"].items():
        print(f"{name:<34}{row['kb']:>8}{row['uploaded']:>12}{row['median_ms']:>11}")
    print(f"\n{'mapping':<34}{'items':>8}{'points':>8}{'JSON KB':>9}{'median ms':>11}")
    for name, row in results["mapping"].items():
        print(f"{name:<34}{row['annotations']:>8}{row['polygon_points']:>8}{row['json_kb']:>9}{row['median_ms']:>11}")
    out = ROOT / "benchmarks" / "results" / "mapping.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
