"""The sink's event, built and validated on its frame -- once per distinct input, not per frame.

A camera's workflow sends the same event every frame: the same type, data, metadata and ids;
only the eventId, the capture time and perhaps the stream change. :class:`EventPreparer`
validates the event in full when its inputs change and otherwise stamps the last validated
one with the frame's identity (:class:`~vision_events_blocks.api.models.FramedEvent`), which
checks just those three fields. A bad event is still reported on its own frame either way.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

from pydantic import ValidationError

from ...api.ids import new_event_id
from ...api.models import EVENT_TYPES, FramedEvent, VisionEvent, validate_custom_metadata
from .. import common
from ..kinds import BuiltEvent

SinkEvent = Union[VisionEvent, FramedEvent]


class Prepared(NamedTuple):
    """``event`` to submit (None with a ``problem`` naming the block field), and ``built``."""

    built: Optional[BuiltEvent]
    event: Optional[SinkEvent]
    problem: Optional[str]


class EventPreparer:
    """One per sink instance: remembers the last inputs it validated and their result."""

    def __init__(self) -> None:
        self._inputs: Optional[Tuple[Any, ...]] = None  # a private copy: a caller may mutate theirs
        self._built: Optional[BuiltEvent] = None
        self._template: Optional[VisionEvent] = None

    def prepare(self, event: Optional[BuiltEvent], event_type: Optional[str], event_data: Optional[Dict[str, Any]],
                comment: Optional[str], use_case_id: Any, frame: common.FrameContext, device_id: Optional[str],
                workflow_id: Optional[str], custom_metadata: Optional[Dict[str, Any]]) -> Prepared:
        source = ("built", event.event_type, event.event_data, event.custom_metadata, event.comment) \
            if event is not None else ("direct", event_type, event_data)
        inputs = (*source, comment, use_case_id, device_id, workflow_id, custom_metadata)
        if self._template is not None and _same(inputs, self._inputs):
            built = event if event is not None else self._built
            try:
                return Prepared(built, FramedEvent.stamp(self._template, new_event_id(), frame.timestamp,
                                                         frame.stream_id), None)
            except ValueError as error:
                return Prepared(built, None, f"invalid event: {error}")
        try:
            built = event if event is not None else direct_event(event_type, event_data, comment)
        except (ValueError, TypeError) as error:
            return Prepared(None, None, f"invalid event: {' '.join(str(error).split())}")
        wire, problem = wire_event(built, use_case_id, frame, device_id, workflow_id, custom_metadata, comment)
        if wire is not None:
            self._inputs, self._built, self._template = _private_copy(inputs), built, wire
        return Prepared(built, wire, problem)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down: ``1``, ``1.0`` and ``True`` are ``==``
    but not the same JSON. (Runs on every frame: scalars are compared in the loop, not by a
    call each.)"""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind in _SCALARS:
        return a == b
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return False
        pairs = ((value, b[key]) for key, value in a.items())
    elif isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return False
        pairs = zip(a, b)
    else:
        return a == b
    for x, y in pairs:
        kind = type(x)
        if kind is not type(y) or not (x == y if kind in _SCALARS else _same(x, y)):
            return False
    return True


def _private_copy(inputs: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """Dicts copied (deeply where they nest), so a later in-place change is seen as a change."""
    return tuple(copy.deepcopy(value) if isinstance(value, (dict, list)) else value for value in inputs)


def direct_event(event_type: Optional[str], event_data: Optional[Dict[str, Any]], comment: Optional[str]) -> BuiltEvent:
    """A :class:`BuiltEvent` from ``event_type`` + ``event_data`` (no builder block)."""
    if not event_type:
        raise ValueError("connect `event` from a builder block, or set `event_type` (one of "
                         f"{', '.join(EVENT_TYPES)}) and `event_data`")
    if event_data is not None and not isinstance(event_data, dict):
        raise ValueError(f"event_data must be an object, got {type(event_data).__name__}")
    return BuiltEvent(event_type=str(event_type), event_data=dict(event_data or {}), comment=common.text(comment))


def wire_event(
    built: BuiltEvent, use_case_id: Any, frame: common.FrameContext,
    device_id: Optional[str], workflow_id: Optional[str], custom_metadata: Optional[Dict[str, Any]],
    comment: Optional[str],
) -> Tuple[Optional[VisionEvent], Optional[str]]:
    """(event, problem): the validated event with its identity fixed now, or a message naming
    the block field. The sender takes the model as it is, so the event is validated once."""
    if custom_metadata and not isinstance(custom_metadata, dict):  # a workflow input can hand over any JSON
        return None, f"invalid custom_metadata: must be an object of flat values, got {type(custom_metadata).__name__}"
    metadata = {**built.custom_metadata, **(custom_metadata or {})}
    try:
        validate_custom_metadata(metadata, "custom_metadata")
    except ValueError as error:
        return None, f"invalid custom_metadata: {error}"
    body = {
        "eventId": new_event_id(),
        "eventType": built.event_type,
        "useCaseId": common.text(use_case_id),
        "timestamp": frame.timestamp,
        "eventData": built.event_data,
        "deviceId": common.text(device_id),
        "streamId": frame.stream_id,
        "workflowId": common.text(workflow_id),
        "customMetadata": metadata,
        "comment": built.comment or common.text(comment),
    }
    try:
        event = VisionEvent.model_validate({key: value for key, value in body.items() if value is not None})
    except ValidationError as error:
        return None, "invalid event: " + "; ".join(
            f"{_field_name(err['loc'])}: {err['msg']}" for err in error.errors()
        )
    return event, None


_FIELD_NAMES = {"useCaseId": "use_case_id", "deviceId": "device_id", "streamId": "stream_id",
                "workflowId": "workflow_id", "eventData": "event_data", "customMetadata": "custom_metadata"}


def _field_name(loc: Tuple[Any, ...]) -> str:
    """The block field a pydantic error location refers to."""
    if not loc:
        return "event"
    head = _FIELD_NAMES.get(str(loc[0]), str(loc[0]))
    return ".".join([head, *(str(part) for part in loc[1:])])
