"""The workflow examples in the third host: InferencePipeline on a video file.

The pipeline runs exactly as a user's script does (``init_with_workflow``, ``start``,
``join``); then ``vision_events_blocks.flush()`` — and, in a subprocess that calls nothing
after ``join()``, the exit hook alone — must deliver every event the sink reported, including
the ones still queued when the video ended (the built-in block cancels those).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from vision_events_blocks.demo import clips
from vision_events_blocks.demo.runner import register_plugin, run_workflow_on_video
from vision_events_blocks.testing.examples import load_example


@pytest.fixture
def pointed_at_local_server(local_server, monkeypatch):
    monkeypatch.setenv("VISION_EVENTS_API_URL", local_server.url)


def assert_all_delivered(run, events):
    assert not run.errors, run.errors
    assert run.event_ids, "the workflow reported no event at all"
    assert sorted(e["eventId"] for e in events) == sorted(run.event_ids)


def test_quality_check_line_on_video(production_line_clip, local_server, use_case_id, delivered, pointed_at_local_server):
    video, truth = production_line_clip
    run = run_workflow_on_video(load_example("quality_check_line.offline"), video, local_server.api_key,
                                {"defect_template": clips.defect_template(), "use_case_id": use_case_id})

    assert run.frames == truth.frames
    assert [o["result"] for o in run.outputs] == ["fail" if truth.defect_visible(i) else "pass" for i in range(truth.frames)]
    events = delivered(use_case_id)
    assert_all_delivered(run, events)
    assert {e["eventData"]["result"] for e in events} == {"pass", "fail"}
    (stream,) = {e.get("streamId") for e in events}     # default stream: the video's identifier
    assert stream


def test_ppe_safety_on_video_alerts_once_per_intruder(production_line_clip, local_server, use_case_id, delivered,
                                                     pointed_at_local_server):
    video, truth = production_line_clip
    run = run_workflow_on_video(load_example("ppe_safety_alerts.offline"), video, local_server.api_key,
                                {"use_case_id": use_case_id})

    assert sum(1 for o in run.outputs if o.get("violations")) > 10      # the worker is seen on many frames...
    events = delivered(use_case_id)
    assert_all_delivered(run, events)
    assert len(events) == len(truth.workers_seen()) == 1                # ...and alerted once
    assert events[0]["eventData"]["alertType"] == "walkway_intrusion"
    assert events[0]["images"] and events[0]["images"][0]["objectDetections"]


def test_shelf_inventory_on_video_reports_each_count_change(shelf_clip, local_server, use_case_id, delivered,
                                                           pointed_at_local_server):
    video, truth = shelf_clip
    run = run_workflow_on_video(load_example("shelf_inventory.offline"), video, local_server.api_key,
                                {"product_template": clips.product_template(), "use_case_id": use_case_id})

    assert [o["item_count"] for o in run.outputs] == [truth.count(i) for i in range(truth.frames)]
    events = sorted(delivered(use_case_id), key=lambda e: e["timestamp"])
    assert_all_delivered(run, events)
    assert [e["eventData"]["itemCount"] for e in events] == truth.distinct_counts()


def test_one_pipeline_over_two_videos_keeps_each_sources_state_apart(shelf_clip, tmp_path, local_server, use_case_id,
                                                                    delivered, pointed_at_local_server):
    """Two cameras in one InferencePipeline: each source's last count is its own (an event on
    every change of *that* shelf), and each event carries its own source's streamId."""
    first, first_truth = shelf_clip
    frames, second_truth = clips.shelf(frames=90, removals=(20, 40))
    second = clips.write_clip(tmp_path / "second_shelf.mp4", frames)
    run = run_workflow_on_video(load_example("shelf_inventory.offline"), [first, second], local_server.api_key,
                                {"product_template": clips.product_template(), "use_case_id": use_case_id})

    assert not run.errors, run.errors
    assert run.frames == first_truth.frames + second_truth.frames
    events = sorted(delivered(use_case_id), key=lambda e: e["timestamp"])
    assert sorted(e["eventId"] for e in events) == sorted(run.event_ids)
    by_stream = {}
    for event in events:
        by_stream.setdefault(event["streamId"], []).append(event["eventData"]["itemCount"])
    assert len(by_stream) == 2, by_stream.keys()
    assert sorted(by_stream.values()) == sorted([first_truth.distinct_counts(), second_truth.distinct_counts()])


EXIT_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import vision_events_blocks
    from vision_events_blocks.demo import clips
    from vision_events_blocks.demo.runner import register_plugin, run_workflow_on_video
    from vision_events_blocks.testing.examples import load_example

    video, ids_file, use_case_id = sys.argv[1:4]
    run = run_workflow_on_video(load_example("quality_check_line.offline"), video, os.environ["ROBOFLOW_API_KEY"],
                                {"defect_template": clips.defect_template(), "use_case_id": use_case_id})
    pending = sum(s["pending"] for s in vision_events_blocks.stats().values())
    with open(ids_file, "w") as f:
        json.dump({"event_ids": run.event_ids, "errors": run.errors, "pending_at_end": pending}, f)
    # no flush(): the interpreter just ends, and the exit hook must deliver what is queued
    """
)


def test_events_queued_at_exit_are_delivered_by_the_exit_hook(production_line_clip, local_server, use_case_id,
                                                              tmp_path):
    video, _ = production_line_clip
    script, ids_file = tmp_path / "pipeline_then_exit.py", tmp_path / "ids.json"
    script.write_text(EXIT_SCRIPT)
    env = dict(os.environ, ROBOFLOW_API_KEY=local_server.api_key, VISION_EVENTS_API_URL=local_server.url,
               WORKFLOWS_PLUGINS="vision_events_blocks", VISION_EVENTS_SHUTDOWN_TIMEOUT_S="60")
    # A slow server keeps events queued when the video ends, so the exit hook has work to do.
    local_server.set_faults(latency_ms=300)
    try:
        finished = subprocess.run([sys.executable, str(script), str(video), str(ids_file), use_case_id], env=env,
                                  cwd=tmp_path, capture_output=True, timeout=240)
    finally:
        local_server.set_faults()
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    reported = json.loads(ids_file.read_text())
    assert not reported["errors"] and reported["event_ids"]
    assert reported["pending_at_end"] > 0, "nothing was left for the exit hook: the test proves nothing"
    stored = {e["eventId"] for e in local_server.events(use_case_id)}
    assert stored == set(reported["event_ids"])


def test_a_key_only_in_workflow_init_parameters_is_overwritten_and_reported(shelf_clip, local_server, use_case_id,
                                                                            monkeypatch, pointed_at_local_server):
    """inference 1.8.3's ``init_with_workflow`` replaces ``workflows_core.api_key`` with its ``api_key``
    argument (None here): the sink must say so on every frame, not crash and not drop silently."""
    register_plugin()
    from inference import InferencePipeline

    for name in ("ROBOFLOW_API_KEY", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("inference.core.interfaces.legacy_stream.inference_pipeline.API_KEY", None, raising=False)
    video, _ = shelf_clip
    outputs = []
    pipeline = InferencePipeline.init_with_workflow(
        video_reference=str(video), workflow_specification=load_example("shelf_inventory.offline"),
        on_prediction=lambda result, frame: outputs.append(result),
        workflows_parameters={"product_template": clips.product_template(), "use_case_id": use_case_id},
        workflow_init_parameters={"workflows_core.api_key": local_server.api_key},
    )
    pipeline.start()
    pipeline.join()

    sent = [o for o in outputs if o.get("event_id") or o.get("error_status")]
    assert sent and all(o["error_status"] and "key" in o["message"].lower() for o in sent)
    assert local_server.api_key not in " ".join(o["message"] for o in sent)
    assert local_server.events(use_case_id) == []
