"""Pure mapping from what a pipeline sees to Vision Events wire data (no I/O, no threads).

* :mod:`.annotations`: ``sv.Detections`` / ``sv.KeyPoints`` / classification dicts ->
  the four annotation lists of an ``EventImage`` (camelCase wire dicts).
* :mod:`.rows`: class names and confidences read with the mapping's fallbacks, and the
  small helpers the blocks call in ``run()`` (``filter_detections``, ``row_class_names``,
  ``count_non_finite``...), so a block decides on exactly what reaches the server.
* :mod:`.masks`: instance masks -> polygon outlines.
* :mod:`.images`: frames -> JPEG bytes for the upload, resized with a reported ``scale``.

The sender runs the conversions (annotations, masks, JPEG) on its own threads, off the
pipeline's hot path; only the ``rows`` helpers run on it, on whole numpy arrays.
"""
from .annotations import (
    LIST_KEYS,
    AnnotationLists,
    classification_to_annotations,
    count_non_finite,
    detection_class_names,
    detections_to_annotations,
    filter_detections,
    keypoints_to_annotations,
    mask_to_polygon,
    predictions_to_annotations,
    row_class_names,
    row_confidences,
)
from .images import EncodedImage, encode_jpeg, sniff_image_type, to_bgr_uint8

__all__ = [
    "LIST_KEYS",
    "AnnotationLists",
    "EncodedImage",
    "classification_to_annotations",
    "count_non_finite",
    "detection_class_names",
    "detections_to_annotations",
    "encode_jpeg",
    "filter_detections",
    "keypoints_to_annotations",
    "mask_to_polygon",
    "predictions_to_annotations",
    "row_class_names",
    "row_confidences",
    "sniff_image_type",
    "to_bgr_uint8",
]
