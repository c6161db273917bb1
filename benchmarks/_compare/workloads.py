"""The workload both sides run: frames, detections and the two equivalent workflow definitions.

Both sides send the same event (a failed ``quality_check`` with an external id and one
custom-metadata key) with the same images and detections, cooldown off, fire-and-forget,
so the only difference between them is the sink block and what stands behind it.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import numpy as np

BUILTIN = "builtin"
OURS = "ours"
SIDES = (BUILTIN, OURS)

BUILTIN_SINK_TYPE = "roboflow_core/roboflow_vision_events@v1"
OURS_SINK_TYPE = "vision_events/sink@v1"

# Image workloads: which image slots an event fills, and at which resolution.
#   name -> (height, width, slots); slots ⊆ ("input", "output")
IMAGE_WORKLOADS: Dict[str, tuple] = {
    "no_images": (0, 0, ()),
    "one_720p": (720, 1280, ("input",)),
    "two_1080p": (1080, 1920, ("input", "output")),
}


def synthetic_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A BGR frame that compresses like a camera picture (gradient, blocks, sensor noise).

    Random noise alone would make ~1 MB JPEGs and a flat frame ~20 KB ones; both would bias
    the encode and upload costs that dominate delivery with images.
    """
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 160, height, dtype=np.float32)[:, None]
    cols = np.linspace(0, 80, width, dtype=np.float32)[None, :]
    base = rows + cols
    frame = np.repeat(base[:, :, None], 3, axis=2) + np.array([20, 40, 60], dtype=np.float32)
    block = 60
    tiles = rng.integers(0, 90, size=(height // block + 1, width // block + 1, 3)).astype(np.float32)
    frame += np.repeat(np.repeat(tiles, block, axis=0), block, axis=1)[:height, :width]
    frame += rng.normal(0, 6, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def detections_payload(count: int, height: int, width: int, seed: int = 0) -> Dict[str, Any]:
    """``count`` boxes as an ``object_detection_prediction`` workflow input (arrives as sv.Detections)."""
    rng = np.random.default_rng(seed)
    sizes = rng.uniform(20, 120, size=(count, 2))
    centres = rng.uniform(0.1, 0.9, size=(count, 2)) * [width, height]
    confidences = rng.uniform(0.5, 0.99, size=count)
    classes = ("screw", "scratch", "dent", "label")
    predictions = [
        {
            "x": float(cx), "y": float(cy), "width": float(w), "height": float(h),
            "confidence": float(conf), "class": classes[i % len(classes)],
            "class_id": i % len(classes), "detection_id": f"d{i}",
        }
        for i, ((cx, cy), (w, h), conf) in enumerate(zip(centres, sizes, confidences))
    ]
    return {"image": {"width": width, "height": height}, "predictions": predictions}


def workflow(side: str, *, use_case_id: str, api_url: str, images: str, detections: bool,
             image_from_input: str = "image") -> Dict[str, Any]:
    """The same one-step workflow for either side: inputs -> sink -> outputs.

    ``images`` names an entry of ``IMAGE_WORKLOADS``; ``detections`` adds a ``dets`` batch
    input (object detections) wired to the sink's predictions.
    """
    slots = IMAGE_WORKLOADS[images][2]
    inputs: List[Dict[str, Any]] = []
    if "input" in slots:
        inputs.append({"type": "WorkflowImage", "name": image_from_input})
    if "output" in slots:
        inputs.append({"type": "WorkflowImage", "name": "visualisation"})
    if detections:
        inputs.append({"type": "WorkflowBatchInput", "name": "dets", "kind": ["object_detection_prediction"]})
    step = _builtin_step(use_case_id) if side == BUILTIN else _ours_step(use_case_id, api_url)
    image_field, output_field = ("input_image", "output_image") if side == BUILTIN else ("image", "output_image")
    if "input" in slots:
        step[image_field] = f"$inputs.{image_from_input}"
    if "output" in slots:
        step[output_field] = "$inputs.visualisation"
    if detections:
        step["predictions"] = "$inputs.dets"
    outputs = [
        {"type": "JsonField", "name": name, "selector": f"$steps.sink.{name}"}
        for name in ("error_status", "throttling_status", "message", "event_id")
    ]
    return {"version": "1.0", "inputs": inputs, "steps": [step], "outputs": outputs}


def _builtin_step(use_case_id: str) -> Dict[str, Any]:
    return {
        "type": BUILTIN_SINK_TYPE, "name": "sink", "solution": use_case_id,
        "event_type": "quality_check", "qc_result": "fail", "external_id": "bench-line-3",
        "custom_metadata": {"bench": "compare_builtin"},
        "fire_and_forget": True, "cooldown_seconds": 0,
    }


def _ours_step(use_case_id: str, api_url: str) -> Dict[str, Any]:
    return {
        "type": OURS_SINK_TYPE, "name": "sink", "use_case_id": use_case_id, "api_url": api_url,
        "event_type": "quality_check", "event_data": {"result": "fail", "externalId": "bench-line-3"},
        "custom_metadata": {"bench": "compare_builtin"},
        "fire_and_forget": True, "cooldown_seconds": 0,
    }


def runtime_inputs(images: str, frames: Dict[str, np.ndarray], dets: Optional[Dict[str, Any]],
                   image_from_input: str = "image", live_frame: Optional[int] = None) -> Dict[str, Any]:
    """Fresh copies of the frames for one event: a camera hands over a new array every frame,
    and queued work that keeps frames alive must pay for them, as it would in production.

    ``live_frame`` (a frame number) marks the frames as a *live stream*, with the video
    metadata InferencePipeline gives a camera (``comes_from_video_file: False``): a source
    that cannot wait. Without it the frames come from a script, which can.
    """
    slots = IMAGE_WORKLOADS[images][2]
    values: Dict[str, Any] = {}

    def image(pixels: np.ndarray) -> Any:
        if live_frame is None:
            return pixels
        return {"type": "numpy_object", "value": pixels,
                "video_metadata": {"video_identifier": "camera-1", "frame_number": live_frame,
                                   "frame_timestamp": datetime.now(timezone.utc), "fps": 30,
                                   "comes_from_video_file": False}}

    if "input" in slots:
        values[image_from_input] = image(frames[images].copy())
    if "output" in slots:
        values["visualisation"] = image(frames[images].copy())
    if dets is not None:
        values["dets"] = dets
    return values
