"""Two more measurements: a real-time live stream, and how cost grows with concurrent streams.

* ``live_stream``: a camera at 30 fps with 2 x 1080p per event, both sides at once, as long as
  the profile says; per side: events delivered with all images, degraded (ours: smaller images,
  ``customMetadata.ve_images_degraded``), and without images (shed, or never uploaded).
* ``streams``: 1, 4 and 16 cameras in one process (an edge box with several cameras), one side
  at a time; per count: sink-step p99, delivered events/s and peak RSS growth.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict

from . import workloads
from .runner import percentile_us, stored_counts

DEGRADED_MARK = "ve_images_degraded"


def live_stream(scenarios: Any) -> Dict[str, Any]:
    p = scenarios.profile
    out = scenarios._stream_and_count("live", "two_1080p", 30.0, p.live_seconds)
    for side, figures in out.items():
        events = scenarios.server.events(figures.pop("use_case_id"))
        degraded = sum(1 for e in events if DEGRADED_MARK in (e.get("customMetadata") or {}))
        complete = figures["stored"] - figures["stored_incomplete"]
        figures.update(with_all_images=complete - degraded if side == workloads.OURS else complete,
                       degraded=degraded, without_images=figures["stored_incomplete"])
        scenarios.log(f"  live {side}: {figures['with_all_images']} with all images, {degraded} degraded, "
                      f"{figures['without_images']} without images, lost {figures['lost']}")
    return out


def streams(scenarios: Any, counts=(1, 4, 16)) -> Dict[str, Any]:
    p = scenarios.profile
    out: Dict[str, Any] = {}
    for n in counts:
        out[str(n)] = {}
        for side, worker in scenarios._sequential():
            use_case = scenarios._use_case(f"streams{n}", side)
            reply = worker.request("multi_stream", timeout=p.streams_seconds * 6 + p.drain_timeout_s + 120,
                                   use_case_id=use_case, streams=n, fps=p.streams_fps, seconds=p.streams_seconds,
                                   images="one_720p", drain_timeout=p.drain_timeout_s)
            counts_ = stored_counts(scenarios.server, use_case, "one_720p")
            seconds = max(1e-6, reply["t_drained"] - reply["t_first"])
            out[str(n)][side] = {
                "submitted": reply["submitted"], "stored": counts_["complete"],
                "stored_incomplete": counts_["stored"] - counts_["complete"],
                "events_per_s": counts_["complete"] / seconds,
                "p99_us": percentile_us(reply["run_ns"], 99), "p50_us": percentile_us(reply["run_ns"], 50),
                "peak_rss_growth_mb": reply["memory"]["peak_mb"] - reply["memory"]["baseline_mb"],
            }
            r = out[str(n)][side]
            scenarios.log(f"  {n} streams {side}: p99 {r['p99_us']:.0f} us, {r['events_per_s']:.1f} ev/s delivered, "
                          f"{r['stored']}/{r['submitted']} complete, RSS +{r['peak_rss_growth_mb']:.0f} MB")
    return out


def cmd_multi_stream(side: Any, use_case_id: str, streams: int, fps: float, seconds: float, images: str,
                     drain_timeout: float, memory_sampler: Callable[[], Any]) -> Dict[str, Any]:
    """``streams`` cameras, each on its own thread with its own engine, ``fps`` each, live."""
    import threading
    import time

    engines = [side.engine(use_case_id, images) for _ in range(streams)]
    for engine in engines:  # warm-up, not timed: the first frame builds the sender (TLS context, outbox)
        engine.run(runtime_parameters=workloads.runtime_inputs(images, side.frames, None, live_frame=0))
    side.run_times_ns.clear()
    submitted = [1] * streams

    def camera(index: int) -> None:
        period, frames = 1.0 / fps, int(round(fps * seconds))
        next_frame = time.monotonic()
        for number in range(1, frames):
            inputs = workloads.runtime_inputs(images, side.frames, None, live_frame=number)
            for image in inputs.values():
                if isinstance(image, dict):
                    image["video_metadata"]["video_identifier"] = f"camera-{index}"
            engines[index].run(runtime_parameters=inputs)
            submitted[index] += 1
            next_frame += period
            time.sleep(max(0.0, next_frame - time.monotonic()))

    with memory_sampler() as memory:
        t_first = time.time()
        threads = [threading.Thread(target=camera, args=(i,)) for i in range(streams)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        drain = side.drain(drain_timeout)
    return {"submitted": sum(submitted), "run_ns": list(side.run_times_ns), "t_first": t_first,
            "t_drained": drain["t_drained"] or time.time(), "memory": memory.summary(), "pid": os.getpid()}
