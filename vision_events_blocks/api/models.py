"""Wire models for the Roboflow Vision Events API.

Every model mirrors the public Vision Events API reference (the "spec" whose sections the
``§`` numbers cite): Python attributes are snake_case, the JSON on the wire is camelCase
(``model_dump(by_alias=True)``, or :func:`to_wire`).

This module is the public face; the models live by subject in :mod:`.limits` (the
vocabulary), :mod:`.wire` (bases and shared rules), :mod:`.event_models`,
:mod:`.query_models` and :mod:`.use_case_models`.

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
  requires nothing. Unknown ``eventData`` keys are rejected. Free-text fields are at most
  ``MAX_TEXT_LENGTH`` (1000) characters, like ``externalId``.
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

from .event_models import (  # noqa: F401
    EVENT_DATA_MODELS,
    EVENT_FIELD_COLUMNS,
    NUMERIC_EVENT_FIELD_COLUMNS,
    BatchCreateRequest,
    BatchCreateResponse,
    Classification,
    CreateEventResponse,
    CustomData,
    EventData,
    EventImage,
    InstanceSegmentation,
    InventoryCountData,
    KeypointDetection,
    KeypointPoint,
    ObjectDetection,
    OperatorFeedbackData,
    QualityCheckData,
    SafetyAlertData,
    UploadImageResponse,
    VisionEvent,
    validate_event,
)
from .limits import (  # noqa: F401
    DEFAULT_QUERY_LIMIT,
    EVENT_TYPES,
    MAX_ANNOTATIONS_PER_LIST,
    MAX_BATCH_EVENTS,
    MAX_ID_LENGTH,
    MAX_IMAGES_PER_EVENT,
    MAX_INTEGER,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_QUERY_EVENT_FIELD_FILTERS,
    MAX_QUERY_EVENT_TYPES,
    MAX_QUERY_LIMIT,
    MAX_QUERY_LIST_VALUES,
    MAX_QUERY_METADATA_FILTERS,
    MAX_TEXT_LENGTH,
    MAX_USE_CASE_NAME_LENGTH,
    METADATA_KEY_PATTERN,
    TIMESTAMP_MAX_AGE,
    TIMESTAMP_MAX_FUTURE,
    USE_CASE_STATUSES,
    EventType,
    Feedback,
    MetadataValue,
    QualityResult,
    Severity,
    UseCaseStatus,
)
from .query_models import (  # noqa: F401
    METADATA_OPERATORS,
    ContextFilter,
    CustomMetadataFilter,
    DetectionClassFilter,
    EventFieldFilter,
    EventRecord,
    ImageCountFilter,
    QueryRequest,
    QueryResponse,
    StoredImage,
)
from .use_case_models import (  # noqa: F401
    CreateUseCaseRequest,
    CustomMetadataSchema,
    MetadataFieldSchema,
    SuccessResponse,
    UpdateUseCaseRequest,
    UseCase,
    UseCaseList,
    UseCaseResponse,
)
from .wire import (  # noqa: F401
    ResponseModel,
    WireModel,
    as_utc,
    check_timestamp_window,
    finite,
    is_finite,
    short_repr,
    to_wire,
    validate_custom_metadata,
)

__all__ = [
    "BatchCreateRequest", "BatchCreateResponse", "Classification", "ContextFilter", "CreateEventResponse",
    "CreateUseCaseRequest", "CustomData", "CustomMetadataFilter", "CustomMetadataSchema",
    "DEFAULT_QUERY_LIMIT", "DetectionClassFilter", "EVENT_DATA_MODELS", "EVENT_FIELD_COLUMNS", "EVENT_TYPES",
    "EventData", "EventFieldFilter", "EventImage", "EventRecord", "EventType", "Feedback", "ImageCountFilter",
    "InstanceSegmentation", "InventoryCountData", "KeypointDetection", "KeypointPoint",
    "MAX_ANNOTATIONS_PER_LIST", "MAX_BATCH_EVENTS", "MAX_ID_LENGTH", "MAX_IMAGES_PER_EVENT", "MAX_INTEGER",
    "MAX_METADATA_KEYS", "MAX_METADATA_KEY_LENGTH", "MAX_QUERY_EVENT_FIELD_FILTERS", "MAX_QUERY_EVENT_TYPES",
    "MAX_QUERY_LIMIT", "MAX_QUERY_LIST_VALUES", "MAX_QUERY_METADATA_FILTERS", "MAX_TEXT_LENGTH",
    "MAX_USE_CASE_NAME_LENGTH", "METADATA_KEY_PATTERN", "METADATA_OPERATORS", "MetadataFieldSchema",
    "MetadataValue", "NUMERIC_EVENT_FIELD_COLUMNS", "ObjectDetection", "OperatorFeedbackData",
    "QualityCheckData", "QualityResult", "QueryRequest", "QueryResponse", "ResponseModel", "SafetyAlertData",
    "Severity", "StoredImage", "SuccessResponse", "TIMESTAMP_MAX_AGE", "TIMESTAMP_MAX_FUTURE",
    "USE_CASE_STATUSES", "UpdateUseCaseRequest", "UploadImageResponse", "UseCase", "UseCaseList",
    "UseCaseResponse", "UseCaseStatus", "VisionEvent", "WireModel", "as_utc", "check_timestamp_window",
    "finite", "is_finite", "short_repr", "to_wire", "validate_custom_metadata", "validate_event",
]
