"""``vision_events/sink@v1``: hand an event to the process's sender and report at once."""
from __future__ import annotations

import functools
import hashlib
import json
import logging
from typing import Any, Callable, Dict, List, Literal, NamedTuple, Optional, Type, Union

from pydantic import ConfigDict, Field

from inference.core.workflows.execution_engine.entities.base import OutputDefinition
from inference.core.workflows.execution_engine.entities.types import (
    BOOLEAN_KIND,
    DICTIONARY_KIND,
    FLOAT_KIND,
    INTEGER_KIND,
    ROBOFLOW_SOLUTION_KIND,
    STRING_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import BlockResult, WorkflowBlock, WorkflowBlockManifest

from ...delivery import ImageAttachment, get_sender
from .. import common, throttle
from ..common import ImageSelector, PredictionsSelector, TextInput
from ..kinds import BuiltEvent, vision_event_kind
from .description import LONG_DESCRIPTION, SHORT_DESCRIPTION
from .events import EventPreparer, SinkEvent

BLOCK_TYPE = "vision_events/sink@v1"
logger = logging.getLogger("vision_events_blocks.blocks")
_COOLDOWN_NAMESPACE = "vision_events.blocks.sink_cooldown"

EventTypeLiteral = Literal["quality_check", "inventory_count", "safety_alert", "custom", "operator_feedback"]
EventTypeInput = Optional[Union[EventTypeLiteral, Selector(kind=[STRING_KIND])]]
DestinationLiteral = Literal["cloud", "event_store", "bundle"]


class SinkManifest(common.VisionEventsManifest):
    model_config = ConfigDict(
        json_schema_extra=common.block_schema_extra(
            "Vision Events Sink", SHORT_DESCRIPTION, LONG_DESCRIPTION, "sink", priority=1
        )
    )
    type: Literal["vision_events/sink@v1"]
    use_case_id: Union[str, Selector(kind=[STRING_KIND, ROBOFLOW_SOLUTION_KIND])] = Field(
        title="Use Case",
        description="The Vision Events use case id the event belongs to.",
        examples=["assembly-line-qa", "$inputs.use_case_id"],
        json_schema_extra={"always_visible": True},
    )
    event: Optional[Selector(kind=[vision_event_kind()])] = Field(
        default=None,
        title="Event",
        description="An event from a Vision Events builder block (quality check, safety alert, inventory count).",
        examples=["$steps.qc.event"],
        json_schema_extra={"always_visible": True},
    )
    event_type: EventTypeInput = Field(
        default=None,
        title="Event Type",
        description="Without `event`: the type of event to send.",
        examples=["custom", "operator_feedback"],
    )
    event_data: Union[Selector(kind=[DICTIONARY_KIND]), Dict[str, Union[str, int, float, bool, Selector()]]] = Field(
        default_factory=dict,
        title="Event Data",
        description="Without `event`: eventData for the type, e.g. {\"value\": \"door opened\"} or "
        "{\"relatedEventId\": \"...\", \"feedback\": \"incorrect\"}.",
        examples=[{"value": "door opened"}, {"relatedEventId": "$inputs.event_id", "feedback": "correct"}],
    )
    comment: TextInput = Field(
        default=None,
        title="Comment",
        description="Free-text note on the event (e.g. the operator's remark on feedback).",
        examples=["part was mis-positioned"],
    )
    image: ImageSelector = Field(
        default=None,
        title="Input Image",
        description="The frame; uploaded once and the annotations are drawn against it.",
        examples=["$inputs.image"],
        json_schema_extra={"always_visible": True},
    )
    output_image: ImageSelector = Field(
        default=None,
        title="Output Image",
        description="A visualisation shown first in the dashboard.",
        examples=["$steps.bounding_box_visualization.image"],
    )
    predictions: Optional[PredictionsSelector] = Field(
        default=None,
        title="Predictions",
        description="Annotations for the image when the event does not carry its own.",
        examples=["$steps.model.predictions"],
    )
    image_label: TextInput = Field(
        default=None,
        title="Image Label",
        description="Label of the attached image (default: none).",
        examples=["line-3 camera"],
    )
    device_id: TextInput = Field(
        default=None, title="Device ID", description="Which device sent the event.", examples=["edge-box-7"]
    )
    stream_id: TextInput = Field(
        default=None,
        title="Stream ID",
        description="Which stream/camera; default: the frame's video identifier.",
        examples=["rtsp-cam-3", "$inputs.stream"],
    )
    workflow_id: TextInput = Field(
        default=None, title="Workflow ID", description="Which workflow produced the event.", examples=["ppe-monitor"]
    )
    custom_metadata: Dict[str, Union[str, int, float, bool, Selector()]] = Field(
        default_factory=dict,
        title="Custom Metadata",
        description="Flat metadata: keys [a-zA-Z0-9_ -] (at most 100 characters), string (<= 1000 characters), "
        "number or boolean values.",
        examples=[{"line": "3", "shift": "$inputs.shift"}],
        json_schema_extra={"additional_section": True},
    )
    fire_and_forget: Union[bool, Selector(kind=[BOOLEAN_KIND])] = Field(
        default=True,
        title="Fire and Forget",
        description="True: enqueue and return at once. False: wait for the server's answer (bounded by "
        "wait_timeout_seconds); this adds the sender's batching delay and a round trip to every frame that "
        "sends, so keep it for low-rate events such as operator feedback.",
        examples=[True, "$inputs.fire_and_forget"],
    )
    wait_timeout_seconds: Union[float, Selector(kind=[FLOAT_KIND, INTEGER_KIND])] = Field(
        default=10.0,
        title="Wait Timeout (s)",
        description="With fire_and_forget false: the longest the step waits for the answer.",
        examples=[10],
        json_schema_extra={"relevant_for": {"fire_and_forget": {"values": [False], "required": True}}},
    )
    cooldown_seconds: Union[float, Selector(kind=[FLOAT_KIND, INTEGER_KIND])] = Field(
        default=1.0,
        title="Cooldown (s)",
        description="A repeat of the same event (same stream, type and signature) is throttled for this long; "
        "0 disables.",
        examples=[1, 0],
        json_schema_extra={"always_visible": True},
    )
    disable_sink: Union[bool, Selector(kind=[BOOLEAN_KIND])] = Field(
        default=False,
        title="Disable Sink",
        description="If true nothing is sent.",
        examples=[False, "$inputs.disable_vision_events"],
    )
    destination: Union[DestinationLiteral, Selector(kind=[STRING_KIND])] = Field(
        default="cloud",
        title="Destination",
        description="Where events go: 'cloud' (the Vision Events API), 'event_store' (an edge Event Store, "
        "POST /v2/events with images inline; key from EVENT_INGESTION_API_KEY) or 'bundle' (one "
        "bundle-format-v1 file per event in a folder, for air-gapped sites).",
        examples=["cloud", "event_store", "bundle", "$inputs.destination"],
        json_schema_extra={"always_visible": True},
    )
    api_url: TextInput = Field(
        default=None,
        title="API URL",
        description="Vision Events API base URL; default VISION_EVENTS_API_URL, else API_BASE_URL, else Roboflow.",
        examples=["https://api.roboflow.com", "http://127.0.0.1:8787"],
        json_schema_extra={"relevant_for": {"destination": {"values": ["cloud"], "required": False}}},
    )
    event_store_url: TextInput = Field(
        default=None,
        title="Event Store URL",
        description="Base URL of the edge Event Store (events go to <url>/v2/events); default "
        "VISION_EVENTS_EVENT_STORE_URL, else http://localhost:8001.",
        examples=["http://localhost:8001", "$inputs.event_store_url"],
        json_schema_extra={"relevant_for": {"destination": {"values": ["event_store"], "required": False}}},
    )
    bundle_dir: TextInput = Field(
        default=None,
        title="Bundle Directory",
        description="Folder for the bundle files (created if missing; inside WORKFLOW_BLOCKS_WRITE_DIRECTORY "
        "when that is set); default VISION_EVENTS_BUNDLE_DIR.",
        examples=["/data/vision-event-bundles", "$inputs.bundle_dir"],
        json_schema_extra={"relevant_for": {"destination": {"values": ["bundle"], "required": True}}},
    )
    outbox_dir: TextInput = Field(
        default=None,
        title="Durable Outbox",
        description="Where undelivered events wait on disk (durable by default): a directory, 'auto' "
        "(VISION_EVENTS_OUTBOX_DIR, else inference's model cache directory), or 'off' for memory only.",
        examples=["auto", "/var/lib/vision-events/outbox", "off"],
    )

    @classmethod
    def describe_outputs(cls) -> List[OutputDefinition]:
        return [
            OutputDefinition(name="error_status", kind=[BOOLEAN_KIND]),
            OutputDefinition(name="throttling_status", kind=[BOOLEAN_KIND]),
            OutputDefinition(name="message", kind=[STRING_KIND]),
            OutputDefinition(name="event_id", kind=[STRING_KIND]),
        ]


def _reported_not_raised(run: Callable[..., BlockResult]) -> Callable[..., BlockResult]:
    """A sink must never stop the pipeline: an unexpected error becomes ``error_status``,
    is counted (``error:internal``) and logged with its traceback."""

    @functools.wraps(run)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> BlockResult:
        try:
            return run(self, *args, **kwargs)
        except Exception as error:
            logger.exception("vision-events sink failed unexpectedly")
            return _error("internal", f"not sent: unexpected {type(error).__name__}: {_one_line(error)}")

    return guarded


class VisionEventsSinkBlockV1(WorkflowBlock):
    """Decide, build the wire event, submit; report what happened. Never raises on bad data."""

    def __init__(self, api_key: Optional[str], disable_sinks: bool = False) -> None:
        self._api_key = api_key
        # the cooldown's "same destination" includes the key (two workspaces never throttle
        # each other); a fingerprint, so no key sits in the process-wide state
        self._key_id = hashlib.sha256(api_key.encode()).hexdigest()[:10] if isinstance(api_key, str) else ""
        self._disable_sinks = bool(disable_sinks)
        self._senders: Dict[_Where, Any] = {}
        self._wheres: Dict[tuple, _Where] = {}  # the destination fields as given -> as read
        self._events = EventPreparer()  # the last event validated in full, stamped anew per frame

    @classmethod
    def get_init_parameters(cls) -> List[str]:
        return ["api_key", "disable_sinks"]

    @classmethod
    def get_manifest(cls) -> Type[WorkflowBlockManifest]:
        return SinkManifest

    @_reported_not_raised
    def run(
        self,
        use_case_id: str,
        event: Optional[BuiltEvent] = None,
        event_type: Optional[str] = None,
        event_data: Optional[Dict[str, Any]] = None,
        comment: Optional[str] = None,
        image: Any = None,
        output_image: Any = None,
        predictions: Any = None,
        image_label: Optional[str] = None,
        device_id: Optional[str] = None,
        stream_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        custom_metadata: Optional[Dict[str, Any]] = None,
        fire_and_forget: bool = True,
        wait_timeout_seconds: float = 10.0,
        cooldown_seconds: float = 1.0,
        disable_sink: bool = False,
        api_url: Optional[str] = None,
        outbox_dir: Optional[str] = None,
        destination: str = "cloud",
        event_store_url: Optional[str] = None,
        bundle_dir: Optional[str] = None,
    ) -> BlockResult:
        if self._disable_sinks or disable_sink:
            throttle.count("disabled")
            by = "workflow execution policy" if self._disable_sinks else "parameter `disable_sink`"
            return _result(message=f"Sink was disabled by {by}")
        frame = common.frame_context(image, stream_id)
        built, wire_event, problem = self._events.prepare(event, event_type, event_data, comment, use_case_id, frame,
                                                          device_id, workflow_id, custom_metadata)
        if problem:
            return _error("invalid_event", problem)
        where = self._where(destination, api_url, event_store_url, bundle_dir, outbox_dir)
        seconds = max(float(cooldown_seconds or 0.0), 0.0)
        cooldown = key = None
        if seconds > 0:  # no cooldown: no key to build, no shared state to touch
            signature = built.signature or _signature(built, comment)
            key = (where.place, self._key_id, str(use_case_id), frame.stream_id or "", built.event_type, signature)
            cooldown = throttle.Cooldown(_COOLDOWN_NAMESPACE)
            if not cooldown.admit(key, seconds, frame.clock):
                throttle.count("throttled")
                return _result(throttling=True, message=f"throttled: the same {built.event_type} event was sent "
                               f"less than {cooldown_seconds}s ago for this stream")
        result = self._submit(wire_event, built, image, output_image, predictions, image_label,
                              where, fire_and_forget, wait_timeout_seconds, frame.can_wait)
        if not result["event_id"] and cooldown is not None:
            cooldown.forget(key)  # nothing was queued: the next attempt must not be throttled
        return result

    def _submit(
        self, wire_event: SinkEvent, built: BuiltEvent, image: Any, output_image: Any, predictions: Any,
        image_label: Optional[str], where: "_Where", fire_and_forget: bool, wait_timeout_seconds: float,
        can_wait: bool,
    ) -> BlockResult:
        notes: List[str] = []
        annotations = built.predictions if built.predictions is not None else predictions
        frame_array = _pixels(image)
        if annotations is not None and frame_array is None:
            notes.append("annotations left out: connect `image` (annotations are drawn on the input frame)")
            annotations = None
        try:
            skipped = common.non_finite_count(annotations)
        except ValueError as error:
            return _error("invalid_event", f"not sent: invalid {_one_line(error)}")
        if skipped:
            notes.append(f"{skipped} detection(s) with NaN/inf box or confidence left out")
        images = []
        if frame_array is not None or output_image is not None:
            label = common.text(image_label)
            images.append(ImageAttachment(input=frame_array, output=_pixels(output_image), label=label))
        try:
            sender = self._sender(where)
        except ValueError as error:  # the destination as configured cannot be used: say which field
            reason = "no_api_key" if "API key" in str(error) else "invalid_destination"
            return _error(reason, f"not sent: {_one_line(error)}")
        try:
            event_id = sender.submit(wire_event, images=images, predictions=annotations, can_wait=can_wait)
        except (ValueError, TypeError) as error:
            return _error("invalid_event", f"not sent: {_one_line(error)}")
        except Exception as error:  # the pipeline must keep running whatever the sender says
            return _error("sender_failed", f"not sent: {type(error).__name__}: {_one_line(error)}")
        throttle.count("submitted")
        if fire_and_forget:
            refusal = sender.refusal(wire_event.use_case_id)  # what earlier events of this use case met
            if refusal:
                notes.append(f"but the server refused earlier events: {refusal}")
            return _result(event_id=event_id, error=bool(skipped or refusal),
                           message="; ".join(["queued for delivery"] + notes))
        outcome = sender.wait(event_id, timeout=max(float(wait_timeout_seconds or 0.0), 0.0))
        refusal = sender.refusal() if outcome.status == "persisted" else None
        down = sender.unreachable() if outcome.status == "persisted" else None
        if outcome.ok and not (refusal or down):
            status = "delivered" if outcome.status == "sent" else "stored in the durable outbox, delivery continues"
            return _result(event_id=event_id, error=bool(skipped), message="; ".join([status] + notes))
        if refusal:
            throttle.count("error:key_refused")
            return _result(event_id=event_id, error=True, message="; ".join(
                [f"{refusal}; the event waits in the durable outbox for a valid key"] + notes))
        if down:  # safe on disk, but the answer waited for did not come
            throttle.count("error:pending")
            return _result(event_id=event_id, error=True, message="; ".join(
                [f"pending: no answer within {wait_timeout_seconds}s ({down}); stored in the durable outbox, "
                 "delivery continues"] + notes))
        throttle.count(f"error:{outcome.status}")
        detail = outcome.message or outcome.status
        if outcome.status == "pending":
            detail = f"no answer within {wait_timeout_seconds}s; delivery continues in the background"
        return _result(event_id=event_id, error=True, message="; ".join([f"{outcome.status}: {detail}"] + notes))

    def _where(self, *fields: Any) -> "_Where":
        """The destination fields as read; they are the same every frame, so read once (a few
        distinct values kept; an unhashable one is simply read again)."""
        try:
            where = self._wheres.get(fields)
            hashable = True
        except TypeError:
            where, hashable = None, False
        if where is None:
            where = _Where(common.text(fields[0]) or "cloud", *map(common.text, fields[1:]))
            if hashable:
                if len(self._wheres) >= 16:
                    self._wheres.clear()
                self._wheres[fields] = where
        return where

    def _sender(self, where: "_Where") -> Any:
        """The process-wide sender for this destination, remembered by this instance (a
        registry look-up parses the URL, hashes the key, checks the bundle folder and resolves
        the outbox: once, not on every frame)."""
        sender = self._senders.get(where)
        if sender is None or sender.closed:
            if where.destination == "cloud":
                sender = get_sender(api_url=where.api_url, api_key=self._api_key, outbox_dir=where.outbox_dir)
            else:  # no Roboflow key involved: the Event Store key comes from EVENT_INGESTION_API_KEY
                sender = get_sender(destination=where.destination, event_store_url=where.event_store_url,
                                    bundle_dir=where.bundle_dir, outbox_dir=where.outbox_dir)
            self._senders[where] = sender
        return sender


class _Where(NamedTuple):
    """The sink's destination fields, as given (resolved by the registry)."""

    destination: str
    api_url: Optional[str]
    event_store_url: Optional[str]
    bundle_dir: Optional[str]
    outbox_dir: Optional[str]

    @property
    def place(self) -> str:
        """What the cooldown calls "the same destination"."""
        target = {"event_store": self.event_store_url, "bundle": self.bundle_dir}.get(self.destination, self.api_url)
        return f"{self.destination}:{target or ''}"


# ------------------------------------------------------------------------ cooldown signature
def _signature(built: BuiltEvent, comment: Optional[str]) -> str:
    """For events without a builder signature: their event data and comment."""
    return json.dumps([built.event_data, built.comment or common.text(comment)], sort_keys=True, default=str)


# ------------------------------------------------------------------------ small helpers
def _pixels(image: Any) -> Any:
    return None if image is None else image.numpy_image


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _result(event_id: str = "", error: bool = False, throttling: bool = False, message: str = "") -> Dict[str, Any]:
    return {"error_status": error, "throttling_status": throttling, "message": message, "event_id": event_id}


def _error(reason: str, message: str) -> Dict[str, Any]:
    throttle.count(f"error:{reason}")
    return _result(error=True, message=message)
