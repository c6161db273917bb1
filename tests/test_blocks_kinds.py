"""The plugin face and the ``vision_event`` kind: loading, manifests, and the serializer round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import supervision as sv

import vision_events_blocks
from support.blocks import box, by_id, detections, frame, only_image, sink, workflow

BLOCK_TYPES = {
    "vision_events/sink@v1",
    "vision_events/quality_check_event@v1",
    "vision_events/safety_alert_event@v1",
    "vision_events/inventory_count_event@v1",
}


def test_plugin_face(execution_engine):
    blocks = vision_events_blocks.load_blocks()
    types = {block.get_manifest().model_json_schema()["properties"]["type"]["const"] for block in blocks}
    assert types == BLOCK_TYPES
    assert vision_events_blocks.BLOCKS_SOURCE == "workflows_core"
    assert [kind.name for kind in vision_events_blocks.load_kinds()] == ["vision_event"]
    assert set(vision_events_blocks.KINDS_SERIALIZERS) == {"vision_event"}
    assert set(vision_events_blocks.KINDS_DESERIALIZERS) == {"vision_event"}
    assert not hasattr(vision_events_blocks, "REGISTERED_INITIALIZERS")  # never shadow a core initializer


@pytest.mark.parametrize("block", range(4))
def test_manifests_document_themselves(execution_engine, block):
    block = vision_events_blocks.load_blocks()[block]
    manifest = block.get_manifest()
    schema = manifest.model_json_schema()
    assert manifest.get_execution_engine_compatibility() == ">=1.3.0,<2.0.0"
    for key in ("name", "version", "short_description", "long_description", "license", "block_type", "ui_manifest"):
        assert schema.get(key), key
    assert "```json" in schema["long_description"]
    json.loads(schema["long_description"].split("```json", 1)[1].split("```", 1)[0])  # the example is valid JSON
    assert {"section", "icon", "blockPriority"} <= set(schema["ui_manifest"])


def test_blocks_are_described_by_the_engine(execution_engine):
    from inference.core.workflows.execution_engine.introspection.blocks_loader import describe_available_blocks

    description = describe_available_blocks(dynamic_blocks=[])
    ours = {b.manifest_type_identifier for b in description.blocks} & BLOCK_TYPES
    assert ours == BLOCK_TYPES
    assert "vision_event" in {kind.name for kind in description.declared_kinds}


# ---------------------------------------------------------------------------- serializer
def _event_with_detections():
    from vision_events_blocks.blocks.kinds import BuiltEvent

    dets = sv.Detections(
        xyxy=np.array([[10.0, 20.0, 30.0, 50.0], [100.0, 100.0, 140.0, 180.0]]),
        confidence=np.array([0.9, 0.75]),
        class_id=np.array([1, 2]),
        tracker_id=np.array([7, 8]),
        data={"class_name": np.array(["no_hardhat", "no_vest"])},
    )
    return BuiltEvent(event_type="safety_alert",
                      event_data={"alert_type": "no_hardhat", "severity": "high", "description": "2 violation(s)"},
                      signature="no_hardhat|high|track:7", custom_metadata={"zone": "B"}, predictions=dets)


def test_kind_round_trips_with_detections(execution_engine):
    from vision_events_blocks.blocks.kinds import deserialize_vision_event, serialize_vision_event

    event = _event_with_detections()
    wire = json.loads(json.dumps(serialize_vision_event(event)))  # really JSON
    assert wire["eventType"] == "safety_alert"
    assert wire["eventData"] == {"alertType": "no_hardhat", "severity": "high", "description": "2 violation(s)"}
    back = deserialize_vision_event("event", wire)
    assert (back.event_type, back.event_data, back.signature, back.custom_metadata) == (
        event.event_type, event.event_data, event.signature, event.custom_metadata)
    assert np.allclose(back.predictions.xyxy, event.predictions.xyxy)
    assert np.allclose(back.predictions.confidence, event.predictions.confidence)
    assert list(back.predictions.data["class_name"]) == ["no_hardhat", "no_vest"]
    assert list(back.predictions.tracker_id) == [7, 8]


def test_kind_round_trips_classification_and_nothing(execution_engine):
    from vision_events_blocks.blocks.kinds import BuiltEvent, deserialize_vision_event, serialize_vision_event

    result = {"top": "defective", "confidence": np.float32(0.8),
              "predictions": [{"class": "defective", "class_id": 0, "confidence": 0.8}]}
    event = BuiltEvent(event_type="quality_check", event_data={"result": "fail"}, predictions=result)
    back = deserialize_vision_event("event", json.loads(json.dumps(serialize_vision_event(event))))
    assert back.predictions["top"] == "defective" and back.predictions["confidence"] == pytest.approx(0.8)
    assert serialize_vision_event(None) is None and deserialize_vision_event("event", None) is None


@pytest.mark.parametrize("value, named", [
    ("not a dict", "expected an object"),
    ({"eventData": {}}, "missing eventType"),
    ({"eventType": "quality_check", "eventData": {"result": "maybe"}}, "result"),
    ({"eventType": "alarm", "eventData": {}}, "event_type"),
    ({"eventType": "custom", "customMetadata": {"bad/key": 1}}, "bad/key"),
    ({"eventType": "custom", "extra": 1}, "extra"),
])
def test_deserializer_rejects_bad_events_naming_the_field(execution_engine, value, named):
    from inference.core.workflows.errors import RuntimeInputError

    from vision_events_blocks.blocks.kinds import deserialize_vision_event

    with pytest.raises(RuntimeInputError) as caught:
        deserialize_vision_event("incoming", value)
    assert named in caught.value.public_message and "incoming" in caught.value.public_message


def test_event_survives_serialized_results_and_comes_back_as_input(run_workflow, local_server, use_case_id, delivered):
    """What the HTTP server does: serialize the builder's output, then accept it as an input."""
    build = {"version": "1.0",
             "inputs": [{"type": "WorkflowImage", "name": "image"},
                        {"type": "WorkflowBatchInput", "name": "predictions", "kind": ["object_detection_prediction"]}],
             "steps": [{"type": "vision_events/safety_alert_event@v1", "name": "build", "predictions": "$inputs.predictions",
                        "alert_classes": ["no_hardhat"], "realert_after_seconds": 0, "severity": "high"}],
             "outputs": [{"type": "JsonField", "name": "event", "selector": "$steps.build.event"}]}
    serialized = run_workflow(build, {"image": frame(), "predictions": [detections(box("no_hardhat", x=70))]},
                              serialize_results=True)[0]["event"]
    payload = json.loads(json.dumps(serialized))
    assert payload["eventData"]["alertType"] == "no_hardhat"

    send = workflow(None, sink(local_server, use_case_id, event="$inputs.event"),
                    extra_inputs=[{"type": "WorkflowBatchInput", "name": "event", "kind": ["vision_event"]}])
    out = run_workflow(send, {"image": frame(), "predictions": [detections()], "event": [payload]})[0]["send"]
    assert out["error_status"] is False, out
    event = by_id(delivered(use_case_id))[out["event_id"]]
    assert event["eventData"] == {"alertType": "no_hardhat", "severity": "high", "description": "1 violation(s): no_hardhat"}
    (annotation,) = only_image(event)["objectDetections"]
    assert (annotation["class"], annotation["x"], annotation["y"]) == ("no_hardhat", 70, 60)
