"""Reading the rows of a prediction: class names, confidences and boxes with the mapping's
fallbacks, and the helpers the blocks use on their hot path (so that a block decides on
exactly the names and confidences that reach the server).

>>> import supervision as sv
>>> d = sv.Detections(xyxy=np.zeros((2, 4)), class_id=np.array([3, 4]), data={"class_name": np.array(["", "cup"])})
>>> row_class_names(d)
['3', 'cup']
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import supervision as sv

from ..api.models import MAX_ANNOTATIONS_PER_LIST, MAX_TEXT_LENGTH

__all__ = ["count_non_finite", "detection_class_names", "filter_detections", "has_float_arrays", "row_class_names", "row_confidences"]

COORDINATE_DECIMALS = 2  # pixels: 0.01 px is far below what anyone can see
CONFIDENCE_DECIMALS = 4
FALLBACK_CLASS = "object"


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


def has_float_arrays(detections: sv.Detections) -> bool:
    """``xyxy`` an ``(n, 4)`` float array and ``confidence`` None or ``(n,)`` floats: the shape
    every model gives, which the mapping reads without conversion (NaN rows are left out there)."""
    n = len(detections)
    xyxy, confidence = detections.xyxy, detections.confidence
    return (isinstance(xyxy, np.ndarray) and xyxy.shape == (n, 4) and xyxy.dtype.kind == "f"
            and (confidence is None or (isinstance(confidence, np.ndarray) and confidence.shape == (n,)
                                        and confidence.dtype.kind == "f")))


def count_non_finite(detections: sv.Detections) -> int:
    """How many detections the mapping will leave out for a NaN/inf box or confidence."""
    n = len(detections)
    if n == 0:
        return 0
    if has_float_arrays(detections):
        # The common case in one pass each: the total is finite only when every value is
        # (inf - inf is NaN; an overflow to inf just falls through to the row-by-row count below).
        confidence = detections.confidence
        total = float(detections.xyxy.sum()) + (0.0 if confidence is None else float(confidence.sum()))
        if math.isfinite(total):
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
