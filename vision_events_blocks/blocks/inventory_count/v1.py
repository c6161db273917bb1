"""``vision_events/inventory_count_event@v1``: item counts, sent when they matter."""
from __future__ import annotations

from typing import Any, List, Literal, Optional, Type, Union

from pydantic import ConfigDict, Field

from inference.core.workflows.execution_engine.entities.base import OutputDefinition
from inference.core.workflows.execution_engine.entities.types import (
    FLOAT_KIND,
    INTEGER_KIND,
    STRING_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import BlockResult, WorkflowBlock, WorkflowBlockManifest

from .. import common, throttle
from ..common import ClassesInput, ConfidenceInput, ImageSelector, PredictionsSelector, TextInput
from ..kinds import vision_event_kind

BLOCK_TYPE = "vision_events/inventory_count_event@v1"
EMIT_MODES = ("every_frame", "on_change", "interval")
_LAST_EMITTED = "vision_events.blocks.inventory_last"

SHORT_DESCRIPTION = "Count items in view and report the count as an inventory event."

LONG_DESCRIPTION = """
Count the detected items (`item_classes`, default: every class) and describe the count as a
Vision Event of type `inventory_count`. Connect the `event` output to **Vision Events Sink**
(`vision_events/sink@v1`).

## When an event is emitted (`emit`)

- `on_change` (default): on the first frame of a stream and whenever the count differs
  from the last count emitted for that stream — a shelf going from 12 to 11 boxes.
- `interval`: at most once every `interval_seconds` (frame time), whatever the count — a
  periodic stock snapshot.
- `every_frame`: every frame (the sink's `cooldown_seconds` still throttles repeats of the
  same count).

On frames that emit nothing the `event` output is empty and the connected sink is skipped.
The memory of the last emitted count lives in the process, per workflow step and per stream
(`stream_id`, else the video identifier of `image`), so it works with several cameras and
across requests to the inference HTTP server.

## Event content

`eventData.itemCount` (the count), `itemType` (`item_type`, or the class when exactly one
item class is given), `location`, `externalId`; the counted detections become the
annotations on the image.

## Outputs

`event` (`vision_event` or empty) and `item_count` (on every frame).

## Example

```json
{
  "type": "vision_events/inventory_count_event@v1",
  "name": "shelf",
  "predictions": "$steps.model.predictions",
  "image": "$inputs.image",
  "item_classes": ["box"],
  "min_confidence": 0.4,
  "location": "aisle 7, shelf 3",
  "emit": "on_change"
}
```
"""


class InventoryCountManifest(common.VisionEventsManifest):
    model_config = ConfigDict(
        json_schema_extra=common.block_schema_extra(
            "Vision Events Inventory Count", SHORT_DESCRIPTION, LONG_DESCRIPTION, "analytics", priority=2
        )
    )
    type: Literal["vision_events/inventory_count_event@v1"]
    predictions: PredictionsSelector = common.predictions_field("Detections of the items to count.")
    image: ImageSelector = common.image_field(common.FRAME_IMAGE_PURPOSE)
    stream_id: TextInput = common.stream_id_field()
    item_classes: Optional[ClassesInput] = common.classes_field(
        "Item Classes", "Classes that count as items (default: every class).", ["box"], default_all=True
    )
    min_confidence: ConfidenceInput = common.min_confidence_field()
    item_type: TextInput = Field(
        default=None,
        title="Item Type",
        description="eventData.itemType; default: the class when exactly one item class is given.",
        examples=["cardboard box"],
    )
    location: TextInput = Field(
        default=None,
        title="Location",
        description="eventData.location, e.g. a warehouse aisle or shelf.",
        examples=["aisle 7, shelf 3", "$inputs.location"],
        json_schema_extra={"always_visible": True},
    )
    emit: Union[Literal["every_frame", "on_change", "interval"], Selector(kind=[STRING_KIND])] = Field(
        default="on_change",
        title="Emit",
        description="every_frame, on_change (count differs from the last one sent) or interval.",
        examples=["on_change", "interval"],
        json_schema_extra={"always_visible": True},
    )
    interval_seconds: Union[float, Selector(kind=[FLOAT_KIND, INTEGER_KIND])] = Field(
        default=60.0,
        title="Interval (s)",
        description="With emit=interval: seconds between events (frame time).",
        examples=[60],
        json_schema_extra={"relevant_for": {"emit": {"values": ["interval"], "required": True}}},
    )
    external_id: TextInput = common.external_id_field()

    @classmethod
    def describe_outputs(cls) -> List[OutputDefinition]:
        return [
            OutputDefinition(name="event", kind=[vision_event_kind()]),
            OutputDefinition(name="item_count", kind=[INTEGER_KIND]),
        ]


class InventoryCountEventBlockV1(WorkflowBlock):
    """Counts per frame; the last emitted count per stream lives in the process-wide block state (:mod:`..state`)."""

    @classmethod
    def get_manifest(cls) -> Type[WorkflowBlockManifest]:
        return InventoryCountManifest

    def run(
        self,
        predictions: Any,
        image: Any = None,
        stream_id: Optional[str] = None,
        item_classes: Any = None,
        min_confidence: float = 0.0,
        item_type: Optional[str] = None,
        location: Optional[str] = None,
        emit: str = "on_change",
        interval_seconds: float = 60.0,
        external_id: Optional[str] = None,
    ) -> BlockResult:
        if emit not in EMIT_MODES:
            raise ValueError(f"emit must be one of {EMIT_MODES}, got {emit!r}")
        classes = common.as_class_list(item_classes, "item_classes")
        items = common.select(predictions, classes, min_confidence)
        count = len(items)
        frame = common.frame_context(image, stream_id)
        memory_key = common.state_key(BLOCK_TYPE, frame.stream_id, tuple(sorted(classes or ())))
        if not _should_emit(memory_key, emit, count, frame.clock, float(interval_seconds or 0.0)):
            return {"event": None, "item_count": count}
        item_type = common.text(item_type)
        if item_type is None and classes is not None and len(classes) == 1:
            item_type = classes[0]
        location = common.text(location)
        event = common.builder_event(
            "inventory_count",
            {"itemCount": count, "itemType": item_type, "location": location},
            signature=f"{count}|{item_type or ''}|{location or ''}",
            predictions=items.predictions,
            external_id=external_id,
        )
        return {"event": event, "item_count": count}


def _should_emit(memory_key: Any, emit: str, count: int, now: float, interval: float) -> bool:
    """Decide, and remember (count, time) of what is emitted, atomically per stream."""
    memory = throttle.stream_memory(_LAST_EMITTED)
    with memory:
        last = memory.get(memory_key)
        if emit == "every_frame" or last is None:
            emitted = True
        elif emit == "on_change":
            emitted = count != last[0]
        else:
            emitted = not 0 <= now - last[1] < interval
        if emitted:
            throttle.bounded_put(memory, memory_key, (count, now))
        return emitted
