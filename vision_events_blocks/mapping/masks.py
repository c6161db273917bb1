"""Instance masks -> polygon outlines (the ``points`` of an instance segmentation)."""
from __future__ import annotations

from typing import List, Optional, Tuple

import cv2
import numpy as np

from .rows import COORDINATE_DECIMALS, _round

__all__ = ["MAX_POLYGON_POINTS", "mask_bounds", "mask_to_polygon", "polygon_points"]

MAX_POLYGON_POINTS = 256


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


def mask_bounds(masks: np.ndarray) -> np.ndarray:
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


def polygon_points(polygon: np.ndarray, scale: float) -> Optional[List[List[float]]]:
    points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) * scale
    if len(points) < 3 or not np.isfinite(points).all():
        return None
    return _round(points, COORDINATE_DECIMALS).tolist()

