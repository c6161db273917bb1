"""Run a workflow over a video file with inference's InferencePipeline and keep what the sink said.

Used by the demo, the host tests and the exit-flush script, so all three run a pipeline the
way a user's script does: ``init_with_workflow`` -> ``start()`` -> ``join()``, nothing else.
Delivery is *not* awaited here: that is ``vision_events_blocks.flush()`` (or the exit hook).
"""
from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

SINK_FIELDS = ("event_id", "error_status", "throttling_status", "message")


@dataclasses.dataclass
class PipelineRun:
    """What the workflow reported, frame by frame (only JSON-able outputs are kept)."""

    frames: int = 0
    event_ids: List[str] = dataclasses.field(default_factory=list)
    errors: List[str] = dataclasses.field(default_factory=list)
    throttled: int = 0
    outputs: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    stream_ids: List[str] = dataclasses.field(default_factory=list)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def record(self, result: Optional[Dict[str, Any]], frame: Any) -> None:
        kept = {k: v for k, v in (result or {}).items() if v is None or isinstance(v, (str, int, float, bool))}
        with self._lock:
            self.frames += 1
            self.outputs.append(kept)
            self.stream_ids.append(str(getattr(frame, "source_id", "")))
            if kept.get("event_id"):
                self.event_ids.append(kept["event_id"])
            if kept.get("error_status"):
                self.errors.append(str(kept.get("message")))
            if kept.get("throttling_status"):
                self.throttled += 1


def register_plugin() -> None:
    """Add this package to ``WORKFLOWS_PLUGINS`` (kept: any plugins already listed there)."""
    plugins = [p.strip() for p in os.environ.get("WORKFLOWS_PLUGINS", "").split(",") if p.strip()]
    if "vision_events_blocks" not in plugins:
        os.environ["WORKFLOWS_PLUGINS"] = ",".join(plugins + ["vision_events_blocks"])


def run_workflow_on_video(
    spec: Dict[str, Any],
    video: Union[Path, Sequence[Path]],
    api_key: str,
    parameters: Optional[Dict[str, Any]] = None,
    on_frame: Optional[Callable[[PipelineRun], None]] = None,
) -> PipelineRun:
    """Process every frame of ``video`` (one file, or several: one pipeline over all of them,
    as a multi-camera script does) with ``spec``; returns when every video has ended."""
    register_plugin()
    from inference import InferencePipeline

    run = PipelineRun()

    def on_prediction(result: Any, frame: Any) -> None:
        # several sources: lists, one entry per source (None where a source had no frame)
        for one_result, one_frame in (zip(result, frame) if isinstance(result, list) else [(result, frame)]):
            if one_frame is not None:
                run.record(one_result, one_frame)
        if on_frame is not None:
            on_frame(run)

    references = [str(v) for v in video] if isinstance(video, (list, tuple)) else str(video)
    pipeline = InferencePipeline.init_with_workflow(
        video_reference=references,
        workflow_specification=spec,
        on_prediction=on_prediction,
        workflows_parameters=parameters or {},
        # inference 1.8.3 overwrites workflow_init_parameters["workflows_core.api_key"] with this
        # argument (else the API_KEY environment variable), so the key must go here.
        api_key=api_key,
    )
    pipeline.start()
    pipeline.join()
    return run
