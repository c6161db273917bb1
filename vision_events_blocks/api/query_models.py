"""``POST /vision-events/query`` (spec §10): the request with its filters, and the answer."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

from pydantic import Field, field_validator, model_validator

from .event_models import EVENT_FIELD_COLUMNS, NUMERIC_EVENT_FIELD_COLUMNS
from .limits import (
    DEFAULT_QUERY_LIMIT,
    MAX_INTEGER,
    MAX_METADATA_KEY_LENGTH,
    MAX_QUERY_EVENT_FIELD_FILTERS,
    MAX_QUERY_EVENT_TYPES,
    MAX_QUERY_LIMIT,
    MAX_QUERY_LIST_VALUES,
    MAX_QUERY_METADATA_FILTERS,
    MAX_TEXT_LENGTH,
    EventType,
)
from .wire import IdString, ResponseModel, WireModel, as_utc, finite, is_finite, short_repr

__all__ = [
    "METADATA_OPERATORS", "ContextFilter", "CustomMetadataFilter", "DetectionClassFilter", "EventFieldFilter",
    "EventRecord", "ImageCountFilter", "QueryRequest", "QueryResponse", "StoredImage",
]


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
                finite(item, f"{what}.value")
        return self


class EventFieldFilter(WireModel):
    """One ``eventFieldFilters`` entry on an ``eventData`` column."""

    column: Literal[tuple(EVENT_FIELD_COLUMNS)]  # type: ignore[valid-type]  # the columns, written once
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
            if numeric and (abs(item) > MAX_INTEGER if isinstance(item, int) else not is_finite(item)):
                raise ValueError(f"{what}: value {short_repr(item)} is out of range (at most {MAX_INTEGER})")
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

