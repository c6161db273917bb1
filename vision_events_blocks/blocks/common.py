"""What the four blocks share: manifest base and fields, UI hints, the frame context, selection
and the builders' event.

Everything here runs on the pipeline's hot path, so it only reads what the host already
computed (vectorised numpy on the detections); no encoding, no I/O.
"""
from __future__ import annotations

import dataclasses
import string
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import supervision as sv
from pydantic import Field

from inference.core.workflows.execution_engine.entities.types import (
    CLASSIFICATION_PREDICTION_KIND,
    FLOAT_KIND,
    FLOAT_ZERO_TO_ONE_KIND,
    IMAGE_KIND,
    INSTANCE_SEGMENTATION_PREDICTION_KIND,
    KEYPOINT_DETECTION_PREDICTION_KIND,
    LIST_OF_VALUES_KIND,
    OBJECT_DETECTION_PREDICTION_KIND,
    STRING_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import WorkflowBlockManifest

from ..api.models import MAX_TEXT_LENGTH
from ..mapping.rows import count_non_finite, has_float_arrays
from .kinds import BuiltEvent, Predictions

ENGINE_COMPATIBILITY = ">=1.3.0,<2.0.0"
LICENSE = "Apache-2.0"
UI_SECTION = "data_storage"
UI_ICON = "fal fa-bell"

PREDICTION_KINDS = [
    OBJECT_DETECTION_PREDICTION_KIND,
    INSTANCE_SEGMENTATION_PREDICTION_KIND,
    KEYPOINT_DETECTION_PREDICTION_KIND,
    CLASSIFICATION_PREDICTION_KIND,
]


def block_schema_extra(name: str, short: str, long: str, block_type: str, priority: int) -> Dict[str, Any]:
    """``json_schema_extra`` of a block manifest, in the core blocks' layout."""
    return {
        "name": name,
        "version": "v1",
        "short_description": short,
        "long_description": long,
        "license": LICENSE,
        "block_type": block_type,
        "ui_manifest": {
            "section": UI_SECTION,
            "icon": UI_ICON,
            "blockPriority": priority,
            "popular": False,
        },
    }


class VisionEventsManifest(WorkflowBlockManifest):
    """Base of the four manifests: they were all built and tested against the same engine range."""

    @classmethod
    def get_execution_engine_compatibility(cls) -> Optional[str]:
        return ENGINE_COMPATIBILITY


# ------------------------------------------------------------------------ shared manifest fields
def predictions_field(description: str, required: bool = True) -> Any:
    return Field(
        default=... if required else None,
        title="Predictions",
        description=description,
        examples=["$steps.model.predictions", "$steps.byte_tracker.tracked_detections"],
        json_schema_extra={"always_visible": True},
    )


PredictionsSelector = Selector(kind=PREDICTION_KINDS)
ClassesInput = Union[List[str], Selector(kind=[LIST_OF_VALUES_KIND])]
ConfidenceInput = Union[float, Selector(kind=[FLOAT_ZERO_TO_ONE_KIND, FLOAT_KIND])]
TextInput = Optional[Union[str, Selector(kind=[STRING_KIND])]]


def image_field(purpose: str) -> Any:
    return Field(
        default=None,
        title="Image",
        description=purpose,
        examples=["$inputs.image"],
        json_schema_extra={"always_visible": True},
    )


ImageSelector = Optional[Selector(kind=[IMAGE_KIND])]

FRAME_IMAGE_PURPOSE = (
    "The frame the predictions come from. Only its video metadata is read: the stream "
    "(camera) keeps its own state, and the event time is the frame's capture time. "
    "Connect it whenever several cameras share one workflow."
)


def stream_id_field() -> Any:
    return Field(
        default=None,
        title="Stream ID",
        description="Whose memory to use (one per camera); default: the video identifier of `image`. "
        "Set it (e.g. `$inputs.camera`) when still images from several cameras reach the same workflow "
        "over HTTP, where frames carry no video metadata.",
        examples=["$inputs.camera", "dock-b"],
    )


def min_confidence_field() -> Any:
    return Field(
        default=0.0,
        title="Minimum Confidence",
        description="Detections below this confidence are ignored (0 keeps all).",
        examples=[0.5, "$inputs.min_confidence"],
    )


def external_id_field() -> Any:
    return Field(
        default=None,
        title="External ID",
        description="Your id for correlating the event with other systems, e.g. a batch or "
        f"serial number (eventData.externalId, at most {MAX_TEXT_LENGTH} characters). A different external "
        "id is never throttled as a repeat.",
        examples=["batch-2025-001", "$inputs.serial_number"],
    )


def classes_field(title: str, description: str, example: List[str], default_all: bool = False) -> Any:
    return Field(
        default=None if default_all else ...,
        title=title,
        description=description,
        examples=[example, "$inputs.classes"],
        json_schema_extra={"always_visible": True},
    )


# ------------------------------------------------------------------------ frame context
class FrameContext(NamedTuple):
    """Where and when a frame was seen (a tuple: built on every frame, so cheap to build).

    ``stream_id`` is the video identifier when the frame carries real video metadata
    (InferencePipeline, video inputs), else ``None``; ``timestamp`` is the capture time
    (UTC, aware); ``clock`` the same instant in epoch seconds, used for cooldowns so that
    throttling follows the video's own time.
    """

    stream_id: Optional[str]
    timestamp: datetime
    can_wait: bool = True  # only a live stream cannot wait: it degrades rather than stall

    @property
    def clock(self) -> float:
        return self.timestamp.timestamp()


def frame_context(image: Any, stream_id: Any = None) -> FrameContext:
    """The frame's stream and capture time; now (UTC) when the image has no video metadata.

    An explicit ``stream_id`` input wins over the frame's video identifier: still images sent
    over HTTP carry no video metadata, so it is the only way to tell their cameras apart.
    ``WorkflowImageData.video_metadata`` invents metadata (the parent id and ``now``) for
    still images, so the private ``_video_metadata`` tells real metadata from that default.
    inference stamps frames with naive local time: a naive timestamp is read as local time.
    """
    explicit = text(stream_id)
    metadata = getattr(image, "_video_metadata", None) if image is not None else None
    if metadata is None:
        now = datetime.now(timezone.utc)
        return FrameContext(explicit, now)
    stamp = metadata.frame_timestamp.astimezone(timezone.utc)  # naive -> local time -> UTC
    stream = explicit or text(metadata.video_identifier)
    from_file = bool(getattr(metadata, "comes_from_video_file", False))
    return FrameContext(stream, stamp, from_file)


def state_key(block_type: str, stream_id: Optional[str], *parts: Any) -> Tuple[Any, ...]:
    """Key for per-step, per-stream state in the process-wide block state (:mod:`.state`).

    The step's name comes from the Execution Engine's context (set for every step it runs);
    outside the engine the block type stands in.
    """
    return (block_type, _current_step_name() or "", stream_id or "", *parts)


def _current_step_name() -> Optional[str]:
    try:
        from inference.core.workflows.execution_engine.v1.dynamic_blocks.workflow_debug import (
            current_debug_step_name,
        )
    except ImportError:  # a different engine layout: fall back to the block type alone
        return None
    return current_debug_step_name.get()


# ------------------------------------------------------------------------ selecting predictions
@dataclasses.dataclass(frozen=True)
class Selection:
    """The predictions that matter to a block, with per-row class names and confidences.

    ``predictions`` is the filtered ``sv.Detections`` (or the classification dict, which
    maps to annotations as a whole); ``tracker_ids`` is ``None`` when nothing was tracked.
    """

    predictions: Predictions
    class_names: np.ndarray
    confidences: np.ndarray
    tracker_ids: Optional[np.ndarray]

    def __len__(self) -> int:
        return len(self.class_names)

    def classes(self) -> List[str]:
        """Distinct class names, sorted (stable for signatures and messages)."""
        return sorted({str(name) for name in self.class_names})


def select(predictions: Predictions, classes: Optional[Iterable[str]], min_confidence: float) -> Selection:
    """Rows of ``predictions`` of the given classes (all when ``None``) at or above ``min_confidence``.

    Non-finite confidences never pass. Classification results count each predicted class
    once (the top class for single-label models).
    """
    if predictions is None:
        return _empty_selection(None)
    wanted = None if classes is None else {str(c) for c in classes}
    threshold = float(min_confidence or 0.0)
    if isinstance(predictions, sv.Detections):
        return _select_detections(predictions, wanted, threshold)
    if isinstance(predictions, dict):
        return _select_classification(predictions, wanted, threshold)
    raise TypeError(
        f"predictions must be detections or a classification result, not {type(predictions).__name__}"
    )


def _empty_selection(predictions: Predictions) -> Selection:
    """Nothing selected; ``predictions`` is kept (a classification maps to annotations as a whole)."""
    return Selection(predictions, np.array([], dtype=object), np.array([], dtype=float), None)


def _select_detections(detections: sv.Detections, wanted: Optional[set], min_confidence: float) -> Selection:
    from ..mapping import filter_detections, row_class_names, row_confidences

    classes = None if wanted is None else sorted(wanted)
    selected = filter_detections(detections, classes=classes, min_confidence=min_confidence)
    names = np.asarray(row_class_names(selected), dtype=object)
    confidences = row_confidences(selected)
    tracker_ids = None if selected.tracker_id is None else np.asarray(selected.tracker_id)
    return Selection(selected, names, confidences, tracker_ids)


def _select_classification(result: Dict[str, Any], wanted: Optional[set], min_confidence: float) -> Selection:
    """The classes the mapping will send for this result (single-label: the top class;
    multi-label: each predicted class once), kept by class and confidence.

    The mapping's own reading is used so that a block decides on exactly what reaches the
    server, and a malformed result (it may come from a workflow input as any JSON) fails
    here, naming ``predictions``, instead of being accepted and dropped by the sender later.
    """
    from ..mapping import classification_to_annotations

    try:
        entries = classification_to_annotations(result).classifications
    except (ValueError, TypeError) as error:
        raise ValueError(f"predictions: {error}") from None
    kept = [
        (entry["class"], entry["confidence"])
        for entry in entries
        if (wanted is None or entry["class"] in wanted) and entry["confidence"] >= min_confidence
    ]
    if not kept:
        return _empty_selection(result)
    names, confidences = zip(*kept)
    return Selection(result, np.array(names, dtype=object), np.array(confidences, dtype=float), None)


def non_finite_count(predictions: Predictions) -> int:
    """Detections in an unusual form (int or list arrays, odd shapes) whose box or confidence
    is NaN/inf; a malformed one raises ``ValueError`` naming ``detections.xyxy`` on its frame.

    The form every model gives (float arrays) is not scanned here, to keep the frame cheap:
    the sender's encoder leaves those rows out and counts them in
    ``stats()["annotations_dropped"]``. A classification result is read the mapping's way
    here, so a malformed one (any JSON from a workflow input) fails at once naming
    ``predictions`` instead of being accepted and then dropped by the sender.
    """
    if isinstance(predictions, sv.Detections):
        return 0 if has_float_arrays(predictions) else count_non_finite(predictions)
    if isinstance(predictions, dict) and not isinstance(predictions.get("predictions"), (sv.Detections, sv.KeyPoints)):
        _select_classification(predictions, None, 0.0)
    return 0


# ------------------------------------------------------------------------ small helpers
def text(value: Any) -> Optional[str]:
    """A workflow text input as a string; ``None`` when unset (``None`` or ``""``), since the
    UI sends an empty string for a field left blank."""
    return None if value is None or value == "" else str(value)


def builder_event(
    event_type: str,
    event_data: Dict[str, Any],
    signature: str,
    predictions: Predictions,
    external_id: Any,
    custom_metadata: Optional[Dict[str, Any]] = None,
) -> BuiltEvent:
    """A builder's event. ``external_id`` goes into ``eventData.externalId`` *and* into the
    signature, so a different external id (a new part, a new batch) is never throttled as a
    repeat of the previous one."""
    external = text(external_id)
    return BuiltEvent(
        event_type=event_type,
        event_data={**event_data, "externalId": external},
        signature=f"{signature}|{external or ''}",
        custom_metadata=dict(custom_metadata or {}),
        predictions=predictions,
    )


def as_class_list(value: Any, field: str) -> Optional[List[str]]:
    """A list of class names from a literal, a workflow value or a comma-separated string."""
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [str(item) for item in value]
    raise ValueError(f"{field} must be a list of class names, got {type(value).__name__}")


class _KeepUnknown(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_template(template: str, values: Mapping[str, Any]) -> str:
    """``str.format`` that leaves unknown ``{placeholders}`` as they are instead of raising,
    so a typo in a template coming from a workflow input never stops the pipeline."""
    try:
        return string.Formatter().vformat(template, (), _KeepUnknown(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


def check_template(template: Optional[str], allowed: Sequence[str], field: str) -> Optional[str]:
    """Manifest-time check of a literal template: names every unknown placeholder."""
    if template is None or template.startswith("$"):
        return template
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(f"{field}: invalid template {template!r}: {error}") from None
    unknown = sorted(name for name in names if name.split(".")[0].split("[")[0] not in allowed)
    if unknown:
        raise ValueError(f"{field}: unknown placeholder(s) {unknown}; use {sorted(allowed)}")
    return template
