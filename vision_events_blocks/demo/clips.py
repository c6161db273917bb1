"""Synthetic clips that the offline example workflows can see without model weights.

Two scenes, each returned with its ground truth so tests can check what the workflows report:

* :func:`production_line` — textured parts ride a conveyor (top of the frame); every
  ``defect_every``-th part carries a defect mark that ``roboflow_core/template_matching@v1``
  finds with :func:`defect_template`. Workers cross the walkway (bottom band, the
  :data:`WALKWAY_ZONE`), which ``roboflow_core/motion_detection@v1`` restricted to that zone
  sees as intruders.
* :func:`shelf` — a shelf with products that are taken away one at a time; template matching
  with :func:`product_template` counts them, so the inventory count steps down.

Motion detection (MOG2) needs *textured* movers on a static background (a flat square only
yields edge strips), and template matching needs pixel-identical marks; both are built from
seeded noise so every run draws the same clip.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import numpy as np

WIDTH, HEIGHT = 640, 480
FPS = 30

BELT_TOP, BELT_BOTTOM = 60, 260      # conveyor band (rows)
WALKWAY_TOP = 330                     # walkway band: rows WALKWAY_TOP..HEIGHT
WALKWAY_ZONE = [[0, WALKWAY_TOP], [WIDTH - 1, WALKWAY_TOP], [WIDTH - 1, HEIGHT - 1], [0, HEIGHT - 1]]

PART_SIZE = 96
PART_SPEED = 8                        # px per frame: a part crosses the frame in ~90 frames
PART_SPAWN_EVERY = 36                 # frames between two parts
MARK_SIZE = 28

WORKER_SIZE = (44, 100)               # (w, h)
WORKER_SPEED = 7
WORKER_FIRST_FRAME = 35               # after motion detection's default 30-frame history
WORKER_SPAWN_EVERY = 110

PRODUCT_SIZE = (60, 90)               # (w, h)
SHELF_SLOTS = 6


@dataclasses.dataclass(frozen=True)
class Part:
    index: int
    defective: bool
    first_frame: int

    def x(self, frame: int) -> int:
        """Left edge at ``frame`` (enters from the left)."""
        return -PART_SIZE + (frame - self.first_frame) * PART_SPEED


@dataclasses.dataclass(frozen=True)
class Worker:
    index: int
    first_frame: int

    def x(self, frame: int) -> int:
        """Left edge at ``frame`` (enters from the right, walks left)."""
        return WIDTH - (frame - self.first_frame) * WORKER_SPEED


@dataclasses.dataclass(frozen=True)
class LineTruth:
    """What happens in a production-line clip: every part (and whether it is defective), every worker."""

    frames: int
    parts: Tuple[Part, ...]
    workers: Tuple[Worker, ...]

    def visible_parts(self, frame: int) -> List[Part]:
        return [p for p in self.parts if -PART_SIZE < p.x(frame) < WIDTH]

    def defect_visible(self, frame: int) -> bool:
        """The whole mark is in the frame (what template matching needs)."""
        half = (PART_SIZE - MARK_SIZE) // 2
        return any(p.defective and 0 <= p.x(frame) + half and p.x(frame) + half + MARK_SIZE <= WIDTH
                   for p in self.parts)

    def workers_seen(self) -> List[Worker]:
        """Workers that enter the frame before the clip ends."""
        return [w for w in self.workers if w.first_frame < self.frames]


def _texture(seed: int, height: int, width: int) -> np.ndarray:
    """High-contrast blocky noise: plenty of edges for MOG2, unique per seed."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.kron(cells, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width]


def defect_template() -> np.ndarray:
    """The defect mark (BGR): a red square with a white cross. Pass it as the template image."""
    mark = np.zeros((MARK_SIZE, MARK_SIZE, 3), dtype=np.uint8)
    mark[:] = (0, 0, 220)
    rows, cols = np.indices((MARK_SIZE, MARK_SIZE))
    cross = (np.abs(rows - cols) <= 1) | (np.abs(rows + cols - (MARK_SIZE - 1)) <= 1)
    mark[cross] = 255
    return mark


def product_template() -> np.ndarray:
    """One shelf product (BGR): a labelled box. Pass it as the template image."""
    w, h = PRODUCT_SIZE
    box = np.full((h, w, 3), (40, 140, 230), dtype=np.uint8)   # orange box
    box[20:60, 8:w - 8] = _texture(7, 40, w - 16) // 2 + 120     # label
    box[:4], box[-4:], box[:, :4], box[:, -4:] = 30, 30, 30, 30  # dark outline
    return box


def _paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Copy ``patch`` with its top-left at (x, y), clipped to the frame."""
    h, w = patch.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
    if x0 < x1 and y0 < y1:
        frame[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]


def _background() -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH, 3), 70, dtype=np.uint8)
    frame[BELT_TOP:BELT_BOTTOM] = 45                                  # belt
    frame[BELT_TOP:BELT_BOTTOM:24] = 60                               # belt seams
    frame[WALKWAY_TOP:] = (60, 110, 120)                              # walkway floor
    frame[WALKWAY_TOP:WALKWAY_TOP + 6] = (0, 200, 230)                # yellow safety line
    return frame


def production_line(frames: int = 120, defect_every: int = 2) -> Tuple[Iterator[np.ndarray], LineTruth]:
    """Frames (BGR, 640x480) of parts on a conveyor and workers crossing the walkway, plus the truth."""
    parts = tuple(Part(i, defective=(i % defect_every == defect_every - 1), first_frame=i * PART_SPAWN_EVERY)
                  for i in range(frames // PART_SPAWN_EVERY + 1))
    workers = tuple(Worker(i, WORKER_FIRST_FRAME + i * WORKER_SPAWN_EVERY)
                    for i in range(max(0, frames - WORKER_FIRST_FRAME) // WORKER_SPAWN_EVERY + 1))
    truth = LineTruth(frames, parts, workers)
    background = _background()
    part_images = [_texture(100 + p.index, PART_SIZE, PART_SIZE) for p in parts]
    for image, part in zip(part_images, parts):
        if part.defective:
            _paste(image, defect_template(), (PART_SIZE - MARK_SIZE) // 2, (PART_SIZE - MARK_SIZE) // 2)
    worker_images = [_texture(500 + w.index, WORKER_SIZE[1], WORKER_SIZE[0]) for w in workers]
    part_y = (BELT_TOP + BELT_BOTTOM - PART_SIZE) // 2
    worker_y = WALKWAY_TOP + 12 + (HEIGHT - WALKWAY_TOP - 12 - WORKER_SIZE[1]) // 2

    def generate() -> Iterator[np.ndarray]:
        for index in range(frames):
            frame = background.copy()
            for image, part in zip(part_images, parts):
                if index >= part.first_frame:
                    _paste(frame, image, part.x(index), part_y)
            for image, worker in zip(worker_images, workers):
                if index >= worker.first_frame:
                    _paste(frame, image, worker.x(index), worker_y)
            yield frame

    return generate(), truth


@dataclasses.dataclass(frozen=True)
class ShelfTruth:
    frames: int
    removal_frames: Tuple[int, ...]   # frame at which one more product is gone

    def count(self, frame: int) -> int:
        return SHELF_SLOTS - sum(1 for f in self.removal_frames if f <= frame)

    def distinct_counts(self) -> List[int]:
        """Counts in the order they appear (what an on-change inventory event reports)."""
        counts: List[int] = []
        for frame in range(self.frames):
            if not counts or counts[-1] != self.count(frame):
                counts.append(self.count(frame))
        return counts


def shelf(frames: int = 90, removals: Sequence[int] = (30, 55, 75)) -> Tuple[Iterator[np.ndarray], ShelfTruth]:
    """Frames of a shelf with :data:`SHELF_SLOTS` products; one is taken away at each frame in ``removals``."""
    truth = ShelfTruth(frames, tuple(sorted(removals)))
    w, h = PRODUCT_SIZE
    background = np.full((HEIGHT, WIDTH, 3), (180, 190, 200), dtype=np.uint8)
    background[150 + h:150 + h + 14] = (90, 90, 100)                  # the shelf board
    product = product_template()
    gap = (WIDTH - SHELF_SLOTS * w) // (SHELF_SLOTS + 1)

    def generate() -> Iterator[np.ndarray]:
        for index in range(frames):
            frame = background.copy()
            for slot in range(truth.count(index)):
                _paste(frame, product, gap + slot * (w + gap), 150)
            yield frame

    return generate(), truth


def write_clip(path: Path, frames: Iterator[np.ndarray], fps: int = FPS) -> Path:
    """Write BGR frames to an mp4 file (codec mp4v, readable by OpenCV everywhere)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with codec mp4v")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path
