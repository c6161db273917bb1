"""The ``vision_event`` kind: an event decided by a builder block, waiting for the sink.

A builder (quality check, safety alert, inventory count) decides *whether* and *what* to
report and outputs a :class:`BuiltEvent`; ``vision_events/sink@v1`` adds the destination,
the images and the context ids and submits it. Keeping the two apart lets one builder feed
several sinks (two use cases, two destinations) and lets users inspect the decision.

The kind survives the inference HTTP server: :func:`serialize_vision_event` turns it into a
JSON dict (the predictions in inference's own detections format) and
:func:`deserialize_vision_event` validates such a dict back into a :class:`BuiltEvent`, so
a workflow can also receive an event as an input.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import uuid
from typing import Any, Dict, List, Optional, Union

import numpy as np
import supervision as sv
from pydantic import ValidationError

from ..api.models import EVENT_DATA_MODELS, MAX_TEXT_LENGTH, validate_custom_metadata
from ..api.validation import error_text

VISION_EVENT_KIND_NAME = "vision_event"

Predictions = Union[sv.Detections, Dict[str, Any], None]


@dataclasses.dataclass(frozen=True)
class BuiltEvent:
    """What a builder decided to report; everything the sink needs except where and which image.

    * ``event_data``: the spec §7 payload in wire (camelCase) form, already validated.
    * ``custom_metadata``: metadata the builder adds (e.g. ``qc_reason``); the sink merges its
      own ``custom_metadata`` over it.
    * ``signature``: what makes this event *different* from another of the same type; the
      sink's throttle drops a repeat of the same signature within its cooldown but never a
      different one.
    * ``predictions``: the detections (or classification) the event is about; they become
      the annotations on the input image.
    """

    event_type: str
    event_data: Dict[str, Any]
    signature: str = ""
    custom_metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)
    predictions: Predictions = None
    comment: Optional[str] = None

    def __post_init__(self) -> None:
        model = EVENT_DATA_MODELS.get(self.event_type)
        if model is None:
            raise ValueError(f"event_type must be one of {sorted(EVENT_DATA_MODELS)}, got {self.event_type!r}")
        if not isinstance(self.event_data, dict):
            raise ValueError(f"event_data must be an object, got {type(self.event_data).__name__}")
        try:
            wire = model.model_validate(self.event_data).to_wire()
        except ValidationError as error:
            raise ValueError(error_text(error, limit=None, root="event_data")) from None
        object.__setattr__(self, "event_data", wire)
        validate_custom_metadata(self.custom_metadata, "custom_metadata")
        if self.comment is not None and len(self.comment) > MAX_TEXT_LENGTH:
            raise ValueError(f"comment is {len(self.comment)} characters; at most {MAX_TEXT_LENGTH}")


def _kind() -> Any:
    from inference.core.workflows.execution_engine.entities.types import Kind

    return Kind(
        name=VISION_EVENT_KIND_NAME,
        description="A Vision Event decided by a vision_events builder block, ready for vision_events/sink@v1",
        docs=(
            "Output of `vision_events/quality_check_event@v1`, `vision_events/safety_alert_event@v1` and "
            "`vision_events/inventory_count_event@v1`; input of `vision_events/sink@v1`. Internally a "
            "`vision_events_blocks.blocks.kinds.BuiltEvent`; serialised as "
            '`{"eventType": ..., "eventData": {...}, "signature": ..., "customMetadata": {...}, '
            '"comment": ..., "predictions": <inference detections or classification JSON> | null}`. '
            "An empty value (null) means: nothing to report for this frame."
        ),
        serialised_data_type="dict",
        internal_data_type="vision_events_blocks.blocks.kinds.BuiltEvent",
    )


@functools.lru_cache(maxsize=None)
def vision_event_kind() -> Any:
    """The kind object (built once, after inference is imported)."""
    return _kind()


def load_kinds() -> List[Any]:
    return [vision_event_kind()]


# ------------------------------------------------------------------------ (de)serialization
def serialize_vision_event(value: Optional[BuiltEvent]) -> Optional[Dict[str, Any]]:
    """JSON dict for a :class:`BuiltEvent` (``None`` stays ``None``)."""
    if value is None:
        return None
    if not isinstance(value, BuiltEvent):
        raise TypeError(f"a vision_event must be a BuiltEvent, not {type(value).__name__}")
    return {
        "eventType": value.event_type,
        "eventData": dict(value.event_data),
        "signature": value.signature,
        "customMetadata": dict(value.custom_metadata),
        "comment": value.comment,
        "predictions": _serialize_predictions(value.predictions),
    }


def deserialize_vision_event(parameter: str, value: Any) -> Optional[BuiltEvent]:
    """A :class:`BuiltEvent` from its JSON dict; errors name the parameter and the field."""
    if value is None or isinstance(value, BuiltEvent):
        return value
    from inference.core.workflows.errors import RuntimeInputError

    def fail(message: str) -> RuntimeInputError:
        return RuntimeInputError(
            public_message=f"Runtime parameter `{parameter}` declared as a vision_event: {message}",
            context="workflow_execution | runtime_input_validation",
        )

    if not isinstance(value, dict):
        raise fail(f"expected an object, got {type(value).__name__}")
    unknown = set(value) - {"eventType", "eventData", "signature", "customMetadata", "comment", "predictions"}
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}")
    if "eventType" not in value:
        raise fail("missing eventType")
    try:
        return BuiltEvent(
            event_type=value["eventType"],
            event_data=value.get("eventData") or {},
            signature=str(value.get("signature") or ""),
            custom_metadata=value.get("customMetadata") or {},
            comment=value.get("comment"),
            predictions=_deserialize_predictions(parameter, value.get("predictions")),
        )
    except (ValueError, TypeError) as error:
        raise fail(str(error)) from None


def _serialize_predictions(predictions: Predictions) -> Optional[Dict[str, Any]]:
    if predictions is None:
        return None
    if isinstance(predictions, sv.Detections):
        from inference.core.workflows.core_steps.common.serializers import serialise_sv_detections

        return serialise_sv_detections(_with_serializer_keys(predictions))
    if isinstance(predictions, dict):
        return json.loads(json.dumps(predictions, default=_json_default))
    raise TypeError(f"predictions must be sv.Detections or a classification dict, not {type(predictions).__name__}")


def _deserialize_predictions(parameter: str, data: Any) -> Predictions:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise TypeError(f"predictions must be an object or null, got {type(data).__name__}")
    if "top" in data or "predicted_classes" in data:
        return data  # a classification result stays a dict, as inference passes it
    from inference.core.workflows.core_steps.common.deserializers import deserialize_detections_kind

    image = data.get("image") or {}
    size_unknown = image.get("width") is None or image.get("height") is None
    if size_unknown:  # detections made without an image size (e.g. motion detection): keep it unknown
        data = {**data, "image": {"width": 0, "height": 0}}
    detections = deserialize_detections_kind(f"{parameter}.predictions", data)
    if size_unknown:
        detections.data.pop("image_dimensions", None)
        detections.metadata.pop("image_dimensions", None)
    return detections


def _with_serializer_keys(detections: sv.Detections) -> sv.Detections:
    """inference's serializer needs ``class_name``, ``detection_id`` and a class id per row;
    motion detection and hand-made detections may lack them."""
    if len(detections) == 0:
        return detections
    missing_names = "class_name" not in detections.data
    missing_ids = "detection_id" not in detections.data
    if not (missing_names or missing_ids or detections.class_id is None or detections.confidence is None):
        return detections
    copy = detections[np.arange(len(detections))]
    if copy.class_id is None:
        copy.class_id = np.zeros(len(copy), dtype=int)
    if copy.confidence is None:
        copy.confidence = np.ones(len(copy), dtype=float)
    if missing_names:
        copy.data["class_name"] = np.array([str(c) for c in copy.class_id])
    if missing_ids:
        copy.data["detection_id"] = np.array([str(uuid.uuid4()) for _ in range(len(copy))])
    return copy


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays inside classification dicts; NaN is not JSON."""
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


KINDS_SERIALIZERS = {VISION_EVENT_KIND_NAME: serialize_vision_event}
KINDS_DESERIALIZERS = {VISION_EVENT_KIND_NAME: deserialize_vision_event}
