"""How fast the Execution Engine runs the benchmark's workflow with the sink *disabled*: the
ceiling of any sink's delivered events/s in ``compare_builtin.py``'s bursts on this machine.

``scripts/py benchmarks/engine_ceiling.py`` prints frames/s and engine CPU per frame for each
image workload (the same frames, copies and workflow as the bursts; nothing is sent).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DISABLE_VERSION_CHECK", "true")
os.environ.setdefault("OFFLINE_MODE", "true")
os.environ.setdefault("METRICS_ENABLED", "false")
os.environ["WORKFLOWS_PLUGINS"] = "vision_events_blocks"
os.environ["VISION_EVENTS_OUTBOX_DIR"] = "off"

from _compare import workloads  # noqa: E402
from _compare.worker import Side  # noqa: E402

FRAMES = {"no_images": 2000, "one_720p": 300, "two_1080p": 120}


def main() -> None:
    enabled = workloads._ours_step
    workloads._ours_step = lambda use_case_id, api_url: {**enabled(use_case_id, api_url), "disable_sink": True}
    side = Side(workloads.OURS, "http://127.0.0.1:9", "unused")
    for images, frames in FRAMES.items():
        engine = side.engine("ceiling", images)
        for _ in range(2):
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(frames):
                engine.run(runtime_parameters=workloads.runtime_inputs(images, side.frames, None))
            seconds = time.perf_counter() - started
            print(f"{images:10s} {frames / seconds:7.0f} frames/s   engine CPU {1000 * (time.process_time() - cpu) / frames:.2f} ms/frame")


if __name__ == "__main__":
    main()
