"""Events (spec §5), their data (§7), images and annotations (§8), and the ingestion answers."""
from __future__ import annotations

from datetime import datetime, timezone  # noqa: F401  (the doctest below)
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .limits import (
    MAX_ANNOTATIONS_PER_LIST,
    MAX_BATCH_EVENTS,
    MAX_ID_LENGTH,
    MAX_IMAGES_PER_EVENT,
    MAX_INTEGER,
    MAX_TEXT_LENGTH,
    EventType,
    Feedback,
    MetadataValue,
    QualityResult,
    Severity,
)
from .validation import error_text
from .wire import (
    IdString,
    ResponseModel,
    WireModel,
    as_utc,
    check_timestamp_window,
    finite,
    validate_custom_metadata,
)

__all__ = [
    "EVENT_DATA_MODELS", "EVENT_FIELD_COLUMNS", "NUMERIC_EVENT_FIELD_COLUMNS",
    "BatchCreateRequest", "BatchCreateResponse", "Classification", "CreateEventResponse", "CustomData", "EventData",
    "EventImage", "FramedEvent", "InstanceSegmentation", "InventoryCountData", "KeypointDetection", "KeypointPoint",
    "ObjectDetection", "OperatorFeedbackData", "QualityCheckData", "SafetyAlertData", "UploadImageResponse",
    "VisionEvent", "validate_event",
]

# --------------------------------------------------------------------------------------------
# Annotations and images (spec §8)
# --------------------------------------------------------------------------------------------
class ObjectDetection(WireModel):
    """A bounding box: centre ``x``/``y`` and full ``width``/``height`` in absolute pixels."""

    class_name: str = Field(alias="class", min_length=1, max_length=MAX_TEXT_LENGTH)
    x: float
    y: float
    width: float = Field(ge=0)
    height: float = Field(ge=0)
    confidence: float = Field(ge=0, le=1)

    @field_validator("x", "y", "width", "height", "confidence")
    @classmethod
    def _must_befinite(cls, value: float, info: ValidationInfo) -> float:
        return finite(value, info.field_name or "value")


class Classification(WireModel):
    """An image-level class with its confidence."""

    class_name: str = Field(alias="class", min_length=1, max_length=MAX_TEXT_LENGTH)
    confidence: float = Field(ge=0, le=1)

    @field_validator("confidence")
    @classmethod
    def _must_befinite(cls, value: float) -> float:
        return finite(value, "confidence")


class InstanceSegmentation(ObjectDetection):
    """A box plus its polygon outline (at least 3 vertices, absolute pixels)."""

    points: List[Tuple[float, float]] = Field(min_length=3)

    @field_validator("points")
    @classmethod
    def _pointsfinite(cls, value: List[Tuple[float, float]]) -> List[Tuple[float, float]]:
        for px, py in value:
            finite(px, "points[].x")
            finite(py, "points[].y")
        return value


class KeypointPoint(WireModel):
    """One keypoint of an instance; ``id`` is the keypoint's class index."""

    id: int = Field(ge=0)
    x: float
    y: float

    @field_validator("x", "y")
    @classmethod
    def _must_befinite(cls, value: float, info: ValidationInfo) -> float:
        return finite(value, info.field_name or "value")


class KeypointDetection(ObjectDetection):
    """The instance box plus its keypoints."""

    keypoints: List[KeypointPoint] = Field(default_factory=list)


class EventImage(WireModel):
    """An image attached to an event, by the ``sourceId``s returned from the upload.

    ``sourceId`` is the image shown (the visualisation when there is one); ``inputSourceId``
    is the original frame the annotations refer to.
    """

    source_id: Optional[str] = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    input_source_id: Optional[str] = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    label: Optional[str] = Field(default=None, max_length=MAX_TEXT_LENGTH)
    object_detections: List[ObjectDetection] = Field(default_factory=list, max_length=MAX_ANNOTATIONS_PER_LIST)
    classifications: List[Classification] = Field(default_factory=list, max_length=MAX_ANNOTATIONS_PER_LIST)
    instance_segmentations: List[InstanceSegmentation] = Field(
        default_factory=list, max_length=MAX_ANNOTATIONS_PER_LIST
    )
    keypoints: List[KeypointDetection] = Field(default_factory=list, max_length=MAX_ANNOTATIONS_PER_LIST)

    @model_validator(mode="after")
    def _needs_a_source(self) -> "EventImage":
        if not self.source_id and not self.input_source_id:
            raise ValueError("an image needs sourceId or inputSourceId (from POST /vision-events/upload)")
        return self

    def detection_classes(self) -> List[str]:
        """Every class name on this image, across the four annotation lists."""
        classes: List[str] = []
        for found in (self.object_detections, self.classifications, self.instance_segmentations, self.keypoints):
            classes.extend(a.class_name for a in found)
        return classes



# --------------------------------------------------------------------------------------------
# Event data (spec §7)
# --------------------------------------------------------------------------------------------
TextField = Field(default=None, max_length=MAX_TEXT_LENGTH)


class QualityCheckData(WireModel):
    result: QualityResult
    external_id: Optional[str] = TextField


class InventoryCountData(WireModel):
    item_count: int = Field(ge=0, le=MAX_INTEGER)
    location: Optional[str] = TextField
    item_type: Optional[str] = TextField
    external_id: Optional[str] = TextField


class SafetyAlertData(WireModel):
    alert_type: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    severity: Optional[Severity] = None
    description: Optional[str] = TextField
    external_id: Optional[str] = TextField


class CustomData(WireModel):
    value: Optional[str] = TextField
    external_id: Optional[str] = TextField


class OperatorFeedbackData(WireModel):
    related_event_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    feedback: Feedback


EventData = Union[QualityCheckData, InventoryCountData, SafetyAlertData, CustomData, OperatorFeedbackData]

EVENT_DATA_MODELS: Dict[str, type] = {
    "quality_check": QualityCheckData,
    "inventory_count": InventoryCountData,
    "safety_alert": SafetyAlertData,
    "custom": CustomData,
    "operator_feedback": OperatorFeedbackData,
}

# Query ``eventFieldFilters`` columns -> ``eventData`` keys (spec §10).
EVENT_FIELD_COLUMNS: Dict[str, str] = {
    "result": "result",
    "location": "location",
    "item_count": "itemCount",
    "item_type": "itemType",
    "alert_type": "alertType",
    "severity": "severity",
    "feedback": "feedback",
}
NUMERIC_EVENT_FIELD_COLUMNS = frozenset({"item_count"})



# --------------------------------------------------------------------------------------------
# Events (spec §5)
# --------------------------------------------------------------------------------------------
class VisionEvent(WireModel):
    """One event as sent to ``POST /vision-events`` or inside a batch.

    ``event_data`` accepts a dict or one of the ``*Data`` models and is validated against the
    schema of ``event_type``. The timestamp window is checked at validation time; pass
    ``context={"skip_timestamp_window": True}`` to ``model_validate`` to re-read a stored event.

    >>> VisionEvent(event_id="e1", event_type="quality_check", use_case_id="uc",
    ...             timestamp=datetime.now(timezone.utc), event_data={"result": "pass"}).event_data
    QualityCheckData(result='pass', external_id=None)
    """

    event_id: str = IdString
    event_type: EventType
    use_case_id: str = IdString
    timestamp: datetime
    event_data: EventData = Field(default_factory=CustomData)
    device_id: Optional[str] = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    stream_id: Optional[str] = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    workflow_id: Optional[str] = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    images: List[EventImage] = Field(default_factory=list, max_length=MAX_IMAGES_PER_EVENT)
    display_image_position: Optional[int] = Field(default=None, ge=0)
    custom_metadata: Dict[str, MetadataValue] = Field(default_factory=dict)
    comment: Optional[str] = Field(default=None, max_length=MAX_TEXT_LENGTH)

    @model_validator(mode="before")
    @classmethod
    def _typed_event_data(cls, data: Any) -> Any:
        """Validate ``eventData`` with the model of its ``eventType`` (not a loose union)."""
        if not isinstance(data, dict):
            return data
        event_type = data.get("eventType", data.get("event_type"))
        key = "eventData" if "eventData" in data else "event_data"
        raw = data.get(key)
        model = EVENT_DATA_MODELS.get(event_type) if isinstance(event_type, str) else None
        if model is None:
            return data  # the eventType Literal reports the bad value
        if raw is None:
            raw = {}
        if isinstance(raw, BaseModel) and not isinstance(raw, model):
            raise ValueError(
                f"eventData is a {type(raw).__name__} but eventType is {event_type!r}; "
                f"expected {model.__name__}"
            )
        if isinstance(raw, dict):
            try:
                raw = model.model_validate(raw)
            except ValidationError as exc:
                # Re-raise as one message that names the path inside eventData.
                problems = error_text(exc, limit=None, root="eventData")
                raise ValueError(f"invalid eventData for {event_type!r}: {problems}") from None
        data = dict(data)
        data[key] = raw
        return data

    @field_validator("timestamp")
    @classmethod
    def _timestamp_in_window(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = as_utc(value)
        if not (info.context or {}).get("skip_timestamp_window"):
            check_timestamp_window(value)
        return value

    @field_validator("custom_metadata", mode="before")
    @classmethod
    def _metadata_rules(cls, value: Any) -> Any:
        if value is None:
            return {}
        return validate_custom_metadata(value)

    @model_validator(mode="after")
    def _display_position_in_range(self) -> "VisionEvent":
        if self.display_image_position is not None and self.display_image_position >= max(len(self.images), 1):
            raise ValueError(
                f"displayImagePosition {self.display_image_position} is out of range for "
                f"{len(self.images)} image(s)"
            )
        return self

    def to_wire(self) -> Dict[str, Any]:
        """The JSON body; ``eventData`` is always present (``{}`` at the least)."""
        body = super().to_wire()
        body.setdefault("eventData", {})
        return body


class FramedEvent:
    """A validated event (``template``) stamped with one frame's ``event_id``, ``timestamp`` and
    ``stream_id``: what a camera changes from one frame to the next.

    :meth:`stamp` checks those three exactly as :class:`VisionEvent` would; the rest was
    validated once, in the template. The wire form is built off the frame thread
    (:meth:`to_wire`), so a frame that repeats its event costs no pydantic validation.
    """

    __slots__ = ("template", "event_id", "timestamp", "stream_id")

    def __init__(self, template: VisionEvent, event_id: str, timestamp: datetime, stream_id: Optional[str]) -> None:
        self.template, self.event_id, self.timestamp, self.stream_id = template, event_id, timestamp, stream_id

    @classmethod
    def stamp(cls, template: VisionEvent, event_id: str, timestamp: datetime,
              stream_id: Optional[str]) -> "FramedEvent":
        """Raises ``ValueError`` naming the field (``eventId``, ``timestamp``, ``streamId``)."""
        for field, value in (("eventId", event_id), ("streamId", stream_id)):
            if value is not None and not (isinstance(value, str) and 1 <= len(value) <= MAX_ID_LENGTH):
                raise ValueError(f"{field} must be a string of 1 to {MAX_ID_LENGTH} characters")
        try:
            timestamp = check_timestamp_window(as_utc(timestamp))
        except ValueError as error:
            raise ValueError(f"timestamp: {error}") from None
        return cls(template, event_id, timestamp, stream_id)

    @property
    def use_case_id(self) -> str:
        return self.template.use_case_id

    def to_wire(self) -> Dict[str, Any]:
        """The template's wire form (dumped once per template, not once per frame) with this
        frame's three fields, serialised as the model serialises them. A new top-level dict:
        callers copy what they change below it."""
        body = dict(_template_wire(self.template))
        body["eventId"] = self.event_id
        body["timestamp"] = _DATETIME.dump_python(self.timestamp, mode="json")
        if self.stream_id is None:
            body.pop("streamId", None)
        else:
            body["streamId"] = self.stream_id
        return body


_DATETIME = TypeAdapter(datetime)
_TEMPLATE_WIRE: Dict[int, Tuple[VisionEvent, Dict[str, Any]]] = {}  # id -> (template, its wire form)


def _template_wire(template: VisionEvent) -> Dict[str, Any]:
    """``template.to_wire()``, remembered for the few templates in use (a sink has one)."""
    cached = _TEMPLATE_WIRE.get(id(template))
    if cached is None or cached[0] is not template:
        if len(_TEMPLATE_WIRE) >= 64:
            _TEMPLATE_WIRE.clear()
        cached = _TEMPLATE_WIRE[id(template)] = (template, template.to_wire())
    return cached[1]


class BatchCreateRequest(WireModel):
    """Body of ``POST /vision-events/batch``: 1 to 100 events."""

    events: List[VisionEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)



# --------------------------------------------------------------------------------------------
# Ingestion answers
# --------------------------------------------------------------------------------------------
class UploadImageResponse(ResponseModel):
    success: bool = True
    source_id: str
    url: Optional[str] = None


class CreateEventResponse(ResponseModel):
    event_id: str
    created: bool = True


class BatchCreateResponse(ResponseModel):
    created: int
    event_ids: List[str] = Field(default_factory=list)



def validate_event(data: Any, *, context: Optional[Dict[str, Any]] = None) -> VisionEvent:
    """A :class:`VisionEvent` from a wire dict (camelCase or snake_case keys) or an event: the
    one way every layer reads an event it was given.

    Raises pydantic's ``ValidationError`` (a ``ValueError``) naming the field, or a plain
    ``ValueError`` when ``data`` is not a mapping at all.
    """
    if isinstance(data, VisionEvent):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"an event must be an object, not {type(data).__name__}")
    return VisionEvent.model_validate(dict(data), context=context)
