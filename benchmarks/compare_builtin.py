"""Side by side: our ``vision_events/sink@v1`` against inference's built-in
``roboflow_core/roboflow_vision_events@v1``, same workload, one run, one local server.

    scripts/py benchmarks/compare_builtin.py [--quick] [--out benchmarks/results]

Measures (details in ``benchmarks/_compare/``):
  1. hot-path cost of the sink step per frame (p50/p99), 1080p input + output images and 50
     detections, fire-and-forget, at 30 fps;
  2. delivered events/s (stored on the server, first submit -> last stored write) with no
     images, one 720p image, two 1080p images, cooldown 0 on both sides;
  3. loss under 30% injected 5xx, under a server outage (stopped, then started again) and
     at the end of a real InferencePipeline run over a video file;
  4. peak RSS growth while the server is down and a 30 fps 1080p stream keeps producing
     events (ours bounded by ``VISION_EVENTS_MAX_BUFFER_MB``);
  5. HTTP requests and TCP connections per event (the server's request log).

Each side runs in its own worker process (no shared memory or threads) through the real
Execution Engine with the host's 4-worker sink pool, the way InferencePipeline runs blocks.
Workers inherit the environment, so our sender's settings can be varied from the command
line, e.g. ``VISION_EVENTS_OVERFLOW_POLICY=block ... --sides ours --scenarios throughput``.
``--from-json`` re-renders the table and chart of a saved run without measuring.
Prints a Markdown table of ratios (ours vs built-in) and writes ``compare_builtin[-quick].json``
and ``.png`` into ``--out``. Exit code 0 even when a target is missed (the table says so);
1 when a scenario could not run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _compare import report, scaling  # noqa: E402
from _compare.runner import FULL, QUICK, Scenarios, Worker, WorkerError, make_video  # noqa: E402
from _compare.workloads import OURS, SIDES  # noqa: E402

SCENARIOS = ("hot_path", "throughput", "throughput_wan", "streams", "live_stream", "faults_5xx", "outage", "memory",
             "pipeline_end")
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Compare our Vision Events sink with inference's built-in block.")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke check, < 2 minutes)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the JSON and PNG results")
    parser.add_argument("--sides", default=",".join(SIDES), help="comma-separated: builtin,ours")
    parser.add_argument("--scenarios", default=None,
                        help=f"comma-separated subset of {SCENARIOS} (default: all; --quick skips throughput_wan)")
    parser.add_argument("--memory-modes", default=None,
                        help="server-down flavours for the memory scenario: refused, blackhole "
                             "(default: blackhole with --quick, both otherwise)")
    parser.add_argument("--tag", default="", help="suffix of the output file names (e.g. a configuration variant)")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="do not measure: re-render the table and chart from a saved results JSON")
    args = parser.parse_args(argv)
    args.sides = [s for s in args.sides.split(",") if s]
    default_scenarios = [s for s in SCENARIOS if not (args.quick and s == "throughput_wan")]
    args.scenarios = [s for s in args.scenarios.split(",") if s] if args.scenarios else default_scenarios
    default_modes = "blackhole" if args.quick else "refused,blackhole"
    args.memory_modes = [m for m in (args.memory_modes or default_modes).split(",") if m]
    for value, allowed, what in ((args.sides, SIDES, "side"), (args.scenarios, SCENARIOS, "scenario"),
                                 (args.memory_modes, ("refused", "blackhole"), "memory mode")):
        unknown = set(value) - set(allowed)
        if unknown:
            parser.error(f"unknown {what}(s) {sorted(unknown)}; choose from {list(allowed)}")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from vision_events_blocks.server.testing import LocalServer

    profile = QUICK if args.quick else FULL
    cap = os.environ.get("VISION_EVENTS_MAX_BUFFER_MB")  # the user's cap wins over the profile's
    if cap:
        profile = dataclasses.replace(profile, buffer_cap_mb=float(cap))
    scratch = Path(tempfile.mkdtemp(prefix="ve-compare-"))
    results: Dict[str, Any] = {}
    errors: Dict[str, str] = {}
    workers: Dict[str, Worker] = {}
    end_workers: Dict[str, Worker] = {}
    started = time.monotonic()
    load_before = os.getloadavg()
    try:
        with LocalServer(data_dir=scratch / "server", faults=True) as server:
            log(f"local server at {server.url}; profile {profile.name}; sides {args.sides}")
            ours_env = {"VISION_EVENTS_MAX_BUFFER_MB": str(profile.buffer_cap_mb)}

            def start_workers(role: str, **kwargs: Any) -> Dict[str, Worker]:
                # each run's durable outbox (the default location) starts empty: no earlier backlog to drain
                env = {**ours_env, "MODEL_CACHE_DIR": str(scratch / f"model-cache-{role}")}
                return {side: Worker(side, server, scratch, role=role, env=env if side == OURS else None, **kwargs)
                        for side in args.sides}

            def attempt(name: str, measure: Any) -> None:
                log(f"{name} ...")
                try:
                    results[name] = measure()
                except (WorkerError, OSError, RuntimeError, KeyError, ValueError) as error:
                    errors[name] = f"{type(error).__name__}: {error}"
                    log(f"{name} FAILED: {errors[name]}")
                    if not server.running:
                        server.start()

            workers.update(start_workers("main"))
            for worker in workers.values():
                worker.wait_for("event", "ready", timeout=600)
            log(f"workers ready after {time.monotonic() - started:.0f}s")
            scenarios = Scenarios(server, workers, profile, log)
            timed = {"hot_path": scenarios.hot_path, "throughput": scenarios.throughput,
                     "throughput_wan": lambda: scenarios.throughput(latency_ms=profile.wan_latency_ms),
                     "streams": lambda: scaling.streams(scenarios)}
            for name, measure in timed.items():  # one side at a time, nothing else running
                if name in args.scenarios:
                    attempt(name, measure)
            if "pipeline_end" in args.scenarios:  # fresh processes; their imports overlap the fault runs
                video = make_video(scratch / "clip.mp4", profile.video_frames)
                end_workers.update(start_workers("pipeline-end", preload_pipeline=True))
            if "live_stream" in args.scenarios:
                attempt("live_stream", lambda: scaling.live_stream(scenarios))
            for name in ("faults_5xx", "outage"):
                if name in args.scenarios:
                    attempt(name, getattr(scenarios, name))
            if "memory" in args.scenarios:
                for mode in args.memory_modes:
                    attempt(f"memory_{mode}", lambda mode=mode: scenarios.memory(mode))
            for worker in workers.values():  # done: their leftover background work must not skew the next part
                worker.close()
            if end_workers:
                for worker in end_workers.values():
                    worker.wait_for("event", "ready", timeout=600)
                attempt("pipeline_end", lambda: scenarios.pipeline_end(end_workers, video))
    finally:
        for worker in [*workers.values(), *end_workers.values()]:
            worker.close()
        if not errors:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"worker logs kept in {scratch}")
    return {
        "profile": profile.__dict__, "sides": args.sides,
        "environment_overrides": {k: v for k, v in os.environ.items() if k.startswith("VISION_EVENTS_")}, "results": results, "errors": errors,
        "seconds": time.monotonic() - started,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    # the CPU is shared: a high load average explains noisy timings
                    "loadavg_1m_before": load_before[0], "loadavg_1m_after": os.getloadavg()[0]},
    }


def main(argv: List[str] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.from_json:
        payload = json.loads(args.from_json.read_text())
        args.quick = payload["profile"]["name"] == "quick"
    else:
        payload = run(args)
    cap_mb = payload["profile"]["buffer_cap_mb"]
    rows = report.table_rows(payload["results"], cap_mb)
    payload["table"] = rows
    table = report.markdown_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "-".join(part for part in ("compare_builtin", "quick" if args.quick else "", args.tag) if part)
    report.write_json(args.out / f"{stem}.json", payload)
    title = (f"vision_events/sink@v1 vs roboflow_core/roboflow_vision_events@v1 "
             f"({payload['profile']['name']} run, {payload['machine']['cpus']} CPUs)")
    report.write_chart(args.out / f"{stem}.png", payload["results"], cap_mb, title)
    print()
    print(table)
    print()
    log(f"wrote {args.out / (stem + '.json')} and {args.out / (stem + '.png')} in {payload['seconds']:.0f}s")
    for name, error in payload["errors"].items():
        log(f"scenario {name} did not run: {error}")
    return 1 if payload["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
