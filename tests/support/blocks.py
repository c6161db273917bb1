"""Helpers for the block tests: workflow specs, detections as inference JSON, frames.

Detections enter workflows the way a model's output would: a ``WorkflowBatchInput`` of kind
``object_detection_prediction`` (or a sibling kind), deserialised by inference into real
``sv.Detections``.
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

WIDTH, HEIGHT = 320, 240
DETECTION_KINDS = {
    "detections": "object_detection_prediction",
    "segmentation": "instance_segmentation_prediction",
    "keypoints": "keypoint_detection_prediction",
    "classification": "classification_prediction",
}


def box(cls: str, x: float = 50, y: float = 60, w: float = 20, h: float = 30, confidence: float = 0.9,
        tracker_id: Optional[int] = None, class_id: int = 0, **extra: Any) -> Dict[str, Any]:
    """One prediction in inference's JSON (centre x/y, width/height in pixels)."""
    item = {"x": x, "y": y, "width": w, "height": h, "confidence": confidence, "class": cls,
            "class_id": class_id, "detection_id": f"{cls}-{x}-{y}-{tracker_id}", **extra}
    if tracker_id is not None:
        item["tracker_id"] = tracker_id
    return item


def detections(*boxes: Dict[str, Any]) -> Dict[str, Any]:
    return {"image": {"width": WIDTH, "height": HEIGHT}, "predictions": list(boxes)}


def classification(top: str, confidence: float) -> Dict[str, Any]:
    """A single-label classification result as inference emits it."""
    return {"image": {"width": WIDTH, "height": HEIGHT}, "top": top, "confidence": confidence,
            "predictions": [{"class": top, "class_id": 0, "confidence": confidence}]}


def frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)


def video_frame(pixels: np.ndarray, stream: str, number: int, when: datetime) -> Dict[str, Any]:
    """An image input carrying video metadata, as InferencePipeline provides it."""
    return {"type": "numpy_object", "value": pixels,
            "video_metadata": {"video_identifier": stream, "frame_number": number,
                               "frame_timestamp": when, "fps": 30, "comes_from_video_file": False}}


def frames_at(start: datetime, count: int, fps: float = 30.0) -> List[datetime]:
    return [start + timedelta(seconds=i / fps) for i in range(count)]


def recent(seconds_ago: float = 60.0) -> datetime:
    return datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)


def workflow(builder: Optional[Dict[str, Any]], sink: Dict[str, Any], predictions_kind: str = "detections",
             extra_inputs: Sequence[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """image + predictions inputs -> optional builder step ``build`` -> sink step ``send``.

    Outputs: every builder output under ``build_*`` and every sink output under ``send_*``.
    """
    inputs = [{"type": "WorkflowImage", "name": "image"},
              {"type": "WorkflowBatchInput", "name": "predictions", "kind": [DETECTION_KINDS[predictions_kind]]},
              *extra_inputs]
    steps, outputs = [], []
    if builder is not None:
        steps.append({"name": "build", **builder})
        outputs.append({"type": "JsonField", "name": "build", "selector": "$steps.build.*"})
    steps.append({"type": "vision_events/sink@v1", "name": "send", **sink})
    outputs.append({"type": "JsonField", "name": "send", "selector": "$steps.send.*"})
    return {"version": "1.0", "inputs": inputs, "steps": steps, "outputs": outputs}


def sink(local_server: Any, use_case_id: str, **fields: Any) -> Dict[str, Any]:
    """Sink fields pointing at the local server; the frame is attached by default."""
    base = {"use_case_id": use_case_id, "api_url": local_server.url, "image": "$inputs.image",
            "cooldown_seconds": 0}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def by_id(events: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {event["eventId"]: event for event in events}


def only_image(event: Dict[str, Any]) -> Dict[str, Any]:
    assert len(event["images"]) == 1, event["images"]
    return event["images"][0]


def clone(value: Any) -> Any:
    return copy.deepcopy(value)
