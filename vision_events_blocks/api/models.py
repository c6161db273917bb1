"""Wire models for the Roboflow Vision Events API.

Every model mirrors ``shared/spec/vision-events-api.md``: Python attributes are snake_case,
the JSON on the wire is camelCase (``model_dump(by_alias=True)``, or :func:`to_wire`).

Two families:

* **Request models** (events, images, annotations, query filters, use-case bodies) validate
  the spec's limits and forbid unknown keys, so that a typo fails here with a message naming
  the field instead of being silently ignored by the server.
* **Response models** are lenient (unknown keys are kept), so that a newer server never
  breaks an older client.

Choices made where the spec says UNCONFIRMED (safest for the user, enforced identically by
the local server so that client bugs surface in tests):

* ``eventId``, ``streamId``, ``workflowId`` are 1-256 characters, like ``useCaseId``.
* ``eventData`` is always sent (``{}`` at the least). Required keys: ``result`` for
  ``quality_check``, ``itemCount`` for ``inventory_count``, ``alertType`` for
  ``safety_alert``, ``relatedEventId`` and ``feedback`` for ``operator_feedback``; ``custom``
  requires nothing. Unknown ``eventData`` keys are rejected. Free-text fields are <= 1000
  characters, like ``externalId``.
* ``customMetadata`` values may not be ``null``, nested objects or arrays; numbers must be
  finite.
* Each annotation list holds at most 1000 items (the ingestion consumer's cap).
* An image names ``sourceId``, ``inputSourceId`` or both. At most 20 images per event.
* ``comment`` is <= 1000 characters.
* A naive ``timestamp`` is taken as UTC.
* In queries, ``gt``/``gte``/``lt``/``lte`` on event fields apply only to ``item_count``,
  ``in``/``not_in`` take a list of at most 50 values everywhere, and the other operators
  take a single value.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Literal, Optional, Tuple, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

# --------------------------------------------------------------------------------------------
# Limits (spec §13)
# --------------------------------------------------------------------------------------------
MAX_BATCH_EVENTS = 100
MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 1000
MAX_METADATA_KEYS = 100
MAX_METADATA_KEY_LENGTH = 100
METADATA_KEY_PATTERN = re.compile(r"^[a-zA-Z0-9_ -]+\Z")  # \Z: "$" would let a trailing newline through
MAX_ANNOTATIONS_PER_LIST = 1000
MAX_IMAGES_PER_EVENT = 20
MAX_QUERY_EVENT_TYPES = 20
MAX_QUERY_METADATA_FILTERS = 20
MAX_QUERY_EVENT_FIELD_FILTERS = 20
MAX_QUERY_LIST_VALUES = 50
DEFAULT_QUERY_LIMIT = 100
MAX_QUERY_LIMIT = 1000
MAX_USE_CASE_NAME_LENGTH = 256
MAX_INTEGER = 2**63 - 1  # counts are 64-bit integers on the wire and in storage
TIMESTAMP_MAX_AGE = timedelta(days=365)
TIMESTAMP_MAX_FUTURE = timedelta(days=1)

EventType = Literal["quality_check", "inventory_count", "safety_alert", "custom", "operator_feedback"]
EVENT_TYPES: Tuple[str, ...] = get_args(EventType)
Severity = Literal["low", "medium", "high"]
QualityResult = Literal["pass", "fail"]
Feedback = Literal["correct", "incorrect", "inconclusive"]
UseCaseStatus = Literal["active", "inactive"]
USE_CASE_STATUSES: Tuple[str, ...] = get_args(UseCaseStatus)
MetadataValue = Union[bool, int, float, str]

IdString = Field(min_length=1, max_length=MAX_ID_LENGTH)


class WireModel(BaseModel):
    """Base of every request model: camelCase on the wire, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=False,
    )

    def to_wire(self) -> Dict[str, Any]:
        """The JSON-ready camelCase dict, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ResponseModel(BaseModel):
    """Base of every response model: camelCase, unknown keys kept for forward compatibility."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


def to_wire(model: BaseModel) -> Dict[str, Any]:
    """Serialize any model to its camelCase JSON dict, leaving out ``None`` fields."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


# --------------------------------------------------------------------------------------------
# Shared validators
# --------------------------------------------------------------------------------------------
def _finite(value: float, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a boolean")
    if not _is_finite(value):
        raise ValueError(f"{what} must be a finite number, got {_short(value)}")
    return value


def _is_finite(value: float) -> bool:
    """A float that is not NaN or infinite; an int that a float can hold (not ``10**400``)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _short(value: Any) -> str:
    """``repr`` cut to 40 characters: a number may have thousands of digits."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def validate_custom_metadata(metadata: Any, field_name: str = "customMetadata") -> Dict[str, MetadataValue]:
    """Check a flat metadata map against spec §9 and return it unchanged.

    >>> validate_custom_metadata({"line": "A1", "temperature": 72.5})
    {'line': 'A1', 'temperature': 72.5}

    Raises ``ValueError`` naming the offending key.
    """
    if not isinstance(metadata, dict):
        raise ValueError(f"{field_name} must be an object of key -> string/number/boolean")
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"{field_name} has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are allowed")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"{field_name} keys must be non-empty strings, got {key!r}")
        if len(key) > MAX_METADATA_KEY_LENGTH:
            raise ValueError(
                f"{field_name} key {key[:40]!r}... is {len(key)} characters; at most {MAX_METADATA_KEY_LENGTH}"
            )
        if not METADATA_KEY_PATTERN.match(key):
            raise ValueError(
                f"{field_name} key {key!r} may only contain letters, digits, '_', '-' and spaces"
            )
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            if not _is_finite(value):
                raise ValueError(f"{field_name}.{key} must be a finite number, got {_short(value)}")
            continue
        if isinstance(value, str):
            if len(value) > MAX_TEXT_LENGTH:
                raise ValueError(
                    f"{field_name}.{key} is {len(value)} characters; at most {MAX_TEXT_LENGTH} are allowed"
                )
            continue
        kind = "null" if value is None else type(value).__name__
        raise ValueError(f"{field_name}.{key} must be a string, number or boolean, not {kind}")
    return metadata


def check_timestamp_window(timestamp: datetime, now: Optional[datetime] = None) -> datetime:
    """Reject timestamps outside [now - 1 year, now + 1 day] (spec §5.1)."""
    now = now or datetime.now(timezone.utc)
    if timestamp < now - TIMESTAMP_MAX_AGE:
        raise ValueError(f"timestamp {timestamp.isoformat()} is more than one year in the past")
    if timestamp > now + TIMESTAMP_MAX_FUTURE:
        raise ValueError(f"timestamp {timestamp.isoformat()} is more than one day in the future")
    return timestamp


def as_utc(value: datetime) -> datetime:
    """Attach UTC to a naive datetime; convert an aware one to UTC.

    Raises ``ValueError`` (not ``OverflowError``) when the conversion leaves the datetime
    range (e.g. ``0001-01-01T00:00:00+05:00``), so pydantic reports it against the field.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range once converted to UTC") from None


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
    def _must_be_finite(cls, value: float, info: ValidationInfo) -> float:
        return _finite(value, info.field_name or "value")


class Classification(WireModel):
    """An image-level class with its confidence."""

    class_name: str = Field(alias="class", min_length=1, max_length=MAX_TEXT_LENGTH)
    confidence: float = Field(ge=0, le=1)

    @field_validator("confidence")
    @classmethod
    def _must_be_finite(cls, value: float) -> float:
        return _finite(value, "confidence")


class InstanceSegmentation(ObjectDetection):
    """A box plus its polygon outline (at least 3 vertices, absolute pixels)."""

    points: List[Tuple[float, float]] = Field(min_length=3)

    @field_validator("points")
    @classmethod
    def _points_finite(cls, value: List[Tuple[float, float]]) -> List[Tuple[float, float]]:
        for px, py in value:
            _finite(px, "points[].x")
            _finite(py, "points[].y")
        return value


class KeypointPoint(WireModel):
    """One keypoint of an instance; ``id`` is the keypoint's class index."""

    id: int = Field(ge=0)
    x: float
    y: float

    @field_validator("x", "y")
    @classmethod
    def _must_be_finite(cls, value: float, info: ValidationInfo) -> float:
        return _finite(value, info.field_name or "value")


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
        for annotations in (self.object_detections, self.classifications, self.instance_segmentations, self.keypoints):
            classes.extend(a.class_name for a in annotations)
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
                problems = "; ".join(
                    f"eventData.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
                )
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


class BatchCreateRequest(WireModel):
    """Body of ``POST /vision-events/batch``: 1 to 100 events."""

    events: List[VisionEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


# --------------------------------------------------------------------------------------------
# Query (seed 004, spec §10)
# --------------------------------------------------------------------------------------------
EqualityOperator = Literal["eq", "neq"]
ListOperator = Literal["eq", "neq", "in", "not_in"]
NumberOperator = Literal["eq", "neq", "gt", "gte", "lt", "lte"]
AnyOperator = Literal["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in"]
MetadataType = Literal["string", "number", "boolean"]

METADATA_OPERATORS: Dict[str, Tuple[str, ...]] = {
    "string": ("eq", "neq", "in", "not_in"),
    "number": ("eq", "neq", "gt", "gte", "lt", "lte"),
    "boolean": ("eq", "neq"),
}


def _check_list_value(operator: str, value: Any, what: str, item_types: Tuple[type, ...]) -> Any:
    """``in``/``not_in`` take a list of 1..50 values; other operators a single value."""
    if operator in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"{what}: operator {operator!r} needs a non-empty list of values")
        if len(value) > MAX_QUERY_LIST_VALUES:
            raise ValueError(f"{what}: at most {MAX_QUERY_LIST_VALUES} values for {operator!r}, got {len(value)}")
        for item in value:
            if isinstance(item, bool) and bool not in item_types or not isinstance(item, item_types):
                raise ValueError(f"{what}: list value {item!r} has the wrong type")
    elif isinstance(value, list):
        raise ValueError(f"{what}: operator {operator!r} takes a single value, not a list")
    return value


class ContextFilter(WireModel):
    """``deviceId`` / ``streamId`` / ``workflowId`` / ``externalId``: eq or neq a string."""

    operator: EqualityOperator
    value: str = Field(max_length=MAX_TEXT_LENGTH)


class DetectionClassFilter(WireModel):
    """Events with (eq/in) or without (neq/not_in) an annotation of these classes."""

    operator: ListOperator
    value: Union[str, List[str]]

    @model_validator(mode="after")
    def _value_shape(self) -> "DetectionClassFilter":
        _check_list_value(self.operator, self.value, "detectionClass", (str,))
        return self


class ImageCountFilter(WireModel):
    operator: NumberOperator
    value: int = Field(ge=0, le=MAX_INTEGER)


class CustomMetadataFilter(WireModel):
    """One ``customMetadataFilters`` entry; the operator must suit ``type``."""

    field: str = Field(min_length=1, max_length=MAX_METADATA_KEY_LENGTH)
    operator: AnyOperator
    value: Union[bool, int, float, str, List[Union[bool, int, float, str]]]
    type: MetadataType

    @model_validator(mode="after")
    def _operator_fits_type(self) -> "CustomMetadataFilter":
        allowed = METADATA_OPERATORS[self.type]
        what = f"customMetadataFilters[{self.field!r}]"
        if self.operator not in allowed:
            raise ValueError(f"{what}: operator {self.operator!r} is not allowed for type {self.type!r}; use one of {allowed}")
        expected: Tuple[type, ...] = {"string": (str,), "number": (int, float), "boolean": (bool,)}[self.type]
        _check_list_value(self.operator, self.value, what, expected)
        values = self.value if isinstance(self.value, list) else [self.value]
        for item in values:
            wrong = (
                (self.type == "number" and (isinstance(item, bool) or not isinstance(item, (int, float))))
                or (self.type == "boolean" and not isinstance(item, bool))
                or (self.type == "string" and not isinstance(item, str))
            )
            if wrong:
                raise ValueError(f"{what}: value {item!r} is not a {self.type}")
            if self.type == "number":
                _finite(item, f"{what}.value")
        return self


class EventFieldFilter(WireModel):
    """One ``eventFieldFilters`` entry on an ``eventData`` column."""

    column: Literal["result", "location", "item_count", "item_type", "alert_type", "severity", "feedback"]
    operator: AnyOperator
    value: Union[int, float, str, List[Union[int, float, str]]]

    @model_validator(mode="after")
    def _operator_fits_column(self) -> "EventFieldFilter":
        what = f"eventFieldFilters[{self.column!r}]"
        numeric = self.column in NUMERIC_EVENT_FIELD_COLUMNS
        if self.operator in ("gt", "gte", "lt", "lte") and not numeric:
            raise ValueError(f"{what}: operator {self.operator!r} only applies to item_count")
        expected: Tuple[type, ...] = (int, float) if numeric else (str,)
        _check_list_value(self.operator, self.value, what, expected)
        values = self.value if isinstance(self.value, list) else [self.value]
        for item in values:
            if isinstance(item, bool) or not isinstance(item, expected):
                raise ValueError(f"{what}: value {item!r} must be a {'number' if numeric else 'string'}")
            if numeric and (abs(item) > MAX_INTEGER if isinstance(item, int) else not _is_finite(item)):
                raise ValueError(f"{what}: value {_short(item)} is out of range (at most {MAX_INTEGER})")
        return self


class QueryRequest(WireModel):
    """Body of ``POST /vision-events/query``. All filters combine with AND.

    >>> QueryRequest(use_case_id="uc", event_types=["safety_alert"], limit=50).to_wire()
    {'useCaseId': 'uc', 'eventTypes': ['safety_alert'], 'limit': 50}
    """

    use_case_id: str = IdString
    start_time: Optional[datetime] = None
    end_time: Optional[datetime] = None
    event_types: Optional[List[EventType]] = Field(default=None, max_length=MAX_QUERY_EVENT_TYPES)
    device_id: Optional[ContextFilter] = None
    stream_id: Optional[ContextFilter] = None
    workflow_id: Optional[ContextFilter] = None
    external_id: Optional[ContextFilter] = None
    detection_class: Optional[DetectionClassFilter] = None
    image_count: Optional[ImageCountFilter] = None
    has_warnings: Optional[bool] = None
    custom_metadata_filters: Optional[List[CustomMetadataFilter]] = Field(
        default=None, max_length=MAX_QUERY_METADATA_FILTERS
    )
    event_field_filters: Optional[List[EventFieldFilter]] = Field(
        default=None, max_length=MAX_QUERY_EVENT_FIELD_FILTERS
    )
    cursor: Optional[str] = Field(default=None, min_length=1, max_length=4096)
    limit: int = Field(default=DEFAULT_QUERY_LIMIT, ge=1, le=MAX_QUERY_LIMIT)

    @field_validator("start_time", "end_time")
    @classmethod
    def _utc(cls, value: Optional[datetime]) -> Optional[datetime]:
        return as_utc(value) if value is not None else None

    @model_validator(mode="after")
    def _range_order(self) -> "QueryRequest":
        if self.start_time and self.end_time and self.start_time > self.end_time:
            raise ValueError("startTime must not be after endTime")
        return self

    def to_wire(self) -> Dict[str, Any]:
        """``limit`` is sent only when it differs from the server default."""
        body = super().to_wire()
        if self.limit == DEFAULT_QUERY_LIMIT and "limit" not in self.model_fields_set:
            body.pop("limit", None)
        return body


# --------------------------------------------------------------------------------------------
# Use cases (spec §11)
# --------------------------------------------------------------------------------------------
def _use_case_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("name must not be empty")
    if len(value) > MAX_USE_CASE_NAME_LENGTH:
        raise ValueError(f"name is {len(value)} characters; at most {MAX_USE_CASE_NAME_LENGTH}")
    return value


class CreateUseCaseRequest(WireModel):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _use_case_name(value)


class UpdateUseCaseRequest(WireModel):
    """At least one of ``name`` and ``status``."""

    name: Optional[str] = None
    status: Optional[UseCaseStatus] = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: Optional[str]) -> Optional[str]:
        return _use_case_name(value) if value is not None else None

    @model_validator(mode="after")
    def _something_to_change(self) -> "UpdateUseCaseRequest":
        if self.name is None and self.status is None:
            raise ValueError("update needs at least one of name and status")
        return self


# --------------------------------------------------------------------------------------------
# Responses
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


class StoredImage(ResponseModel):
    """An image as returned by a query: the sent fields plus ``url``/``inputUrl``."""

    source_id: Optional[str] = None
    input_source_id: Optional[str] = None
    label: Optional[str] = None
    url: Optional[str] = None
    input_url: Optional[str] = None
    object_detections: List[Dict[str, Any]] = Field(default_factory=list)
    classifications: List[Dict[str, Any]] = Field(default_factory=list)
    instance_segmentations: List[Dict[str, Any]] = Field(default_factory=list)
    keypoints: List[Dict[str, Any]] = Field(default_factory=list)


class EventRecord(ResponseModel):
    """An event as returned by a query (same shape as sent, plus image ``url``s)."""

    event_id: str
    event_type: str
    timestamp: datetime
    use_case_id: Optional[str] = None
    event_data: Dict[str, Any] = Field(default_factory=dict)
    device_id: Optional[str] = None
    stream_id: Optional[str] = None
    workflow_id: Optional[str] = None
    images: List[StoredImage] = Field(default_factory=list)
    display_image_position: Optional[int] = None
    custom_metadata: Dict[str, Any] = Field(default_factory=dict)
    comment: Optional[str] = None


class QueryResponse(ResponseModel):
    events: List[EventRecord] = Field(default_factory=list)
    has_more: bool = False
    next_cursor: Optional[str] = None
    lookback_days: Optional[int] = None


class UseCase(ResponseModel):
    id: str
    name: str
    status: Optional[str] = None
    workspace_id: Optional[str] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    event_count: Optional[int] = None


class UseCaseList(ResponseModel):
    use_cases: List[UseCase] = Field(default_factory=list)
    lookback_days: Optional[int] = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_solutions_key(cls, data: Any) -> Any:
        """Older servers answer ``{"solutions": [...]}``."""
        if isinstance(data, dict) and "useCases" not in data and "solutions" in data:
            data = dict(data)
            data["useCases"] = data.pop("solutions")
        return data


class UseCaseResponse(ResponseModel):
    id: str
    name: Optional[str] = None
    status: Optional[str] = None


class SuccessResponse(ResponseModel):
    success: bool = True


class MetadataFieldSchema(ResponseModel):
    types: List[str] = Field(default_factory=list)


class CustomMetadataSchema(ResponseModel):
    fields: Dict[str, MetadataFieldSchema] = Field(default_factory=dict)
    use_case_id: Optional[str] = None


class ErrorBody(ResponseModel):
    """Every documented error body: ``{"error": "..."}``."""

    error: str
