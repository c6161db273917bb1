"""The API's vocabulary: limits (spec §13) and the closed sets of words (event types, statuses,
severities...), each written once; every layer imports them from here (or :mod:`.models`).

>>> EVENT_TYPES
('quality_check', 'inventory_count', 'safety_alert', 'custom', 'operator_feedback')
>>> USE_CASE_STATUSES
('active', 'inactive')
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal, Tuple, Union, get_args

__all__ = [
    "DEFAULT_QUERY_LIMIT", "EVENT_TYPES", "MAX_ANNOTATIONS_PER_LIST", "MAX_BATCH_EVENTS", "MAX_ID_LENGTH",
    "MAX_IMAGES_PER_EVENT", "MAX_INTEGER", "MAX_METADATA_KEYS", "MAX_METADATA_KEY_LENGTH",
    "MAX_QUERY_EVENT_FIELD_FILTERS", "MAX_QUERY_EVENT_TYPES", "MAX_QUERY_LIMIT", "MAX_QUERY_LIST_VALUES",
    "MAX_QUERY_METADATA_FILTERS", "MAX_TEXT_LENGTH", "MAX_USE_CASE_NAME_LENGTH", "METADATA_KEY_PATTERN",
    "TIMESTAMP_MAX_AGE", "TIMESTAMP_MAX_FUTURE", "USE_CASE_STATUSES",
    "EventType", "Feedback", "MetadataValue", "QualityResult", "Severity", "UseCaseStatus",
]

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
