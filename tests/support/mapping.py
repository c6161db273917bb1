"""What the mapping tests share: the wire-validity check, detections from boxes, camera-like frames."""
from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from vision_events_blocks.api.models import (
    Classification,
    EventImage,
    InstanceSegmentation,
    KeypointDetection,
    ObjectDetection,
)
from vision_events_blocks.mapping import AnnotationLists

MODELS = {
    "object_detections": ObjectDetection,
    "instance_segmentations": InstanceSegmentation,
    "keypoints": KeypointDetection,
    "classifications": Classification,
}


def assert_valid(lists: AnnotationLists, max_items: int = 1000) -> None:
    """Every dict validates with its wire model, no list is longer than ``max_items``, and the
    whole set fits one EventImage."""
    for attr, model in MODELS.items():
        items = getattr(lists, attr)
        assert len(items) <= max_items
        for item in items:
            model.model_validate(item)
    EventImage.model_validate(lists.apply_to({"sourceId": "img"}))


def boxes(xyxy, confidence=None, names=None, class_id=None, **kwargs) -> sv.Detections:
    data = {} if names is None else {"class_name": np.array(names)}
    return sv.Detections(
        xyxy=np.array(xyxy, dtype=float).reshape(-1, 4),
        confidence=None if confidence is None else np.array(confidence, dtype=float),
        class_id=None if class_id is None else np.array(class_id),
        data=data,
        **kwargs,
    )


def textured_frame(height: int = 1080, width: int = 1920, seed: int = 0) -> np.ndarray:
    """Camera-like content: gradients, shapes and sensor noise (not a flat test card)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=2)
    for _ in range(40):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(frame, centre, int(rng.integers(10, 200)), rng.integers(0, 255, 3).tolist(), -1)
        cv2.rectangle(frame, centre, (centre[0] + int(rng.integers(20, 300)), centre[1] + 80),
                      rng.integers(0, 255, 3).tolist(), 3)
    frame += rng.normal(0, 6, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)
