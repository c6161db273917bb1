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
  ``"object"``; an empty name falls back the same way; names are cut to 1000 characters
  (the model's limit).
* **Caps**: each list keeps at most ``max_items`` (1000, the ingestion consumer's cap),
  the most confident first-come; the number cut is reported in ``truncated``.
* **Masks** become the polygon of their largest outer contour (holes are ignored, as in
  inference), simplified to within ~1 px (more for large outlines, at most
  ``MAX_POLYGON_POINTS`` vertices). An empty mask falls back to an object detection.
* **Single-label classification** sends only the top class: sending every class would make
  a ``detectionClass`` query match every event. Multi-label sends each predicted class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import supervision as sv

from ..api.models import MAX_ANNOTATIONS_PER_LIST, MAX_TEXT_LENGTH

__all__ = [
    "AnnotationLists",
    "LIST_KEYS",
    "MAX_POLYGON_POINTS",
    "classification_to_annotations",
    "detection_class_names",
    "detections_to_annotations",
    "filter_detections",
    "keypoints_to_annotations",
    "mask_to_polygon",
    "predictions_to_annotations",
]

# (attribute, wire key) of the four annotation lists of an image.
LIST_KEYS: Tuple[Tuple[str, str], ...] = (
    ("object_detections", "objectDetections"),
    ("instance_segmentations", "instanceSegmentations"),
    ("keypoints", "keypoints"),
    ("classifications", "classifications"),
)
MAX_POLYGON_POINTS = 256
COORDINATE_DECIMALS = 2  # pixels: 0.01 px is far below what anyone can see
CONFIDENCE_DECIMALS = 4
FALLBACK_CLASS = "object"
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
        """What this mapping could not send, by reason (for the sender's drop counters)."""
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


# ------------------------------------------------------------------------------ helpers
def _check_options(scale: float, max_items: int) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)):
        raise TypeError(f"scale must be a number, not {type(scale).__name__}")
    if not (math.isfinite(float(scale)) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    if isinstance(max_items, bool) or not isinstance(max_items, (int, np.integer)):
        raise TypeError(f"max_items must be an integer, not {type(max_items).__name__}")
    if not 0 <= max_items <= MAX_ANNOTATIONS_PER_LIST:
        raise ValueError(f"max_items must be between 0 and {MAX_ANNOTATIONS_PER_LIST}, got {max_items}")
    return float(scale)


def _most_confident(indices: np.ndarray, confidences: np.ndarray, max_items: int) -> np.ndarray:
    """The at most ``max_items`` most confident of ``indices`` (ties: first come), in original order."""
    if len(indices) <= max_items:
        return indices
    order = np.argsort(-confidences[indices], kind="stable")[:max_items]
    return indices[np.sort(order)]


def _as_float_array(values: Any, shape: Tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must hold numbers ({exc})") from None
    if array.size != math.prod(shape):
        raise ValueError(f"{what} has shape {array.shape}, expected {shape}")
    return array.reshape(shape)


_NOT_A_NAME = frozenset({"nan", "none"})


def _clean_name(name: Any) -> Optional[str]:
    if name is None:
        return None
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    text = str(name)
    if not text or text.lower() in _NOT_A_NAME:
        return None
    return text[:MAX_TEXT_LENGTH]


def _row_class_names(data: Mapping[str, Any], class_id: Optional[np.ndarray], n: int) -> List[str]:
    """One name per row: ``data['class_name']``, else ``str(class_id)``, else ``"object"``."""
    names = data.get("class_name") if data else None
    if isinstance(names, np.ndarray) and names.dtype.kind == "U" and len(names) == n:
        # The common case (inference's detections): a unicode array of ordinary names. One cheap
        # pass decides; the general per-row cleaning below is several times slower.
        values = names.tolist()
        if all(0 < len(v) <= MAX_TEXT_LENGTH and v.lower() not in _NOT_A_NAME for v in values):
            return values
    names = list(names) if names is not None and len(names) == n else [None] * n
    ids = np.asarray(class_id).tolist() if class_id is not None and len(class_id) == n else [None] * n
    result = []
    for name, class_id_value in zip(names, ids):
        clean = _clean_name(name)
        if clean is None and isinstance(class_id_value, (int, float)) and math.isfinite(class_id_value):
            clean = str(int(class_id_value))
        result.append(clean or FALLBACK_CLASS)
    return result


def _confidences(confidence: Any, n: int, what: str = "confidence") -> np.ndarray:
    """Raw confidences (``1.0`` when absent); not yet clipped, so NaN/inf can be detected."""
    if confidence is None:
        return np.ones(n)
    return _as_float_array(confidence, (n,), what)


def _boxes(xyxy: np.ndarray, scale: float) -> np.ndarray:
    """(n, 4) xyxy -> (n, 4) centre x, centre y, width, height, normalised and scaled."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = xyxy * scale
        x1, x2 = np.minimum(scaled[:, 0], scaled[:, 2]), np.maximum(scaled[:, 0], scaled[:, 2])
        y1, y2 = np.minimum(scaled[:, 1], scaled[:, 3]), np.maximum(scaled[:, 1], scaled[:, 3])
        width, height = x2 - x1, y2 - y1
        return np.stack([x1 + width / 2, y1 + height / 2, width, height], axis=1)


def _rounded(boxes: np.ndarray, confidence: np.ndarray) -> Tuple[List[List[float]], List[float]]:
    """Boxes to 0.01 px and confidences to 1e-4 as Python lists: a third of the JSON, no lost meaning."""
    return _round(boxes, COORDINATE_DECIMALS).tolist(), _round(confidence, CONFIDENCE_DECIMALS).tolist()


def _round(values: np.ndarray, decimals: int) -> np.ndarray:
    """``np.round`` that leaves huge values alone (rounding 1e308 would overflow to inf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(np.abs(values) < 1e12, np.round(values, decimals), values)


def _box_dict(name: str, box: Sequence[float], confidence: float) -> Dict[str, Any]:
    return {"class": name, "x": box[0], "y": box[1], "width": box[2], "height": box[3], "confidence": confidence}


# ------------------------------------------------------------------------------ masks
def mask_to_polygon(mask: np.ndarray, bounds: Optional[Tuple[int, int, int, int]] = None) -> Optional[np.ndarray]:
    """The simplified outline (k >= 3, 2) of a mask's largest outer contour, or None if empty.

    Works on the mask's bounding rectangle only (fast for small objects on big frames);
    ``bounds`` = ``(x, y, w, h)`` of the set pixels when the caller already knows them.
    A mask too thin to have an area (a line of pixels) gets its bounding rectangle.

    >>> mask = np.zeros((10, 10), bool); mask[2:5, 3:8] = True
    >>> mask_to_polygon(mask).tolist()
    [[3, 2], [3, 4], [7, 4], [7, 2]]
    """
    pixels = mask.view(np.uint8) if mask.dtype == np.bool_ else (mask > 0).view(np.uint8)
    x, y, w, h = bounds if bounds is not None else cv2.boundingRect(np.ascontiguousarray(pixels))
    if w == 0 or h == 0:
        return None
    crop = np.ascontiguousarray(pixels[y : y + h, x : x + w])
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))
    contour = max(contours, key=cv2.contourArea) if contours else None
    if contour is None or len(contour) < 3:
        return np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]])
    perimeter = cv2.arcLength(contour, True)
    epsilon = max(1.0, 0.002 * perimeter)
    polygon = cv2.approxPolyDP(contour, epsilon, True)
    while len(polygon) > MAX_POLYGON_POINTS:
        epsilon *= 2
        polygon = cv2.approxPolyDP(contour, epsilon, True)
    if len(polygon) < 3:
        polygon = contour
    return polygon.reshape(-1, 2)


def _mask_bounds(masks: np.ndarray) -> np.ndarray:
    """(n, 4) ``x, y, w, h`` of the set pixels of each mask (all zero for an empty mask).

    Two vectorised reductions over the whole stack instead of one scan per mask.
    """
    n, height, width = masks.shape
    if masks.dtype != np.bool_:
        masks = masks > 0
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    y0, x0 = rows.argmax(axis=1), cols.argmax(axis=1)
    y1, x1 = height - rows[:, ::-1].argmax(axis=1), width - cols[:, ::-1].argmax(axis=1)
    bounds = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    bounds[~rows.any(axis=1)] = 0
    return bounds


def _polygon_points(polygon: np.ndarray, scale: float) -> Optional[List[List[float]]]:
    points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) * scale
    if len(points) < 3 or not np.isfinite(points).all():
        return None
    return _round(points, COORDINATE_DECIMALS).tolist()


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
        bounds = _mask_bounds(masks)
        has_pixels = bounds[rows, 2] > 0
        box_rows = rows[~has_pixels]
        for i in capped(rows[has_pixels], "instanceSegmentations").tolist():
            points = _polygon_points(mask_to_polygon(masks[i], tuple(bounds[i].tolist())), scale)
            if points is None:  # only when scaling overflows; keep the box rather than lose it
                box_rows = np.append(box_rows, i)
                continue
            result.instance_segmentations.append({**box(i), "points": points})
        box_rows = np.sort(box_rows)
    elif POLYGON in detections.data:
        polygons = detections.data[POLYGON]
        points_per_row = {int(i): _polygon_points(_as_polygon(polygons[i]), scale) for i in rows.tolist()}
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


def _finite_rows(boxes: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Rows whose box and confidence are all finite (the others are dropped and counted)."""
    return np.isfinite(boxes).all(axis=1) & np.isfinite(confidence)


# ------------------------------------------------------------------------------ block helpers
def row_class_names(detections: sv.Detections) -> List[str]:
    """One class name per row, with the same fallbacks the mapping sends, so blocks decide on
    exactly the names that reach the server."""
    return _row_class_names(detections.data, detections.class_id, len(detections))


def row_confidences(detections: sv.Detections) -> np.ndarray:
    """One confidence per row, ``1.0`` when the model gives none, as the mapping reads them."""
    return _confidences(detections.confidence, len(detections), "detections.confidence")


def detection_class_names(detections: sv.Detections) -> List[str]:
    """The distinct class names of ``detections``, sorted (same fallbacks as the mapping)."""
    return sorted(set(row_class_names(detections)))


def count_non_finite(detections: sv.Detections) -> int:
    """How many detections the mapping will leave out for a NaN/inf box or confidence."""
    n = len(detections)
    if n == 0:
        return 0
    xyxy, confidence = detections.xyxy, detections.confidence
    if (isinstance(xyxy, np.ndarray) and xyxy.shape == (n, 4) and xyxy.dtype.kind == "f"
            and (confidence is None or (isinstance(confidence, np.ndarray) and confidence.shape == (n,)
                                        and confidence.dtype.kind == "f"))):
        # The common case in one pass each: two sums are finite only when every value is
        # (an overflow to inf just falls through to the row-by-row count below).
        if np.isfinite(xyxy.sum()) and (confidence is None or np.isfinite(confidence.sum())):
            return 0
    boxes = _as_float_array(detections.xyxy, (n, 4), "detections.xyxy")
    confidence = _confidences(detections.confidence, n, "detections.confidence")
    return int(n - _finite_rows(boxes, confidence).sum())


def filter_detections(
    detections: sv.Detections,
    classes: Optional[Iterable[str]] = None,
    min_confidence: Optional[float] = None,
) -> sv.Detections:
    """The rows whose class is in ``classes`` (None: any) and confidence >= ``min_confidence``.

    Missing confidence counts as 1.0, like in the mapping; NaN never passes a threshold.

    >>> d = sv.Detections(xyxy=np.zeros((2, 4)), confidence=np.array([0.2, 0.9]),
    ...                   data={"class_name": np.array(["a", "b"])})
    >>> filter_detections(d, classes=["b"], min_confidence=0.5).data["class_name"].tolist()
    ['b']
    """
    n = len(detections)
    keep = np.ones(n, dtype=bool)
    if classes is not None:
        wanted = np.array([str(c) for c in classes], dtype=object)
        names = np.array(_row_class_names(detections.data, detections.class_id, n), dtype=object)
        keep &= np.isin(names, wanted)
    if min_confidence is not None:
        with np.errstate(invalid="ignore"):
            keep &= _confidences(detections.confidence, n) >= float(min_confidence)
    return detections if keep.all() else detections[keep]
