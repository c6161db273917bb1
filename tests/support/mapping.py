"""What the mapping tests share: every produced annotation must validate with its wire model."""
from __future__ import annotations

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
