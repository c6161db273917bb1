"""The encoder stage: raw frames and predictions in, JPEGs, annotations and a checked event out.

It runs on up to as many threads as the machine has cores (``encode_threads``; OpenCV's JPEG
encoder releases the GIL), off the pipeline's hot path: one thread while it keeps up, every
thread once events queue up for it (``QueueWorkers``' ``spill_after``). The event was
validated once at submit; here it is dumped to its wire dict, its images are encoded
(smaller when a live stream is behind: ``degrade``), its predictions mapped onto the input
frame, and the final event with its images is checked against the model so a bad one fails
here, not at the server.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import numpy as np

from ..api.models import VisionEvent
from .config import SenderConfig
from .envelope import Envelope, ImageSlot

logger = logging.getLogger("vision_events_blocks.delivery")

BODY_OVERHEAD = 1024  # bytes counted per event for its dict and bookkeeping
_ANNOTATION_BYTES = 160  # JSON bytes of one annotation, for the estimate before serialising
_DEGRADED_MIN_SIDE = 320  # a degraded image keeps at least this longest side


class Encoding:
    """Turns one envelope's raw parts into wire parts (pure apart from the encoders it calls)."""

    def __init__(self, config: SenderConfig) -> None:
        # Import the mapping now: an encoder that first imports it at interpreter exit fails
        # ("can't register atexit after shutdown") and the exit flush would lose the images.
        from ..mapping import predictions_to_annotations
        from ..mapping.images import encode_jpeg

        self._map, self._encode = predictions_to_annotations, encode_jpeg
        self.config = config

    def prepare(self, env: Envelope, degrade: bool = False) -> int:
        """Fill ``env.body``, ``slots`` and ``image_specs``; returns annotations cut (NaN, caps)."""
        if env.body is None:
            env.body = env.event.to_wire()
            env.event = None
        input_scale = 1.0
        for index, attachment in enumerate(env.attachments or ()):
            spec: Dict[str, Any] = {"_slots": {}}
            if attachment.label:
                spec["label"] = attachment.label
            for role, data, key in (("output", attachment.output, "sourceId"),
                                    ("input", attachment.input, "inputSourceId")):
                if data is None:
                    continue
                encoded = self._encode(data, quality=self.config.jpeg_quality,
                                       max_side=self._max_side(env, data, degrade),
                                       optimize=self.config.jpeg_optimize)
                if index == 0 and role == "input":
                    input_scale = float(encoded.scale)
                spec["_slots"][key] = len(env.slots)
                env.slots.append(ImageSlot(role, encoded.content_type, data=encoded.data, size=len(encoded.data)))
            env.image_specs.append(spec)
        cut = 0
        if env.predictions is not None:
            annotations = self._map(env.predictions, scale=input_scale)
            env.image_specs[0].update(annotations.to_wire())
            cut = annotations.dropped_non_finite + sum(annotations.truncated.values())
        env.attachments = env.predictions = None
        env.mark_body()
        annotation_count = 0
        if env.image_specs:  # the body was validated at submit; the added images are checked here
            VisionEvent.model_validate(env.wire_event(placeholder="pending-upload"))
            annotation_count = sum(len(v) for spec in env.image_specs for v in spec.values() if isinstance(v, list))
        env.body_size = BODY_OVERHEAD + _ANNOTATION_BYTES * annotation_count  # estimate until serialised
        return cut

    def _max_side(self, env: Envelope, data: Any, degrade: bool) -> Optional[int]:
        """The configured side, or half of it for a live stream that is behind (counted)."""
        configured = self.config.max_image_side
        if not degrade or not isinstance(data, np.ndarray):
            return configured
        longest = max(data.shape[:2])
        current = min(configured or longest, longest)
        smaller = max(_DEGRADED_MIN_SIDE, current // 2)
        if smaller >= current:
            return configured
        env.images_degraded += 1
        return smaller
