"""Predictions -> Vision Events annotation lists (spec §8), as camelCase wire dicts.

Pure functions: no I/O, no threads, no global state. The sender calls them on its own
threads, so they may do real work (mask -> polygon), but the per-detection arithmetic is
done with numpy on whole arrays; Python loops only build the output dicts.

Choices (where neither the spec nor inference settles it; safest for the user):

* **Boxes** are centre ``x``/``y`` plus ``width``/``height`` in absolute pixels of the
  *uploaded* image: every coordinate is multiplied by ``scale`` (see
  :func:`vision_events_blocks.mapping.images.encode_jpeg`). A box with ``x2 < x1`` or
  ``y2 < y1`` is the same box written backwards, so it is normalised, not dropped.
* **Non-finite values** (NaN/inf in a box or a confidence, or a box that overflows once
  scaled) cannot be represented in JSON: that detection is dropped and counted in
  ``dropped_non_finite``. A non-finite keypoint drops only that keypoint (counted in
  ``warnings``).
* **Missing confidence** (``detections.confidence is None``, or no ``confidence`` in a
  classification entry) means the producer asserts the object without a score (a zone, a
  manual box, a rule): it is sent as ``1.0``. Confidences are clipped to ``[0, 1]``.
* **Class names** come from ``data["class_name"]``, else ``str(class_id)``, else
  ``"object"``; an empty name falls back the same way; names are cut to
  ``MAX_TEXT_LENGTH`` (1000) characters, the model's limit.
* **Caps**: each list keeps at most ``max_items`` (``MAX_ANNOTATIONS_PER_LIST``, 1000, the
  ingestion consumer's cap),
  the most confident first-come; the number cut is reported in ``truncated``.
* **Masks** become the polygon of their largest outer contour (holes are ignored, as in
  inference), simplified to within ~1 px (more for large outlines, at most
  ``MAX_POLYGON_POINTS`` vertices). An empty mask falls back to an object detection.
* **Single-label classification** sends only the top class: sending every class would make
  a ``detectionClass`` query match every event. Multi-label sends each predicted class.

The rows' reading (names, confidences, the blocks' helpers) is in :mod:`.rows`, the masks'
outlines in :mod:`.masks`; both are re-exported here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import supervision as sv

from ..api.models import MAX_ANNOTATIONS_PER_LIST
from .masks import MAX_POLYGON_POINTS, mask_bounds, mask_to_polygon, polygon_points
from .rows import (  # noqa: F401  (count_non_finite ... filter_detections: their import path stays)
    COORDINATE_DECIMALS,
    _as_float_array,
    _box_dict,
    _boxes,
    _check_options,
    _clean_name,
    _confidences,
    _finite_rows,
    _most_confident,
    _round,
    _rounded,
    _row_class_names,
    count_non_finite,
    detection_class_names,
    filter_detections,
    row_class_names,
    row_confidences,
)

__all__ = [
    "AnnotationLists",
    "LIST_KEYS",
    "MAX_POLYGON_POINTS",
    "classification_to_annotations",
    "count_non_finite",
    "detection_class_names",
    "detections_to_annotations",
    "filter_detections",
    "keypoints_to_annotations",
    "mask_to_polygon",
    "predictions_to_annotations",
    "row_class_names",
    "row_confidences",
]

# (attribute, wire key) of the four annotation lists of an image.
LIST_KEYS: Tuple[Tuple[str, str], ...] = (
    ("object_detections", "objectDetections"),
    ("instance_segmentations", "instanceSegmentations"),
    ("keypoints", "keypoints"),
    ("classifications", "classifications"),
)
# inference's keys in sv.Detections.data (roboflow_workflows/execution_engine/constants.py)
KEYPOINTS_XY = "keypoints_xy"
KEYPOINTS_CLASS_ID = "keypoints_class_id"
KEYPOINTS_CLASS_NAME = "keypoints_class_name"
POLYGON = "polygon"
KEYPOINT_PADDING_CLASS_NAME = ""  # inference pads ragged keypoint rows with this name


@dataclass
class AnnotationLists:
    """The four annotation lists of one image (wire dicts), plus what could not be sent.

    >>> lists = detections_to_annotations(sv.Detections(xyxy=np.array([[0., 0., 10., 20.]])))
    >>> lists.object_detections
    [{'class': 'object', 'x': 5.0, 'y': 10.0, 'width': 10.0, 'height': 20.0, 'confidence': 1.0}]
    """

    object_detections: List[Dict[str, Any]] = field(default_factory=list)
    instance_segmentations: List[Dict[str, Any]] = field(default_factory=list)
    keypoints: List[Dict[str, Any]] = field(default_factory=list)
    classifications: List[Dict[str, Any]] = field(default_factory=list)
    dropped_non_finite: int = 0
    dropped_no_points: int = 0  # keypoint instances with no visible keypoint (nothing to draw)
    truncated: Dict[str, int] = field(default_factory=dict)  # wire key -> items cut by the cap
    warnings: List[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when there is no annotation to send."""
        return not any(getattr(self, attr) for attr, _ in LIST_KEYS)

    def __len__(self) -> int:
        return sum(len(getattr(self, attr)) for attr, _ in LIST_KEYS)

    def losses(self) -> Dict[str, int]:
        """What this mapping could not send, by reason (a report for callers and tests; the
        sender adds ``dropped_non_finite`` and ``truncated`` into ``annotations_dropped``)."""
        losses = {"annotation_non_finite": self.dropped_non_finite,
                  "annotation_no_points": self.dropped_no_points,
                  "annotation_truncated": sum(self.truncated.values())}
        return {reason: count for reason, count in losses.items() if count}

    def to_wire(self) -> Dict[str, List[Dict[str, Any]]]:
        """The non-empty lists under their camelCase keys (ready for an ``EventImage`` dict)."""
        return {key: list(getattr(self, attr)) for attr, key in LIST_KEYS if getattr(self, attr)}

    def apply_to(self, image: Mapping[str, Any], max_items: int = MAX_ANNOTATIONS_PER_LIST) -> Dict[str, Any]:
        """A copy of the ``EventImage`` wire dict ``image`` with these annotations appended.

        Lists already on the image are kept; the merged list is capped again at ``max_items``
        (most confident kept, the cut added to ``truncated``).
        """
        merged = dict(image)
        for attr, key in LIST_KEYS:
            items = getattr(self, attr)
            if items:
                merged[key] = self._capped(list(merged.get(key) or []) + items, key, max_items)
        return merged

    def extend(self, other: "AnnotationLists", max_items: int = MAX_ANNOTATIONS_PER_LIST) -> "AnnotationLists":
        """Add ``other``'s annotations and counters to this one (in place); returns ``self``."""
        for attr, key in LIST_KEYS:
            setattr(self, attr, self._capped(getattr(self, attr) + getattr(other, attr), key, max_items))
        self.dropped_non_finite += other.dropped_non_finite
        self.dropped_no_points += other.dropped_no_points
        for key, count in other.truncated.items():
            self._count_truncated(key, count)
        self.warnings.extend(other.warnings)
        return self

    def _capped(self, items: List[Dict[str, Any]], key: str, max_items: int) -> List[Dict[str, Any]]:
        if len(items) <= max_items:
            return items
        confidences = np.array([item.get("confidence", 1.0) for item in items], dtype=float)
        keep = _most_confident(np.arange(len(items)), confidences, max_items)
        self._count_truncated(key, len(items) - len(keep))
        return [items[i] for i in keep.tolist()]

    def _count_truncated(self, key: str, count: int) -> None:
        if count:
            self.truncated[key] = self.truncated.get(key, 0) + int(count)




# ------------------------------------------------------------------------------ detections
def detections_to_annotations(
    detections: sv.Detections, *, scale: float = 1.0, max_items: int = MAX_ANNOTATIONS_PER_LIST
) -> AnnotationLists:
    """Map ``sv.Detections`` to annotation lists (see the module docstring for the rules).

    Rows with inference keypoints (``data["keypoints_xy"]``) become ``keypoints`` entries;
    rows with a mask (or an inference ``data["polygon"]``) become ``instanceSegmentations``;
    the others, and empty masks, become ``objectDetections``.

    >>> d = sv.Detections(xyxy=np.array([[10., 10., 30., 50.]]), confidence=np.array([0.9]),
    ...                   data={"class_name": np.array(["defect"])})
    >>> detections_to_annotations(d, scale=0.5).object_detections[0]["width"]
    10.0
    """
    scale = _check_options(scale, max_items)
    if not isinstance(detections, sv.Detections):
        raise TypeError(f"detections must be sv.Detections, not {type(detections).__name__}")
    result = AnnotationLists()
    n = len(detections)
    if n == 0:
        return result
    boxes = _boxes(_as_float_array(detections.xyxy, (n, 4), "detections.xyxy"), scale)
    raw_confidence = _confidences(detections.confidence, n, "detections.confidence")
    valid = _finite_rows(boxes, raw_confidence)
    result.dropped_non_finite = int(n - valid.sum())
    if result.dropped_non_finite:
        result.warnings.append(f"{result.dropped_non_finite} detection(s) with NaN/inf box or confidence dropped")
    confidence = np.clip(np.nan_to_num(raw_confidence, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    names = _row_class_names(detections.data, detections.class_id, n)
    rows = np.flatnonzero(valid)
    box_lists, confidence_list = _rounded(boxes, confidence)

    def box(i: int) -> Dict[str, Any]:
        return _box_dict(names[i], box_lists[i], confidence_list[i])

    def capped(candidates: np.ndarray, key: str) -> np.ndarray:
        kept = _most_confident(candidates, confidence, max_items)
        result._count_truncated(key, len(candidates) - len(kept))
        return kept

    if KEYPOINTS_XY in detections.data:
        for i in capped(rows, "keypoints").tolist():
            result.keypoints.append({**box(i), "keypoints": _inference_keypoints(detections.data, i, scale, result)})
        return result

    box_rows = rows
    if detections.mask is not None:
        masks = np.asarray(detections.mask)
        bounds = mask_bounds(masks)
        has_pixels = bounds[rows, 2] > 0
        box_rows = rows[~has_pixels]
        for i in capped(rows[has_pixels], "instanceSegmentations").tolist():
            points = polygon_points(mask_to_polygon(masks[i], tuple(bounds[i].tolist())), scale)
            if points is None:  # only when scaling overflows; keep the box rather than lose it
                box_rows = np.append(box_rows, i)
                continue
            result.instance_segmentations.append({**box(i), "points": points})
        box_rows = np.sort(box_rows)
    elif POLYGON in detections.data:
        polygons = detections.data[POLYGON]
        points_per_row = {int(i): polygon_points(_as_polygon(polygons[i]), scale) for i in rows.tolist()}
        with_polygon = np.array([i for i in rows.tolist() if points_per_row[i] is not None], dtype=np.intp)
        box_rows = np.array([i for i in rows.tolist() if points_per_row[i] is None], dtype=np.intp)
        for i in capped(with_polygon, "instanceSegmentations").tolist():
            result.instance_segmentations.append({**box(i), "points": points_per_row[i]})
    for i in capped(box_rows, "objectDetections").tolist():
        result.object_detections.append(box(i))
    return result


def _as_polygon(value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return np.zeros((0, 2))


def _inference_keypoints(
    data: Mapping[str, Any], row: int, scale: float, result: AnnotationLists
) -> List[Dict[str, Any]]:
    """The keypoints of one row of inference's keypoint ``sv.Detections`` (padding removed)."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            xy = np.asarray(data[KEYPOINTS_XY][row], dtype=np.float64).reshape(-1, 2) * scale
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data['{KEYPOINTS_XY}'][{row}] must be (k, 2) coordinates ({exc})") from None
    count = len(xy)
    names = data.get(KEYPOINTS_CLASS_NAME)
    if names is not None:  # real keypoints have a name; padding slots have ""
        count = min(count, sum(1 for name in names[row] if str(name) != KEYPOINT_PADDING_CLASS_NAME))
    ids_source = data.get(KEYPOINTS_CLASS_ID)
    ids = _keypoint_ids(ids_source[row] if ids_source is not None else None, count)
    finite = np.isfinite(xy[:count]).all(axis=1)
    if not finite.all():
        result.warnings.append(f"{int((~finite).sum())} non-finite keypoint(s) dropped from detection {row}")
    xy = _round(xy, COORDINATE_DECIMALS)
    return [{"id": ids[k], "x": xy[k, 0].item(), "y": xy[k, 1].item()} for k in np.flatnonzero(finite).tolist()]


def _keypoint_ids(values: Any, count: int) -> List[int]:
    """Keypoint class ids; the slot index where an id is missing or not a valid index."""
    try:
        raw = np.asarray(values, dtype=np.float64).reshape(-1) if values is not None else np.zeros(0)
    except (TypeError, ValueError):
        raw = np.zeros(0)
    ids = list(range(count))
    for k, value in enumerate(raw[:count].tolist()):
        if math.isfinite(value) and value >= 0 and value == int(value):
            ids[k] = int(value)
    return ids


def keypoints_to_annotations(
    key_points: sv.KeyPoints, *, scale: float = 1.0, max_items: int = MAX_ANNOTATIONS_PER_LIST
) -> AnnotationLists:
    """Map ``sv.KeyPoints`` to ``keypoints`` entries; the box is the span of the visible points.

    A keypoint is visible when its coordinates are finite, it is not at ``(0, 0)`` (the
    "missing" marker supervision's annotators skip) and ``key_points.visible`` (if set)
    allows it. Keypoint ``id`` is the keypoint's index in the skeleton. An instance with no
    visible keypoint has no box and is dropped (counted in ``dropped_no_points``). Its confidence is
    ``detection_confidence``, else the mean visible keypoint confidence, else 1.0.
    """
    scale = _check_options(scale, max_items)
    result = AnnotationLists()
    n = len(key_points)
    if n == 0:
        return result
    with np.errstate(over="ignore", invalid="ignore"):
        xy = np.asarray(key_points.xy, dtype=np.float64).reshape(n, -1, 2) * scale
    visible = np.isfinite(xy).all(axis=2) & (xy != 0).any(axis=2)
    if key_points.visible is not None:
        visible &= np.asarray(key_points.visible, dtype=bool).reshape(visible.shape)
    has_points = visible.any(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        low = np.where(visible[..., None], xy, np.inf).min(axis=1)
        high = np.where(visible[..., None], xy, -np.inf).max(axis=1)
        boxes = _boxes(np.concatenate([low, high], axis=1), 1.0)
    if key_points.detection_confidence is not None:
        raw_confidence = _confidences(key_points.detection_confidence, n, "key_points.detection_confidence")
    elif key_points.keypoint_confidence is not None:
        per_point = _as_float_array(key_points.keypoint_confidence, visible.shape, "key_points.keypoint_confidence")
        usable = visible & np.isfinite(per_point)
        counts = usable.sum(axis=1)
        raw_confidence = np.where(counts > 0, np.where(usable, per_point, 0).sum(axis=1) / np.maximum(counts, 1), 1.0)
    else:
        raw_confidence = np.ones(n)
    finite = np.isfinite(boxes).all(axis=1) | ~has_points
    finite &= np.isfinite(raw_confidence)
    result.dropped_non_finite = int(n - finite.sum())
    result.dropped_no_points = int((finite & ~has_points).sum())
    if result.dropped_no_points:
        result.warnings.append(f"{result.dropped_no_points} keypoint instance(s) without a visible keypoint dropped")
    confidence = np.clip(np.nan_to_num(raw_confidence, nan=0.0), 0.0, 1.0)
    rows = np.flatnonzero(finite & has_points)
    kept = _most_confident(rows, confidence, max_items)
    result._count_truncated("keypoints", len(rows) - len(kept))
    names = _row_class_names(key_points.data, key_points.class_id, n)
    box_lists, confidence_list = _rounded(boxes, confidence)
    xy_lists = _round(xy, COORDINATE_DECIMALS).tolist()
    for i in kept.tolist():
        shown = np.flatnonzero(visible[i]).tolist()
        points = [{"id": k, "x": xy_lists[i][k][0], "y": xy_lists[i][k][1]} for k in shown]
        result.keypoints.append({**_box_dict(names[i], box_lists[i], confidence_list[i]), "keypoints": points})
    return result


# ------------------------------------------------------------------------------ classification
def classification_to_annotations(prediction: Mapping[str, Any]) -> AnnotationLists:
    """Map an inference classification result (a dict) to ``classifications``.

    * single-label ``{"top": "cat", "confidence": 0.9, "predictions": [{"class": ..., ...}]}``
      -> the top class only (``predictions``' most confident entry when ``top`` is absent);
      ``top == ""`` (inference's "nothing predicted") -> nothing.
    * multi-label ``{"predicted_classes": ["cat"], "predictions": {"cat": {"confidence": ..}}}``
      -> one entry per predicted class.

    >>> classification_to_annotations({"top": "scratch", "confidence": 0.8}).classifications
    [{'class': 'scratch', 'confidence': 0.8}]
    """
    if not isinstance(prediction, Mapping):
        raise TypeError(f"a classification result must be a dict, not {type(prediction).__name__}")
    pairs: List[Tuple[Any, Any, str]] = []  # (name, confidence, field for errors)
    if "predicted_classes" in prediction:
        predicted = prediction["predicted_classes"]
        if isinstance(predicted, (str, bytes)) or not isinstance(predicted, Iterable):
            raise ValueError(f"predicted_classes must be a list of class names, not {type(predicted).__name__}")
        scores = prediction.get("predictions")
        scores = scores if isinstance(scores, Mapping) else {}
        for index, name in enumerate(predicted):
            if not isinstance(name, Hashable):  # e.g. a list from a workflow input's JSON
                raise ValueError(f"predicted_classes[{index}] must be a class name, not {type(name).__name__}")
            entry = scores.get(name)
            confidence = entry.get("confidence") if isinstance(entry, Mapping) else entry
            pairs.append((name, confidence, f"predictions[{name!r}].confidence"))
    elif "top" in prediction:
        pairs.append((prediction["top"], prediction.get("confidence"), "confidence"))
    elif isinstance(prediction.get("predictions"), (list, tuple)):
        best = _best_single_label(prediction["predictions"])
        if best is not None:
            pairs.append(best)
    else:
        raise ValueError("a classification result needs 'top' (single-label) or 'predicted_classes' (multi-label)")
    result = AnnotationLists()
    seen = set()
    for name, confidence, what in pairs:
        clean = _clean_name(name)
        if clean is None or clean in seen:
            continue
        value = _one_confidence(confidence, what)
        if not math.isfinite(value):
            result.dropped_non_finite += 1
            result.warnings.append(f"class {clean!r} with non-finite {what} dropped")
            continue
        seen.add(clean)
        result.classifications.append({"class": clean, "confidence": min(max(value, 0.0), 1.0)})
    if len(result.classifications) > MAX_ANNOTATIONS_PER_LIST:
        result.classifications = result._capped(result.classifications, "classifications", MAX_ANNOTATIONS_PER_LIST)
    return result


def _best_single_label(entries: Sequence[Any]) -> Optional[Tuple[Any, Any, str]]:
    best = None
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ValueError(f"predictions[{index}] must be an object with 'class' and 'confidence'")
        what = f"predictions[{index}].confidence"
        value = _one_confidence(entry.get("confidence"), what)
        if best is None or (math.isfinite(value) and not value <= best[0]):
            best = (value, (entry.get("class", entry.get("class_name")), entry.get("confidence"), what))
    return None if best is None else best[1]


def _one_confidence(value: Any, what: str) -> float:
    if value is None:
        return 1.0
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}") from None


# ------------------------------------------------------------------------------ dispatch
def predictions_to_annotations(
    predictions: Any, *, scale: float = 1.0, max_items: int = MAX_ANNOTATIONS_PER_LIST
) -> AnnotationLists:
    """Annotation lists for whatever a workflow step produced.

    ``None`` -> empty; ``sv.Detections`` / ``sv.KeyPoints`` -> boxes, polygons, keypoints;
    a classification dict -> classifications; a step output ``{"predictions": <one of
    these>}`` -> its predictions; a list of any of these -> merged (then capped). Anything
    else raises ``TypeError`` naming the type. ``scale`` applies to pixel coordinates only.
    """
    scale = _check_options(scale, max_items)
    if predictions is None:
        return AnnotationLists()
    if isinstance(predictions, sv.Detections):
        return detections_to_annotations(predictions, scale=scale, max_items=max_items)
    if isinstance(predictions, sv.KeyPoints):
        return keypoints_to_annotations(predictions, scale=scale, max_items=max_items)
    if isinstance(predictions, Mapping):
        inner = predictions.get("predictions")
        if isinstance(inner, (sv.Detections, sv.KeyPoints)):
            return predictions_to_annotations(inner, scale=scale, max_items=max_items)
        return classification_to_annotations(predictions)
    if isinstance(predictions, (list, tuple)):
        merged = AnnotationLists()
        for item in predictions:
            merged.extend(predictions_to_annotations(item, scale=scale, max_items=max_items), max_items)
        return merged
    raise TypeError(
        "predictions must be sv.Detections, sv.KeyPoints, a classification dict, a list of these "
        f"or None, not {type(predictions).__name__}"
    )

