"""``vision_events/safety_alert_event@v1``: one alert per violator, not one per frame."""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Type, Union

import numpy as np
from pydantic import ConfigDict, Field, field_validator

from inference.core.workflows.execution_engine.entities.base import OutputDefinition
from inference.core.workflows.execution_engine.entities.types import (
    BOOLEAN_KIND,
    DICTIONARY_KIND,
    FLOAT_KIND,
    INTEGER_KIND,
    STRING_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import BlockResult, WorkflowBlock, WorkflowBlockManifest

from ...api.models import MAX_TEXT_LENGTH
from .. import common, throttle
from ..common import ClassesInput, ConfidenceInput, ImageSelector, PredictionsSelector, TextInput
from ..kinds import vision_event_kind

BLOCK_TYPE = "vision_events/safety_alert_event@v1"
SEVERITIES = ("low", "medium", "high")
DEFAULT_SEVERITY = "medium"
TEMPLATE_FIELDS = ("count", "new", "classes", "zone", "alert_type", "severity")
DEFAULT_TEMPLATE = "{count} violation(s): {classes}"
_TRACKS = "vision_events.blocks.safety_tracks"

SHORT_DESCRIPTION = "Raise one safety alert per violator (e.g. no hardhat), not one per frame."

LONG_DESCRIPTION = """
Watch predictions for **safety violations** (`alert_classes`, e.g. `no_hardhat`,
`no_vest`, `person_in_zone`) and describe them as a Vision Event of type `safety_alert`.
Connect the `event` output to **Vision Events Sink** (`vision_events/sink@v1`).

## One alert per violator

A person without a hardhat stays in view for hundreds of frames. When predictions are
tracked (connect **Byte Tracker** so detections carry a `tracker_id`), each violator raises
**one** alert when it first appears and stays quiet until it has been gone for
`realert_after_seconds` (default 60). Without tracker ids the violating *class* plays that
role. Set `realert_after_seconds: 0` to alert on every frame with a violation.

This memory lives in the process (not in the block instance), per workflow step and per
stream (`stream_id`, else the video identifier of `image`), so it works in InferencePipeline
with several cameras and across requests to the inference HTTP server (send still images
with a `stream_id` per camera there). Time is the frame's capture time.

When nothing new is to be reported the `event` output is empty and the connected sink is
skipped for that frame.

## Event content

- `alertType`: `alert_type`, or by default the class of the most confident new violator.
- `severity`: `low`/`medium`/`high`, or a mapping per class such as
  `{"no_hardhat": "high", "no_vest": "medium", "*": "low"}` (`*` for other classes;
  default `medium`). With several classes the highest severity wins.
- `description`: a template with `{count}` (violations in the frame), `{new}` (new
  violators), `{classes}`, `{zone}`, `{alert_type}`, `{severity}`. Default:
  `{count} violation(s): {classes}` plus ` in {zone}` when a `zone` is given.
- The violating detections become the annotations on the image.

## Outputs

`event` (`vision_event` or empty), `alert` (true when an alert was raised on this frame),
`alert_type`, `violations` (violations in this frame, alerted or not).

## Example

```json
{
  "type": "vision_events/safety_alert_event@v1",
  "name": "ppe",
  "predictions": "$steps.tracker.tracked_detections",
  "image": "$inputs.image",
  "alert_classes": ["no_hardhat", "no_vest"],
  "severity": {"no_hardhat": "high", "*": "medium"},
  "description": "{count} violation(s): {classes} in {zone}",
  "zone": "loading dock B",
  "realert_after_seconds": 120
}
```
"""

SeverityInput = Union[Literal["low", "medium", "high"], Dict[str, str], Selector(kind=[STRING_KIND, DICTIONARY_KIND])]


class SafetyAlertManifest(common.VisionEventsManifest):
    model_config = ConfigDict(
        json_schema_extra=common.block_schema_extra(
            "Vision Events Safety Alert", SHORT_DESCRIPTION, LONG_DESCRIPTION, "analytics", priority=2
        )
    )
    type: Literal["vision_events/safety_alert_event@v1"]
    predictions: PredictionsSelector = common.predictions_field(
        "Detections to watch; tracked detections (with tracker_id) alert once per violator."
    )
    image: ImageSelector = common.image_field(common.FRAME_IMAGE_PURPOSE)
    stream_id: TextInput = common.stream_id_field()
    alert_classes: ClassesInput = common.classes_field(
        "Alert Classes", "Classes that are violations.", ["no_hardhat", "no_vest"]
    )
    min_confidence: ConfidenceInput = common.min_confidence_field()
    alert_type: TextInput = Field(
        default=None,
        title="Alert Type",
        description="eventData.alertType; default: the class of the most confident new violator.",
        examples=["ppe_violation", "$inputs.alert_type"],
    )
    severity: SeverityInput = Field(
        default=DEFAULT_SEVERITY,
        title="Severity",
        description="low, medium or high; or a per-class mapping ('*' for other classes).",
        examples=["high", {"no_hardhat": "high", "*": "medium"}],
        json_schema_extra={"always_visible": True},
    )
    description: TextInput = Field(
        default=None,
        title="Description",
        description="Template for eventData.description; placeholders: "
        "{count}, {new}, {classes}, {zone}, {alert_type}, {severity}.",
        examples=["{count} violation(s): {classes} in {zone}"],
    )
    zone: TextInput = Field(
        default=None,
        title="Zone",
        description="Where the camera looks, for the description (e.g. 'loading dock B').",
        examples=["loading dock B", "$inputs.zone"],
    )
    realert_after_seconds: Union[float, Selector(kind=[FLOAT_KIND, INTEGER_KIND])] = Field(
        default=60.0,
        title="Re-alert After (s)",
        description="A violator alerts again only after being gone this long; 0 alerts on every frame.",
        examples=[60, 0],
        json_schema_extra={"always_visible": True},
    )
    external_id: TextInput = common.external_id_field()

    @field_validator("severity")
    @classmethod
    def _severity_values(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, level in value.items():
                if level not in SEVERITIES:
                    raise ValueError(f"severity[{name!r}] must be one of {SEVERITIES}, got {level!r}")
        return value

    @field_validator("description")
    @classmethod
    def _template(cls, value: Optional[str]) -> Optional[str]:
        return common.check_template(value, TEMPLATE_FIELDS, "description")

    @classmethod
    def describe_outputs(cls) -> List[OutputDefinition]:
        return [
            OutputDefinition(name="event", kind=[vision_event_kind()]),
            OutputDefinition(name="alert", kind=[BOOLEAN_KIND]),
            OutputDefinition(name="alert_type", kind=[STRING_KIND]),
            OutputDefinition(name="violations", kind=[INTEGER_KIND]),
        ]


class SafetyAlertEventBlockV1(WorkflowBlock):
    """Decides per frame; the per-violator memory lives in the process-wide block state (:mod:`..state`)."""

    @classmethod
    def get_manifest(cls) -> Type[WorkflowBlockManifest]:
        return SafetyAlertManifest

    def run(
        self,
        predictions: Any,
        alert_classes: Any,
        image: Any = None,
        stream_id: Optional[str] = None,
        min_confidence: float = 0.0,
        alert_type: Optional[str] = None,
        severity: Any = DEFAULT_SEVERITY,
        description: Optional[str] = None,
        zone: Optional[str] = None,
        realert_after_seconds: float = 60.0,
        external_id: Optional[str] = None,
    ) -> BlockResult:
        classes = common.as_class_list(alert_classes, "alert_classes") or []
        violations = common.select(predictions, classes, min_confidence)
        frame = common.frame_context(image, stream_id)
        keys = _violator_keys(violations)
        is_new = _remember(
            common.state_key(BLOCK_TYPE, frame.stream_id, tuple(sorted(classes))),
            keys,
            now=frame.clock,
            realert_after=max(float(realert_after_seconds or 0.0), 0.0),
        )
        if not is_new.any():
            return {"event": None, "alert": False, "alert_type": None, "violations": len(violations)}
        new_classes = violations.class_names[is_new].astype(str)
        top = new_classes[int(np.argmax(violations.confidences[is_new]))]
        new_violators = ",".join(sorted(set(keys[is_new].tolist())))
        kind = common.text(alert_type) or str(top)
        level = _severity(severity, set(new_classes))
        text = common.render_template(
            common.text(description) or _default_template(zone),
            {
                "count": len(violations),
                "new": int(is_new.sum()),
                "classes": ", ".join(violations.classes()),
                "zone": zone or "",
                "alert_type": kind,
                "severity": level,
            },
        )
        event = common.builder_event(
            "safety_alert",
            {"alertType": kind[:MAX_TEXT_LENGTH], "severity": level, "description": text[:MAX_TEXT_LENGTH]},
            signature=f"{kind}|{level}|{new_violators}",
            predictions=violations.predictions,
            external_id=external_id,
        )
        return {"event": event, "alert": True, "alert_type": kind, "violations": len(violations)}


def _violator_keys(violations: common.Selection) -> np.ndarray:
    """Who is violating: the tracker id when tracked, else the class (as strings)."""
    if violations.tracker_ids is not None and len(violations):
        return np.char.add("track:", violations.tracker_ids.astype(str))
    return np.char.add("class:", violations.class_names.astype(str)) if len(violations) else np.array([], dtype=str)


def _remember(memory_key: Any, keys: np.ndarray, now: float, realert_after: float) -> np.ndarray:
    """Mark which violators are new (never seen, or gone ``realert_after`` seconds) and
    record every current violator as seen ``now``. Forgets violators gone for long."""
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    if realert_after <= 0:
        return np.ones(len(keys), dtype=bool)
    tracks = throttle.stream_memory(_TRACKS)
    with tracks:
        seen: Dict[str, float] = tracks.get(memory_key) or {}
        is_new = np.array([now - seen.get(key, -np.inf) >= realert_after for key in keys], dtype=bool)
        seen = {key: at for key, at in seen.items() if now - at < realert_after}
        seen.update({key: now for key in keys.tolist()})
        throttle.bounded_put(tracks, memory_key, seen)
    return is_new


def _severity(severity: Any, classes: set) -> str:
    """The highest severity among ``classes`` (a per-class mapping), or the fixed level."""
    if isinstance(severity, dict):
        fallback = severity.get("*", DEFAULT_SEVERITY)
        levels = [severity.get(name, fallback) for name in classes] or [fallback]
        bad = [level for level in levels if level not in SEVERITIES]
        if bad:
            raise ValueError(f"severity values must be one of {SEVERITIES}, got {bad[0]!r}")
        return max(levels, key=SEVERITIES.index)
    level = str(severity or DEFAULT_SEVERITY).strip().lower()
    if level not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES} or a per-class mapping, got {severity!r}")
    return level


def _default_template(zone: Optional[str]) -> str:
    return DEFAULT_TEMPLATE + (" in {zone}" if zone else "")
