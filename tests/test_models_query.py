"""The query body (spec §10): filters, operators by type, list sizes, the time range."""
from __future__ import annotations

import math

import pytest

from support import rejected
from vision_events_blocks.api.models import (
    EVENT_TYPES,
    CustomMetadataFilter,
    DetectionClassFilter,
    EventFieldFilter,
    ImageCountFilter,
    QueryRequest,
)


# ------------------------------------------------------------------------------------------
# Query (seed 004)
# ------------------------------------------------------------------------------------------
def query(**overrides) -> dict:
    return {"useCaseId": "uc-1", **overrides}


def test_query_needs_a_use_case():
    rejected(QueryRequest, {}, "useCaseId", "required")


def test_query_limit_default_100_max_1000():
    assert QueryRequest.model_validate(query()).limit == 100
    assert "limit" not in QueryRequest.model_validate(query()).to_wire()
    assert QueryRequest.model_validate(query(limit=1000)).to_wire()["limit"] == 1000
    rejected(QueryRequest, query(limit=1001), "limit", "1000")
    rejected(QueryRequest, query(limit=0), "limit")


def test_query_start_after_end_is_rejected_and_naive_times_are_utc():
    rejected(QueryRequest, query(startTime="2026-01-02T00:00:00Z", endTime="2026-01-01T00:00:00Z"), "startTime", "endTime")
    parsed = QueryRequest.model_validate(query(startTime="2026-01-01T00:00:00", endTime="2026-01-01T00:00:00+00:00"))
    assert parsed.start_time == parsed.end_time
    assert parsed.to_wire()["startTime"].endswith("Z")


def test_query_event_types_at_most_20_and_valid():
    QueryRequest.model_validate(query(eventTypes=list(EVENT_TYPES) * 4))
    rejected(QueryRequest, query(eventTypes=list(EVENT_TYPES) * 4 + ["custom"]), "eventTypes", "20")
    rejected(QueryRequest, query(eventTypes=["fire"]), "eventTypes.0")


@pytest.mark.parametrize("field", ["deviceId", "streamId", "workflowId", "externalId"])
def test_context_filters_allow_eq_and_neq_only(field):
    for operator in ("eq", "neq"):
        QueryRequest.model_validate(query(**{field: {"operator": operator, "value": "x"}}))
    for operator in ("gt", "in", "like"):
        rejected(QueryRequest, query(**{field: {"operator": operator, "value": "x"}}), f"{field}.operator")


@pytest.mark.parametrize("operator, value", [("eq", "a"), ("neq", "a"), ("in", ["a", "b"]), ("not_in", ["a"])])
def test_detection_class_operators_allowed(operator, value):
    assert DetectionClassFilter(operator=operator, value=value).value == value


@pytest.mark.parametrize(
    "operator, value, fragment",
    [("gt", "a", "operator"), ("in", "a", "non-empty list"), ("in", [], "non-empty list"),
     ("eq", ["a"], "single value"), ("in", ["c"] * 51, "at most 50"), ("in", ["a", 3], "detectionClass.value")],
)
def test_detection_class_rejections(operator, value, fragment):
    rejected(QueryRequest, query(detectionClass={"operator": operator, "value": value}), "detectionClass", fragment)


def test_detection_class_50_values_is_the_limit():
    DetectionClassFilter(operator="not_in", value=[f"c{i}" for i in range(50)])


@pytest.mark.parametrize("operator", ["eq", "neq", "gt", "gte", "lt", "lte"])
def test_image_count_operators(operator):
    ImageCountFilter(operator=operator, value=2)


def test_image_count_rejections():
    rejected(QueryRequest, query(imageCount={"operator": "in", "value": 1}), "imageCount.operator")
    rejected(QueryRequest, query(imageCount={"operator": "eq", "value": -1}), "imageCount.value")


def test_has_warnings_is_a_boolean():
    assert QueryRequest.model_validate(query(hasWarnings=False)).to_wire()["hasWarnings"] is False
    rejected(QueryRequest, query(hasWarnings="sometimes"), "hasWarnings")


METADATA_CASES = {
    "string": (("eq", "a"), ("neq", "a"), ("in", ["a", "b"]), ("not_in", ["a"])),
    "number": (("eq", 1), ("neq", 1.5), ("gt", 0), ("gte", 0), ("lt", 10), ("lte", 10)),
    "boolean": (("eq", True), ("neq", False)),
}
ALL_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in")


@pytest.mark.parametrize("kind, operator, value", [(k, op, v) for k, cases in METADATA_CASES.items() for op, v in cases])
def test_metadata_filter_allowed_operator_per_type(kind, operator, value):
    CustomMetadataFilter(field="f", operator=operator, value=value, type=kind)


@pytest.mark.parametrize(
    "kind, operator",
    [(k, op) for k, cases in METADATA_CASES.items() for op in ALL_OPERATORS if op not in dict(cases)],
)
def test_metadata_filter_rejected_operator_per_type(kind, operator):
    value = {"string": "a", "number": 1, "boolean": True}[kind]
    value = [value] if operator in ("in", "not_in") else value
    rejected(QueryRequest, query(customMetadataFilters=[{"field": "f", "operator": operator, "value": value, "type": kind}]),
             "customMetadataFilters", f"operator {operator!r} is not allowed for type {kind!r}")


@pytest.mark.parametrize(
    "kind, value",
    [("number", "70"), ("number", True), ("number", math.inf), ("boolean", "true"), ("boolean", 1), ("string", 5)],
)
def test_metadata_filter_value_must_match_its_type(kind, value):
    rejected(QueryRequest, query(customMetadataFilters=[{"field": "f", "operator": "eq", "value": value, "type": kind}]),
             "customMetadataFilters")


def test_metadata_filter_unknown_type_and_limits():
    rejected(QueryRequest, query(customMetadataFilters=[{"field": "f", "operator": "eq", "value": "a", "type": "date"}]),
             "customMetadataFilters.0.type")
    twenty = [{"field": f"f{i}", "operator": "eq", "value": "a", "type": "string"} for i in range(20)]
    QueryRequest.model_validate(query(customMetadataFilters=twenty))
    rejected(QueryRequest, query(customMetadataFilters=twenty + twenty[:1]), "customMetadataFilters", "20")
    rejected(QueryRequest, query(customMetadataFilters=[{"field": "f", "operator": "in", "value": ["a"] * 51, "type": "string"}]),
             "customMetadataFilters", "at most 50")


@pytest.mark.parametrize("column", ["result", "location", "item_type", "alert_type", "severity", "feedback"])
@pytest.mark.parametrize("operator, value", [("eq", "x"), ("neq", "x"), ("in", ["x", "y"]), ("not_in", ["x"])])
def test_event_field_filter_text_columns(column, operator, value):
    EventFieldFilter(column=column, operator=operator, value=value)


@pytest.mark.parametrize("operator", ["gt", "gte", "lt", "lte"])
def test_event_field_filter_ordering_only_on_item_count(operator):
    EventFieldFilter(column="item_count", operator=operator, value=3)
    rejected(QueryRequest, query(eventFieldFilters=[{"column": "result", "operator": operator, "value": "x"}]),
             "eventFieldFilters", "only applies to item_count")


def test_event_field_filter_rejections():
    rejected(QueryRequest, query(eventFieldFilters=[{"column": "colour", "operator": "eq", "value": "x"}]),
             "eventFieldFilters.0.column")
    rejected(QueryRequest, query(eventFieldFilters=[{"column": "item_count", "operator": "eq", "value": "3"}]),
             "eventFieldFilters", "must be a number")
    rejected(QueryRequest, query(eventFieldFilters=[{"column": "result", "operator": "eq", "value": 3}]),
             "eventFieldFilters", "must be a string")
    twenty = [{"column": "result", "operator": "eq", "value": "fail"}] * 20
    QueryRequest.model_validate(query(eventFieldFilters=twenty))
    rejected(QueryRequest, query(eventFieldFilters=twenty * 2), "eventFieldFilters", "20")


def test_query_unknown_filter_is_rejected():
    rejected(QueryRequest, query(deviceID={"operator": "eq", "value": "x"}), "deviceID", "not permitted")


def test_query_seed_example_round_trips():
    seed = {"useCaseId": "a1b3c8e1", "startTime": "2024-01-14T00:00:00Z", "endTime": "2024-01-15T23:59:59Z",
            "eventTypes": ["quality_check", "safety_alert"],
            "customMetadataFilters": [{"field": "temperature", "operator": "gt", "value": 70, "type": "number"}],
            "limit": 50}
    assert QueryRequest.model_validate(seed).to_wire() == seed
