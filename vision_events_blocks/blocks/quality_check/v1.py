"""``vision_events/quality_check_event@v1``: pass/fail inspection verdicts as Vision Events."""
from __future__ import annotations

from typing import Any, List, Literal, Optional, Tuple, Type, Union

import numpy as np
from pydantic import ConfigDict, Field

from inference.core.workflows.execution_engine.entities.base import OutputDefinition
from inference.core.workflows.execution_engine.entities.types import (
    BOOLEAN_KIND,
    INTEGER_KIND,
    STRING_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import BlockResult, WorkflowBlock, WorkflowBlockManifest

from ...api.models import MAX_TEXT_LENGTH
from .. import common
from ..common import ClassesInput, ConfidenceInput, ImageSelector, PredictionsSelector, TextInput
from ..kinds import vision_event_kind

IMAGE_PURPOSE = (
    "The inspected frame. Not read by this block (a quality check keeps no per-camera memory): "
    "the sink's own image gives the event its time, stream and picture."
)
BLOCK_TYPE = "vision_events/quality_check_event@v1"
REASON_KEY = "qc_reason"

SHORT_DESCRIPTION = "Turn inspection predictions into a pass/fail quality check event."

LONG_DESCRIPTION = """
Decide whether an inspected part **passes or fails** and describe the verdict as a Vision
Event of type `quality_check`. Connect the `event` output to **Vision Events Sink**
(`vision_events/sink@v1`), which delivers it with the frame and the annotations.

## How the verdict is made

1. Predictions below `min_confidence` are ignored.
2. Any detection of a `fail_classes` class (e.g. `scratch`, `missing_screw`) fails the part.
3. `min_count` / `max_count` check how many detections of `count_classes` (default: every
   class that is not a fail class) are expected, e.g. exactly 4 screws:
   `min_count: 4, max_count: 4`.
4. `result` (`"pass"`/`"fail"`, or a boolean where `true` means pass) from upstream logic
   overrides the rules above.

Classification models work too: the predicted class(es) are checked against
`fail_classes`.

Every frame produces a verdict. The event carries `eventData.result` (`pass`/`fail`) and
`eventData.externalId`; the human-readable reason (e.g. `2 x scratch; count 3 < min 4`) goes
into the custom metadata key `qc_reason`, so `eventData` stays exactly as the API specifies
and the reason is still filterable. The sink's cooldown sends a repeated identical verdict
at most once per `cooldown_seconds`, but a different verdict, reason or `external_id` is
never throttled.

## Outputs

- `event` (`vision_event`): the quality check event, for the sink.
- `result` (`"pass"` or `"fail"`) and `passed` (boolean): for other blocks (e.g. a PLC reject gate).

## Example

```json
{
  "type": "vision_events/quality_check_event@v1",
  "name": "qc",
  "predictions": "$steps.model.predictions",
  "image": "$inputs.image",
  "fail_classes": ["scratch", "dent"],
  "count_classes": ["screw"],
  "min_count": 4,
  "max_count": 4,
  "min_confidence": 0.5,
  "external_id": "$inputs.serial_number"
}
```
followed by
```json
{"type": "vision_events/sink@v1", "name": "send", "event": "$steps.qc.event",
 "use_case_id": "assembly-line-qa", "image": "$inputs.image"}
```
"""


class QualityCheckManifest(common.VisionEventsManifest):
    model_config = ConfigDict(
        json_schema_extra=common.block_schema_extra(
            "Vision Events Quality Check", SHORT_DESCRIPTION, LONG_DESCRIPTION, "analytics", priority=2
        )
    )
    type: Literal["vision_events/quality_check_event@v1"]
    predictions: Optional[PredictionsSelector] = common.predictions_field(
        "Detections or classification of the inspected part.", required=False
    )
    image: ImageSelector = common.image_field(IMAGE_PURPOSE)
    fail_classes: Optional[ClassesInput] = Field(
        default=None,
        title="Fail Classes",
        description="Classes that fail the part when any one is detected (defects).",
        examples=[["scratch", "dent"], "$inputs.defect_classes"],
        json_schema_extra={"always_visible": True},
    )
    count_classes: Optional[ClassesInput] = Field(
        default=None,
        title="Count Classes",
        description="Classes counted for min_count / max_count (default: every class that is not a fail class).",
        examples=[["screw"]],
    )
    min_count: Optional[Union[int, Selector(kind=[INTEGER_KIND])]] = Field(
        default=None,
        title="Minimum Count",
        description="Fail when fewer counted detections are present (e.g. 4 screws expected).",
        examples=[4, "$inputs.expected_parts"],
    )
    max_count: Optional[Union[int, Selector(kind=[INTEGER_KIND])]] = Field(
        default=None,
        title="Maximum Count",
        description="Fail when more counted detections are present.",
        examples=[4],
    )
    min_confidence: ConfidenceInput = common.min_confidence_field()
    result: Optional[Union[Literal["pass", "fail"], bool, Selector(kind=[STRING_KIND, BOOLEAN_KIND])]] = Field(
        default=None,
        title="Result Override",
        description="Explicit verdict from upstream logic ('pass'/'fail', or true = pass); overrides the rules.",
        examples=["fail", "$steps.logic.output"],
    )
    external_id: TextInput = common.external_id_field()

    @classmethod
    def describe_outputs(cls) -> List[OutputDefinition]:
        return [
            OutputDefinition(name="event", kind=[vision_event_kind()]),
            OutputDefinition(name="result", kind=[STRING_KIND]),
            OutputDefinition(name="passed", kind=[BOOLEAN_KIND]),
        ]


class QualityCheckEventBlockV1(WorkflowBlock):
    """Pure decision: no state, no I/O."""

    @classmethod
    def get_manifest(cls) -> Type[WorkflowBlockManifest]:
        return QualityCheckManifest

    def run(
        self,
        predictions: Any = None,
        image: Any = None,
        fail_classes: Any = None,
        count_classes: Any = None,
        min_count: Optional[int] = None,
        max_count: Optional[int] = None,
        min_confidence: float = 0.0,
        result: Any = None,
        external_id: Optional[str] = None,
    ) -> BlockResult:
        seen = common.select(predictions, None, min_confidence)
        verdict, reason = judge(
            seen,
            fail_classes=common.as_class_list(fail_classes, "fail_classes") or [],
            count_classes=common.as_class_list(count_classes, "count_classes"),
            min_count=min_count,
            max_count=max_count,
            override=_override(result),
        )
        event = common.builder_event(
            "quality_check",
            {"result": verdict},
            signature=f"{verdict}|{reason}",
            predictions=seen.predictions,
            external_id=external_id,
            custom_metadata={REASON_KEY: reason[:MAX_TEXT_LENGTH]},
        )
        return {"event": event, "result": verdict, "passed": verdict == "pass"}


def judge(
    seen: common.Selection,
    fail_classes: List[str],
    count_classes: Optional[List[str]],
    min_count: Optional[int],
    max_count: Optional[int],
    override: Optional[str],
) -> Tuple[str, str]:
    """(``"pass"``/``"fail"``, reason) for the confident predictions ``seen``."""
    names = seen.class_names.astype(str) if len(seen) else np.array([], dtype=str)
    is_fail = np.isin(names, fail_classes)
    counted = np.isin(names, count_classes) if count_classes is not None else ~is_fail
    n_counted = int(counted.sum())
    problems = [f"{int((names == name).sum())} x {name}" for name in sorted(set(names[is_fail]))]
    if min_count is not None and n_counted < int(min_count):
        problems.append(f"count {n_counted} < min {int(min_count)}")
    if max_count is not None and n_counted > int(max_count):
        problems.append(f"count {n_counted} > max {int(max_count)}")
    if override is not None:
        detail = "; ".join(problems) if problems else "rules found no problem"
        return override, f"result set by workflow ({detail})"
    if problems:
        return "fail", "; ".join(problems)
    return "pass", f"ok: {n_counted} counted, no fail class"


def _override(result: Any) -> Optional[str]:
    """``pass``/``fail`` from a string or a boolean; a clear error names the field otherwise."""
    if result is None or result == "":
        return None
    if isinstance(result, (bool, np.bool_)):
        return "pass" if result else "fail"
    text = str(result).strip().lower()
    if text in ("pass", "passed", "ok", "true"):
        return "pass"
    if text in ("fail", "failed", "false"):
        return "fail"
    raise ValueError(f"result must be 'pass', 'fail' or a boolean, got {result!r}")
