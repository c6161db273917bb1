"""The workflow examples in the first host: inference's Execution Engine, in this process.

Every example compiles (the model-backed forms with a real model manager; compiling loads no
weights), and the offline forms run frame by frame on the synthetic clips, as
InferencePipeline would: one compiled engine, so motion detection and the tracker keep state.
Every event the sink reports must arrive at the local server.
"""
from __future__ import annotations

import pytest

from vision_events_blocks.demo import clips
from vision_events_blocks.testing.examples import all_example_names, load_example, with_detections_input


@pytest.fixture(scope="module")
def model_manager(execution_engine):
    """The model manager a host builds (no model is loaded until a workflow runs one)."""
    from inference.core.managers.base import ModelManager
    from inference.core.registries.roboflow import RoboflowModelRegistry
    from inference.models.utils import ROBOFLOW_MODEL_TYPES

    return ModelManager(model_registry=RoboflowModelRegistry(ROBOFLOW_MODEL_TYPES))


@pytest.fixture
def pointed_at_local_server(local_server, monkeypatch):
    """The examples name no API URL: the sink takes it from the environment, as users deploy them."""
    monkeypatch.setenv("VISION_EVENTS_API_URL", local_server.url)


def compile_example(execution_engine, name, api_key, model_manager):
    return execution_engine.init(
        workflow_definition=load_example(name),
        init_parameters={"workflows_core.api_key": api_key, "workflows_core.model_manager": model_manager},
        max_concurrent_steps=2,
    )


def test_there_are_three_examples_each_model_backed_and_offline():
    names = all_example_names()
    for example in ("quality_check_line", "ppe_safety_alerts", "shelf_inventory"):
        assert example in names and f"{example}.offline" in names
        model_steps = [s["type"] for s in load_example(example)["steps"]]
        assert "roboflow_core/roboflow_object_detection_model@v2" in model_steps
        assert any(s.startswith("vision_events/") and s.endswith("_event@v1") for s in model_steps)
        assert "vision_events/sink@v1" in model_steps


@pytest.mark.parametrize("name", ["quality_check_line", "ppe_safety_alerts", "shelf_inventory",
                                  "quality_check_line.offline", "ppe_safety_alerts.offline", "shelf_inventory.offline"])
def test_every_example_compiles(execution_engine, local_server, model_manager, name):
    engine = compile_example(execution_engine, name, local_server.api_key, model_manager)
    declared = {i["name"] for i in load_example(name)["inputs"]}
    assert {"image", "use_case_id"} <= declared
    assert engine is not None


def run_frames(engine, frames, parameters):
    """Run ``engine`` once per frame (like a video host), returning one result dict per frame."""
    return [engine.run(runtime_parameters={"image": frame, **parameters})[0] for frame in frames]


def sent_ids(results):
    """The event ids the sink reported (frames without an event have none)."""
    ids = [r["event_id"] for r in results if r.get("event_id")]
    assert all(not r["error_status"] for r in results), [r["message"] for r in results if r["error_status"]]
    return ids


def test_quality_check_line_offline_reports_every_part_and_delivers_every_event(
    execution_engine, local_server, model_manager, use_case_id, delivered, pointed_at_local_server
):
    frames, truth = clips.production_line(frames=120)
    engine = compile_example(execution_engine, "quality_check_line.offline", local_server.api_key, model_manager)
    results = run_frames(engine, frames, {"defect_template": clips.defect_template(), "use_case_id": use_case_id})

    assert [r["result"] for r in results] == ["fail" if truth.defect_visible(i) else "pass" for i in range(120)]
    ids = sent_ids(results)
    events = delivered(use_case_id)
    assert sorted(e["eventId"] for e in events) == sorted(ids)
    assert {e["eventData"]["result"] for e in events} == {"pass", "fail"}   # the throttle never hides a new result
    failed = [e for e in events if e["eventData"]["result"] == "fail"]
    assert all(img["objectDetections"][0]["class"] == "template_match" for e in failed for img in e["images"][:1])
    assert all("template_match" in e["customMetadata"]["qc_reason"] for e in failed)   # why it failed
    assert all(e["deviceId"] == "line-1-camera" and len(e["images"]) >= 1 for e in events)


def test_shelf_inventory_offline_reports_each_new_count_once(
    execution_engine, local_server, model_manager, use_case_id, delivered, pointed_at_local_server
):
    frames, truth = clips.shelf(frames=90)
    engine = compile_example(execution_engine, "shelf_inventory.offline", local_server.api_key, model_manager)
    results = run_frames(engine, frames, {"product_template": clips.product_template(), "use_case_id": use_case_id})

    assert [r["item_count"] for r in results] == [truth.count(i) for i in range(90)]
    ids = sent_ids(results)
    assert len(ids) == len(truth.distinct_counts())           # on_change: one event per new count
    events = sorted(delivered(use_case_id), key=lambda e: e["timestamp"])
    assert sorted(e["eventId"] for e in events) == sorted(ids)
    assert [e["eventData"]["itemCount"] for e in events] == truth.distinct_counts()
    assert {e["eventData"]["location"] for e in events} == {"aisle 7, shelf 2"}


def test_ppe_safety_offline_alerts_once_per_intruder(
    execution_engine, local_server, model_manager, use_case_id, delivered, pointed_at_local_server
):
    frames, truth = clips.production_line(frames=120)
    engine = compile_example(execution_engine, "ppe_safety_alerts.offline", local_server.api_key, model_manager)
    results = run_frames(engine, frames, {"use_case_id": use_case_id})

    ids = sent_ids(results)
    assert any(r["violations"] for r in results)
    events = delivered(use_case_id)
    assert sorted(e["eventId"] for e in events) == sorted(ids)
    assert len(events) == len(truth.workers_seen()) == 1      # one worker crosses: one alert, not one per frame
    assert events[0]["eventData"]["alertType"] == "walkway_intrusion"
    assert events[0]["eventData"]["severity"] == "high"
    assert "the walkway" in events[0]["eventData"]["description"]


def test_ppe_model_backed_form_runs_with_detections_given_as_data(
    execution_engine, local_server, use_case_id, delivered, pointed_at_local_server
):
    """The model-backed PPE workflow minus its model: two violators, one compliant worker."""
    spec = with_detections_input(load_example("ppe_safety_alerts"))
    engine = execution_engine.init(workflow_definition=spec, init_parameters={"workflows_core.api_key": local_server.api_key})
    people = [("no_hardhat", 100), ("hardhat", 300), ("no_vest", 500)]
    detections = {"image": {"width": 640, "height": 480}, "predictions": [
        {"x": x, "y": 300, "width": 60, "height": 160, "confidence": 0.9, "class": cls, "class_id": i, "detection_id": f"d{i}"}
        for i, (cls, x) in enumerate(people)]}
    frame = next(clips.production_line(frames=1)[0])
    results = [engine.run(runtime_parameters={"image": frame, "detections": detections, "use_case_id": use_case_id})[0]
               for _ in range(3)]

    assert results[0]["violations"] == 2
    ids = sent_ids(results)
    events = delivered(use_case_id)
    assert sorted(e["eventId"] for e in events) == sorted(ids) and len(ids) == 1   # same violators: alerted once
    assert events[0]["eventData"]["severity"] == "high"                            # no_hardhat -> high
    assert {d["class"] for d in events[0]["images"][0]["objectDetections"]} >= {"no_hardhat", "no_vest"}
