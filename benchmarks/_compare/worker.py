"""One side of the comparison, in its own process: ``worker.py --side builtin|ours``.

The orchestrator (``benchmarks/compare_builtin.py``) sends one JSON command per line on
stdin and reads one JSON reply per line from the worker's *original* stdout; everything the
libraries print goes to stderr, so logs can never corrupt the protocol. A command may emit
``{"event": ...}`` lines before its reply (e.g. "streaming" so the orchestrator can start an
outage at the right moment).

Each side runs the sink the way users run it: through the real Execution Engine with the
host's 4-worker ``workflows_core.thread_pool_executor`` (as InferencePipeline passes it),
fire-and-forget, cooldown 0. The built-in side reads ``API_BASE_URL`` from the environment
(set by the orchestrator before this process imports inference).

How the hot path is timed: the sink block class's ``run`` is wrapped (``functools.wraps``,
so the engine still sees its signature) with ``perf_counter_ns`` before any workflow is
compiled. That is exactly the time the step spends on the frame's thread, excluding the
engine's own bookkeeping, which is the same for both sides.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _compare import workloads  # noqa: E402
from _compare.workloads import BUILTIN  # noqa: E402


class CountingExecutor(ThreadPoolExecutor):
    """The host's sink pool, counting what is still queued or running (to know when the
    built-in side has nothing left to do) and when the last task finished."""

    def __init__(self, max_workers: int = 4) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="host-sink-pool")
        self._lock = threading.Lock()
        self.pending = 0
        self.last_done = 0.0

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any):
        with self._lock:
            self.pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Any) -> None:
        with self._lock:
            self.pending -= 1
            self.last_done = time.time()


class MemorySampler:
    """Samples this process's RSS every ``interval`` seconds on a daemon thread."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.samples: List[tuple] = []
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> "MemorySampler":
        self.baseline = self._process.memory_info().rss
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._start, self._process.memory_info().rss))
            self._stop.wait(self._interval)

    def latest_growth(self) -> int:
        return self.samples[-1][1] - self.baseline if self.samples else 0

    def summary(self, max_points: int = 200) -> Dict[str, Any]:
        step = max(1, len(self.samples) // max_points)
        mb = 1024 * 1024
        return {
            "baseline_mb": self.baseline / mb,
            "peak_mb": max(rss for _, rss in self.samples) / mb,
            "series": [(round(t, 2), round(rss / mb, 1)) for t, rss in self.samples[::step]],
        }


class Side:
    """Everything one side needs: engine factory, the timed sink class, its drain."""

    def __init__(self, side: str, api_url: str, api_key: str) -> None:
        self.side = side
        self.api_url = api_url
        self.api_key = api_key
        self.run_times_ns: List[int] = []
        self.dropped_at_stream_start: Dict[str, int] = {}
        from inference.core.workflows.execution_engine.core import ExecutionEngine

        self._engine_class = ExecutionEngine
        self.pool = CountingExecutor(max_workers=4)
        self._time_sink_runs(self._sink_class())
        frame_sizes = {name: spec[:2] for name, spec in workloads.IMAGE_WORKLOADS.items() if spec[0]}
        self.frames = {name: workloads.synthetic_frame(h, w) for name, (h, w) in frame_sizes.items()}

    def _sink_class(self) -> type:
        if self.side == BUILTIN:
            # inference.core is already imported (by the engine import), so this is safe
            from roboflow_workflows.core_steps.sinks.roboflow.vision_events.v1 import RoboflowVisionEventsBlockV1

            return RoboflowVisionEventsBlockV1
        import vision_events_blocks

        for block in vision_events_blocks.load_blocks():
            manifest = block.get_manifest()
            if workloads.OURS_SINK_TYPE in str(manifest.model_fields["type"].annotation):
                return block
        raise RuntimeError(f"{workloads.OURS_SINK_TYPE} not found in vision_events_blocks.load_blocks()")

    def _time_sink_runs(self, block_class: type) -> None:
        original = block_class.run
        samples = self.run_times_ns

        @functools.wraps(original)
        def timed_run(block_self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return original(block_self, *args, **kwargs)
            finally:
                samples.append(time.perf_counter_ns() - started)

        block_class.run = timed_run

    def engine(self, use_case_id: str, images: str, detections: bool = False) -> Any:
        definition = workloads.workflow(self.side, use_case_id=use_case_id, api_url=self.api_url,
                                        images=images, detections=detections)
        return self._engine_class.init(
            workflow_definition=definition,
            init_parameters={
                "workflows_core.api_key": self.api_key,
                "workflows_core.thread_pool_executor": self.pool,
                "workflows_core.background_tasks": None,
            },
            max_concurrent_steps=2,
        )

    def drain(self, timeout_s: float) -> Dict[str, Any]:
        """Wait until the side has nothing left in flight; returns when that happened."""
        deadline = time.monotonic() + timeout_s
        if self.side == BUILTIN:
            while self.pool.pending and time.monotonic() < deadline:
                time.sleep(0.01)
            return {"drained": self.pool.pending == 0, "t_drained": self.pool.last_done, "pending": self.pool.pending}
        import vision_events_blocks

        drained = False
        while not drained and time.monotonic() < deadline:
            drained = vision_events_blocks.flush(timeout=min(1.0, max(0.01, deadline - time.monotonic())), delivered=True)
        return {"drained": drained, "t_drained": time.time(), "stats": self.delivery_stats(),
                "dropped_since_stream": dropped_since(self.dropped_at_stream_start, self.dropped())}

    def dropped(self) -> Dict[str, int]:
        """Our sender's drop counters by reason, summed over destinations (the built-in keeps none)."""
        totals: Dict[str, int] = {}
        for stats in (self.delivery_stats() or {}).values():
            for reason, count in stats.get("dropped", {}).items():
                totals[reason] = totals.get(reason, 0) + count
        return totals

    def delivery_stats(self) -> Optional[Dict[str, Any]]:
        if self.side == BUILTIN:
            return None
        import vision_events_blocks

        return _jsonable(vision_events_blocks.stats())


def dropped_since(before: Dict[str, int], after: Dict[str, int]) -> Dict[str, int]:
    return {reason: n - before.get(reason, 0) for reason, n in after.items() if n - before.get(reason, 0)}


def count_outcomes(results: List[Dict[str, Any]], outcomes: Dict[str, int]) -> None:
    """Tally what the sink answered for each frame (the built-in never reports fire-and-forget failures)."""
    for result in results:
        if result.get("error_status"):
            outcomes["error"] += 1
        elif result.get("throttling_status"):
            outcomes["throttled"] += 1
        else:
            outcomes["accepted"] += 1


def cmd_hot_path(side: Side, use_case_id: str, frames: int, fps: float, detections: int) -> Dict[str, Any]:
    """Frames at camera pace with 1080p input + output images and ``detections`` boxes."""
    images = "two_1080p"
    height, width, _ = workloads.IMAGE_WORKLOADS[images]
    engine = side.engine(use_case_id, images, detections=True)
    dets = workloads.detections_payload(detections, height, width)
    warmup = 3
    outcomes = {"accepted": 0, "error": 0, "throttled": 0}
    side.run_times_ns.clear()
    period = 1.0 / fps
    next_frame = time.monotonic()
    for number in range(frames + warmup):
        inputs = workloads.runtime_inputs(images, side.frames, dets, live_frame=number)  # a camera
        count_outcomes(engine.run(runtime_parameters=inputs), outcomes)
        next_frame += period
        time.sleep(max(0.0, next_frame - time.monotonic()))
    samples = side.run_times_ns[warmup:]
    return {"run_ns": samples, "outcomes": outcomes, "submitted": frames + warmup}


def cmd_burst(side: Side, use_case_id: str, images: str, events: int, drain_timeout: float) -> Dict[str, Any]:
    """Submit ``events`` as fast as the engine runs, then wait until all are acknowledged."""
    engine = side.engine(use_case_id, images)
    outcomes = {"accepted": 0, "error": 0, "throttled": 0}
    side.run_times_ns.clear()
    dropped_before = side.dropped()
    t_first = time.time()
    for _ in range(events):
        count_outcomes(engine.run(runtime_parameters=workloads.runtime_inputs(images, side.frames, None)), outcomes)
    t_last_submit = time.time()
    sink_run_us_mean = sum(side.run_times_ns) / max(1, len(side.run_times_ns)) / 1000.0
    drained = side.drain(drain_timeout)
    return {"t_first": t_first, "t_last_submit": t_last_submit, "outcomes": outcomes,
            "sink_run_us_mean": sink_run_us_mean, "dropped": dropped_since(dropped_before, side.dropped()), **drained}


def cmd_stream(side: Side, use_case_id: str, images: str, fps: float, seconds: float,
               emit: Callable[[Dict[str, Any]], None], rss_ceiling_mb: Optional[float] = None) -> Dict[str, Any]:
    """A camera: one event per frame at ``fps`` for ``seconds``, RSS sampled throughout.

    ``rss_ceiling_mb`` (growth over the start) ends the stream early, so that a side whose
    memory grows without bound cannot take the shared machine down with it.
    """
    engine = side.engine(use_case_id, images)
    outcomes = {"accepted": 0, "error": 0, "throttled": 0}
    frames = int(round(fps * seconds))
    period = 1.0 / fps
    late_frames = 0
    streamed = 0
    ceiling = None if rss_ceiling_mb is None else rss_ceiling_mb * 1024 * 1024
    side.dropped_at_stream_start = side.dropped()
    with MemorySampler() as memory:
        emit({"event": "streaming", "t": time.time()})
        started = next_frame = time.monotonic()
        for streamed in range(1, frames + 1):
            inputs = workloads.runtime_inputs(images, side.frames, None, live_frame=streamed)  # a camera
            count_outcomes(engine.run(runtime_parameters=inputs), outcomes)
            if ceiling is not None and memory.latest_growth() > ceiling:
                break
            next_frame += period
            delay = next_frame - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late_frames += 1
        streamed_seconds = time.monotonic() - started
    return {"outcomes": outcomes, "frames": streamed, "late_frames": late_frames,
            "streamed_seconds": streamed_seconds, "stopped_at_ceiling": streamed < frames,
            "memory": memory.summary(), "stats": side.delivery_stats(),
            "pool_pending": side.pool.pending if side.side == BUILTIN else None}


def cmd_pipeline_end(side: Side, use_case_id: str, video: str, images: str) -> Dict[str, Any]:
    """A real InferencePipeline over a video file; count what the sink accepted.

    The process exits right after (the orchestrator then counts what reached the server):
    the built-in's queued tasks are cancelled at pipeline end, ours are flushed by the
    sender's exit hooks, exactly as in a user's script that ends with ``pipeline.join()``.
    """
    from inference.core.interfaces.workflows_step_error_handlers import resolve_step_error_handler
    from streamvision.stream.pipeline import InferencePipeline

    definition = workloads.workflow(side.side, use_case_id=use_case_id, api_url=side.api_url,
                                    images=images, detections=False)
    outcomes = {"accepted": 0, "error": 0, "throttled": 0}

    def on_prediction(result: Any, _frame: Any) -> None:
        count_outcomes(result if isinstance(result, list) else [result], outcomes)

    pipeline = InferencePipeline.init_with_workflow(
        video_reference=video, workflow_specification=definition, on_prediction=on_prediction,
        workflow_init_parameters={"workflows_core.api_key": side.api_key},
        step_error_handler=resolve_step_error_handler(),  # what inference's own wrapper passes
    )
    started = time.time()
    pipeline.start()
    pipeline.join()
    return {"outcomes": outcomes, "pipeline_seconds": time.time() - started, "stats": side.delivery_stats(),
            "dropped": side.dropped()}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=workloads.SIDES, required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--preload-pipeline", action="store_true", help="import InferencePipeline up front")
    args = parser.parse_args()
    api_key = os.environ.pop("BENCH_API_KEY")  # handed over by environment, never on a command line

    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    os.dup2(sys.stderr.fileno(), 1)  # C-level prints from libraries go to stderr too

    def emit(message: Dict[str, Any]) -> None:
        protocol.write(json.dumps(message, default=str) + "\n")
        protocol.flush()

    side = Side(args.side, args.api_url, api_key)
    if args.preload_pipeline:
        # ``from inference import InferencePipeline`` goes through a legacy shim that needs
        # onnxruntime (absent from inference-core); this is the class it re-exports.
        from streamvision.stream.pipeline import InferencePipeline  # noqa: F401  (~10 s, before the clock starts)
    emit({"event": "ready", "pid": os.getpid()})
    for line in sys.stdin:
        command = json.loads(line)
        name = command.pop("cmd")
        try:
            if name == "hot_path":
                reply = cmd_hot_path(side, **command)
            elif name == "burst":
                reply = cmd_burst(side, **command)
            elif name == "stream":
                reply = cmd_stream(side, emit=emit, **command)
            elif name == "drain":
                reply = side.drain(**command)
            elif name == "multi_stream":
                from _compare.scaling import cmd_multi_stream

                reply = cmd_multi_stream(side, memory_sampler=MemorySampler, **command)
            elif name == "pipeline_end":
                reply = cmd_pipeline_end(side, **command)
            elif name == "exit":
                emit({"reply": "exit"})
                break
            else:
                raise ValueError(f"unknown command {name!r}")
            emit({"reply": name, **reply})
        except Exception as error:  # report, do not die: the orchestrator decides
            import traceback

            traceback.print_exc()
            emit({"reply": name, "error": f"{type(error).__name__}: {error}"})


if __name__ == "__main__":
    main()
