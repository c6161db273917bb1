"""Orchestrator side: worker processes, the local server's outage tricks, and the scenarios.

Every scenario creates a fresh use case per side, so the server's stored events are counted
per side without any bookkeeping. Timing-sensitive scenarios (hot path, throughput) run one
side at a time; the fault and memory scenarios run both sides at once, so both see the very
same faults, outage window and CPU contention.
"""
from __future__ import annotations

import dataclasses
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np

from . import workloads
from .workloads import OURS

WORKER = Path(__file__).resolve().parent / "worker.py"
WRITE_PATHS = ("/vision-events", "/vision-events/batch", "/vision-events/upload")


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes of one run; ``QUICK`` is the CI smoke form (< 2 minutes), ``FULL`` the real one."""

    name: str
    hot_frames: int
    burst_events: Dict[str, int]
    fault_fps: float
    fault_seconds: float
    outage_stream_seconds: float
    outage_start_s: float
    outage_seconds: float
    memory_seconds: float
    video_frames: int
    drain_timeout_s: float
    buffer_cap_mb: float = 128  # our VISION_EVENTS_MAX_BUFFER_MB, stated explicitly (it is the default)
    wan_latency_ms: int = 50
    fault_images: str = "one_720p"
    memory_images: str = "two_1080p"
    memory_fps: float = 30.0
    memory_ceiling_mb: float = 4096  # a side growing past this stops streaming (shared 24 GB machine)
    hot_fps: float = 30.0
    hot_detections: int = 50
    live_seconds: float = 20.0
    streams_fps: float = 10.0
    streams_seconds: float = 10.0
    rounds: int = 1  # hot path and bursts: each side this many times, order alternating, pooled


QUICK = Profile(
    name="quick", hot_frames=90, burst_events={"no_images": 300, "one_720p": 60, "two_1080p": 30},
    fault_fps=10, fault_seconds=4, outage_stream_seconds=7, outage_start_s=1.5, outage_seconds=3,
    memory_seconds=6, video_frames=90, drain_timeout_s=40, memory_ceiling_mb=2048,
    live_seconds=4, streams_seconds=3,
)
FULL = Profile(
    name="full", hot_frames=600, burst_events={"no_images": 2000, "one_720p": 300, "two_1080p": 120},
    fault_fps=10, fault_seconds=30, outage_stream_seconds=60, outage_start_s=15, outage_seconds=30,
    memory_seconds=60, video_frames=300, drain_timeout_s=150, rounds=3,
)


class WorkerError(RuntimeError):
    pass


class Worker:
    """One side in a subprocess, spoken to with JSON lines (see ``worker.py``)."""

    def __init__(self, side: str, server: Any, log_dir: Path, *, role: str = "main",
                 env: Optional[Dict[str, str]] = None, preload_pipeline: bool = False) -> None:
        self.side = side
        self.role = role
        self.log_path = log_dir / f"worker-{side}-{role}.log"
        full_env = dict(os.environ)
        full_env.pop("WORKFLOWS_PLUGINS", None)
        full_env.update({
            "API_BASE_URL": server.url,  # read by inference at import: the built-in's destination
            "BENCH_API_KEY": server.api_key,
            "DISABLE_VERSION_CHECK": "true", "OFFLINE_MODE": "true", "METRICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        })
        if side == OURS:
            full_env["WORKFLOWS_PLUGINS"] = "vision_events_blocks"
        full_env.update(env or {})
        args = [sys.executable, str(WORKER), "--side", side, "--api-url", server.url]
        if preload_pipeline:
            args.append("--preload-pipeline")
        scratch = log_dir / f"cwd-{side}-{role}"  # inference reads a .env from its working directory
        scratch.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                        env=full_env, cwd=scratch, text=True, bufsize=1)
        self._messages: "queue.Queue[Optional[dict]]" = queue.Queue()
        threading.Thread(target=self._read, name=f"read-{side}-{role}", daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self._messages.put(json.loads(line))
            except json.JSONDecodeError:
                pass
        self._messages.put(None)

    def next_message(self, timeout: float) -> dict:
        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            raise WorkerError(f"{self.side}/{self.role} worker silent for {timeout:.0f}s; log {self.log_path}") from None
        if message is None:
            raise WorkerError(f"{self.side}/{self.role} worker exited ({self.process.wait()}); "
                              f"last log lines:\n{self.log_tail()}")
        return message

    def wait_for(self, kind: str, name: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.next_message(max(0.1, deadline - time.monotonic()))
            if message.get(kind) == name:
                if "error" in message:
                    raise WorkerError(f"{self.side}/{self.role} {name}: {message['error']}\n{self.log_tail()}")
                return message

    def send(self, cmd: str, **params: Any) -> None:
        self.process.stdin.write(json.dumps({"cmd": cmd, **params}) + "\n")
        self.process.stdin.flush()

    def request(self, cmd: str, timeout: float, **params: Any) -> dict:
        self.send(cmd, **params)
        return self.wait_for("reply", cmd, timeout)

    def log_tail(self, lines: int = 25) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def exit(self, timeout: float = 60.0) -> Optional[int]:
        """Ask the worker to return from main (exit hooks run), wait, then make sure it is gone."""
        if self.process.poll() is None:
            try:
                self.send("exit")
                self.process.wait(timeout)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        return self.close()

    def close(self) -> Optional[int]:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()
        return self.process.returncode


def both(workers: Dict[str, Worker], action: Callable[[Worker], Any]) -> Dict[str, Any]:
    """Run ``action`` for every side in parallel threads (workers are separate processes)."""
    results: Dict[str, Any] = {}
    errors: List[BaseException] = []

    def run(side: str, worker: Worker) -> None:
        try:
            results[side] = action(worker)
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    threads = [threading.Thread(target=run, args=item) for item in workers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class Blackhole:
    """Holds the (stopped) server's port with a listener that never accepts.

    Connections complete in the kernel backlog, then nothing answers: the client waits for
    its timeout, which is what a camera sees when the network drops packets (as opposed to a
    refused connection, which fails at once).
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4096)

    def close(self) -> None:
        self.sock.close()


def _image_refs(events: List[Dict[str, Any]]) -> int:
    return sum(_refs(event) for event in events)


def _refs(event: Dict[str, Any]) -> int:
    return sum(bool(image.get(key)) for image in event.get("images") or () for key in ("sourceId", "inputSourceId"))


def stored_counts(server: Any, use_case_id: str, images: str) -> Dict[str, int]:
    """Events stored, and how many carry every image they were sent with (a sender may shed
    images under memory pressure and still deliver the event: that is not a whole delivery)."""
    expected = len(workloads.IMAGE_WORKLOADS[images][2])
    events = {event["eventId"]: event for event in server.events(use_case_id)}.values()
    refs = [_refs(event) for event in events]
    return {"stored": len(refs), "complete": sum(r >= expected for r in refs),
            "images_missing": sum(max(0, expected - r) for r in refs)}


def _incomplete(figures: Dict[str, Any]) -> str:
    n = figures.get("stored_incomplete")
    return f" ({n} more stored without all their images)" if n else ""


def _drops(dropped: Dict[str, int]) -> str:
    return f" (counted drops: {dropped})" if dropped else ""


def _pending(drain_reply: Dict[str, Any]) -> int:
    """Events a side still had in flight when its drain returned (either side's bookkeeping)."""
    if "pending" in drain_reply:
        return int(drain_reply["pending"])
    return sum(int(s.get("pending", 0)) for s in (drain_reply.get("stats") or {}).values())


def percentile_us(samples_ns: Iterable[int], q: float) -> float:
    values = np.asarray(list(samples_ns), dtype=np.float64)
    return float(np.percentile(values, q) / 1000.0) if values.size else float("nan")


class Scenarios:
    """The five measurements. Each method returns a JSON-able dict keyed by side."""

    def __init__(self, server: Any, workers: Dict[str, Worker], profile: Profile, log: Callable[[str], None]) -> None:
        self.server = server
        self.workers = workers
        self.profile = profile
        self.log = log

    def _use_case(self, label: str, side: str) -> str:
        return self.server.create_use_case(f"bench-{label}-{side}-{os.urandom(3).hex()}")

    def _sequential(self) -> Iterable[tuple]:
        return ((side, self.workers[side]) for side in workloads.SIDES if side in self.workers)

    def _rounds(self) -> Iterable[tuple]:
        """(round, side, worker) for ``profile.rounds`` rounds, the side order alternating, so
        neither side always runs on the box as the other left it (this VM's speed drifts)."""
        for number in range(self.profile.rounds):
            order = list(self._sequential())
            yield from ((number, side, worker) for side, worker in (order if number % 2 == 0 else order[::-1]))

    # 1 ------------------------------------------------------------------------------------
    def hot_path(self) -> Dict[str, Any]:
        p = self.profile
        samples: Dict[str, List[int]] = {}
        out: Dict[str, Any] = {}
        for number, side, worker in self._rounds():
            use_case = self._use_case("hot", side)
            reply = worker.request("hot_path", timeout=120 + p.hot_frames / p.hot_fps * 3, use_case_id=use_case,
                                   frames=p.hot_frames, fps=p.hot_fps, detections=p.hot_detections)
            worker.request("drain", timeout=p.drain_timeout_s + 30, timeout_s=p.drain_timeout_s)
            pooled = samples.setdefault(side, [])
            pooled += reply["run_ns"]
            previous = out.get(side, {})
            out[side] = {
                "frames": len(pooled), "p50_us": percentile_us(pooled, 50), "p99_us": percentile_us(pooled, 99),
                "max_us": max(pooled) / 1000.0 if pooled else float("nan"),
                "mean_us": float(np.mean(pooled) / 1000.0) if pooled else float("nan"),
                "outcomes": {k: previous.get("outcomes", {}).get(k, 0) + n for k, n in reply["outcomes"].items()},
                "p50_us_by_round": previous.get("p50_us_by_round", []) + [percentile_us(reply["run_ns"], 50)],
            }
            self.log(f"  hot path {side} (round {number + 1}): p50 {percentile_us(reply['run_ns'], 50):.0f} us, "
                     f"p99 {percentile_us(reply['run_ns'], 99):.0f} us")
        return out

    # 2 + 5 --------------------------------------------------------------------------------
    def throughput(self, latency_ms: int = 0) -> Dict[str, Any]:
        """Bursts per image workload, one side at a time; ``latency_ms`` is added by the server
        to every API request (a WAN round trip) while the burst is delivered."""
        p = self.profile
        out: Dict[str, Any] = {}
        for images, events in p.burst_events.items():
            runs: Dict[str, List[Dict[str, Any]]] = {}
            for _, side, worker in self._rounds():
                use_case = self._use_case(f"burst-{images}", side)
                self.server.clear_request_log()
                if latency_ms:
                    self.server.set_faults(latency_ms=latency_ms)
                try:
                    reply = worker.request("burst", timeout=p.drain_timeout_s + 120, use_case_id=use_case,
                                           images=images, events=events, drain_timeout=p.drain_timeout_s)
                finally:
                    if latency_ms:
                        self.server.set_faults()
                r = self._burst_figures(reply, use_case, events, images)
                runs.setdefault(side, []).append(r)
                self.log(f"  throughput {images} {side} (+{latency_ms} ms): {r['stored']}/{events} stored complete"
                         f"{_incomplete(r)}, "
                         f"{r['events_per_s']:.1f} ev/s, {r['requests_per_event']:.2f} req/ev, "
                         f"{r['connections_per_event']:.2f} conn/ev{_drops(r['dropped'])}")
            out[images] = {side: _median_run(side_runs) for side, side_runs in runs.items()}
        return out

    def _burst_figures(self, reply: Dict[str, Any], use_case: str, submitted: int, images: str) -> Dict[str, Any]:
        """Delivered rate from the server's own clock: first submit -> last successful event write.
        Only events stored with all their images count as delivered."""
        requests = [r for r in self.server.request_log() if r["method"] == "POST" and r["path"] in WRITE_PATHS]
        events = self.server.events(use_case)
        counts = stored_counts(self.server, use_case, images)
        stored = counts["complete"]
        ok_writes = [r["time"] for r in requests if r["path"] != "/vision-events/upload" and 200 <= r["status"] < 300]
        t_last_stored = max(ok_writes) if ok_writes else reply["t_drained"]
        seconds = max(1e-6, t_last_stored - reply["t_first"])
        connections = len({r["connectionId"] for r in requests})
        return {
            "submitted": submitted, "accepted": reply["outcomes"]["accepted"], "stored": stored,
            "stored_incomplete": counts["stored"] - stored, "images_missing": counts["images_missing"],
            "seconds": seconds, "events_per_s": stored / seconds,
            "submit_seconds": reply["t_last_submit"] - reply["t_first"],
            "sink_run_us_mean": reply["sink_run_us_mean"],
            "requests": len(requests), "connections": connections,
            "requests_per_event": len(requests) / stored if stored else float("nan"),
            "connections_per_event": connections / stored if stored else float("nan"),
            "drained": reply["drained"], "dropped": reply.get("dropped", {}),
            "requests_by_path": dict(Counter(r["path"] for r in requests)),
            # both sides must deliver the same content: image references per stored event
            "image_refs_per_event": _image_refs(events) / counts["stored"] if counts["stored"] else float("nan"),
        }

    # 3 ------------------------------------------------------------------------------------
    def _stream_and_count(self, label: str, images: str, fps: float, seconds: float,
                          during: Optional[Callable[[], None]] = None,
                          faults: Optional[Dict[str, float]] = None) -> Dict[str, Any]:
        """Both sides stream at once; ``during`` runs once both are streaming; then drain and count.

        ``faults`` stay on from the first frame until both sides have drained (so retries face
        them too) and are off while use cases are created and events counted.
        """
        p = self.profile
        use_cases = {side: self._use_case(label, side) for side in self.workers}
        if faults:
            self.server.set_faults(**faults)
        for side, worker in self.workers.items():
            worker.send("stream", use_case_id=use_cases[side], images=images, fps=fps, seconds=seconds)
        for worker in self.workers.values():
            worker.wait_for("event", "streaming", timeout=60)
        if during is not None:
            during()
        replies = both(self.workers, lambda w: w.wait_for("reply", "stream", timeout=seconds * 4 + 60))
        drain = lambda w: w.request("drain", timeout=p.drain_timeout_s + 30, timeout_s=p.drain_timeout_s)  # noqa: E731
        try:
            drains = both(self.workers, drain)
        finally:
            if faults:
                self.server.set_faults()
        # Retries back off up to a minute: what is still pending when the faults are lifted is
        # late, not lost; the count below is what never arrives.
        pending_when_lifted = {side: _pending(d) for side, d in drains.items()}
        if faults and any(pending_when_lifted.values()):
            drains = both(self.workers, drain)
        out: Dict[str, Any] = {}
        for side, reply in replies.items():
            counts = stored_counts(self.server, use_cases[side], images)
            stored = counts["stored"]
            accepted = reply["outcomes"]["accepted"]
            out[side] = {
                "use_case_id": use_cases[side],
                "frames": reply["frames"], "accepted": accepted, "stored": stored,
                "stored_incomplete": stored - counts["complete"], "images_missing": counts["images_missing"],
                "lost": max(0, accepted - stored), "loss_pct": 100.0 * max(0, accepted - stored) / accepted if accepted else 0.0,
                "late_frames": reply["late_frames"], "memory": reply["memory"],
                "drained": drains[side]["drained"], "stats": drains[side].get("stats"),
                "pending_when_faults_lifted": pending_when_lifted[side] if faults else None,
                "dropped": drains[side].get("dropped_since_stream", {}),
            }
            self.log(f"  {label} {side}: {stored}/{accepted} stored, lost {out[side]['lost']}{_incomplete(out[side])}"
                     f"{_drops(out[side]['dropped'])}")
        return out

    def faults_5xx(self) -> Dict[str, Any]:
        p = self.profile
        try:
            return self._stream_and_count("5xx", p.fault_images, p.fault_fps, p.fault_seconds,
                                          faults={"fail_rate": 0.3})
        finally:
            self.server.set_faults()

    def outage(self) -> Dict[str, Any]:
        p = self.profile

        def outage_window() -> None:
            time.sleep(p.outage_start_s)
            self.log(f"  server down for {p.outage_seconds:.0f}s (connection refused)")
            self.server.stop()
            time.sleep(p.outage_seconds)
            self.server.start()

        return self._stream_and_count("outage", p.fault_images, p.fault_fps, p.outage_stream_seconds, outage_window)

    def memory(self, mode: str) -> Dict[str, Any]:
        """Server unreachable for the whole stream; ``mode`` is "refused" or "blackhole"."""
        p = self.profile
        use_cases = {side: self._use_case(f"memory-{mode}", side) for side in self.workers}
        self.server.stop()
        hole = Blackhole(self.server.port) if mode == "blackhole" else None
        try:
            for side, worker in self.workers.items():
                worker.send("stream", use_case_id=use_cases[side], images=p.memory_images,
                            fps=p.memory_fps, seconds=p.memory_seconds, rss_ceiling_mb=p.memory_ceiling_mb)
            replies = both(self.workers, lambda w: w.wait_for("reply", "stream", timeout=p.memory_seconds * 6 + 60))
        finally:
            if hole is not None:
                hole.close()
            self.server.start()
        out: Dict[str, Any] = {}
        for side, reply in replies.items():
            memory = reply["memory"]
            out[side] = {
                "mode": mode, "frames": reply["frames"], "accepted": reply["outcomes"]["accepted"],
                "streamed_seconds": reply["streamed_seconds"], "stopped_at_ceiling": reply["stopped_at_ceiling"],
                "late_frames": reply["late_frames"], "baseline_mb": memory["baseline_mb"],
                "peak_mb": memory["peak_mb"], "growth_mb": memory["peak_mb"] - memory["baseline_mb"],
                "series": memory["series"], "stats": reply.get("stats"), "pool_pending": reply.get("pool_pending"),
            }
            ceiling = f" (stopped at the {p.memory_ceiling_mb:.0f} MB safety ceiling)" if reply["stopped_at_ceiling"] else ""
            self.log(f"  memory ({mode}) {side}: +{out[side]['growth_mb']:.0f} MB over {memory['baseline_mb']:.0f} MB "
                     f"after {reply['streamed_seconds']:.0f}s{ceiling}")
        return out

    # 3c -----------------------------------------------------------------------------------
    def pipeline_end(self, end_workers: Dict[str, Worker], video: Path) -> Dict[str, Any]:
        """Each side's fresh worker runs an InferencePipeline over the video, then exits."""
        p = self.profile
        use_cases = {side: self._use_case("pipeline-end", side) for side in end_workers}

        def run(worker: Worker) -> Dict[str, Any]:
            reply = worker.request("pipeline_end", timeout=300, use_case_id=use_cases[worker.side],
                                   video=str(video), images="one_720p")
            started = time.time()
            reply["exit_code"] = worker.exit(timeout=p.drain_timeout_s + 30)
            reply["exit_seconds"] = time.time() - started
            return reply

        replies = both(end_workers, run)
        out: Dict[str, Any] = {}
        for side, reply in replies.items():
            counts = stored_counts(self.server, use_cases[side], "one_720p")
            stored = counts["stored"]
            accepted = reply["outcomes"]["accepted"]
            out[side] = {
                "frames": p.video_frames, "accepted": accepted, "stored": stored, "lost": max(0, accepted - stored),
                "stored_incomplete": stored - counts["complete"], "images_missing": counts["images_missing"],
                "loss_pct": 100.0 * max(0, accepted - stored) / accepted if accepted else 0.0,
                "pipeline_seconds": reply["pipeline_seconds"], "exit_seconds": reply["exit_seconds"],
                "stats_at_pipeline_end": reply.get("stats"), "dropped_before_exit": reply.get("dropped", {}),
                "exit_code": reply["exit_code"],
            }
            self.log(f"  pipeline end {side}: {stored}/{accepted} stored, lost {out[side]['lost']}{_incomplete(out[side])}"
                     f"{_drops(out[side]['dropped_before_exit'])}")
        return out


def make_video(path: Path, frames: int, width: int = 1280, height: int = 720, fps: int = 30) -> Path:
    """A short clip with a textured object moving across a camera-like background."""
    import cv2

    background = workloads.synthetic_frame(height, width, seed=1)
    patch = workloads.synthetic_frame(120, 160, seed=2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    try:
        for i in range(frames):
            frame = background.copy()
            x = int((width - 160) * (i / max(1, frames - 1)))
            frame[300:420, x:x + 160] = patch
            writer.write(frame)
    finally:
        writer.release()
    if not path.exists() or path.stat().st_size == 0:
        raise RuntimeError(f"could not write the test video {path}")
    return path


def _median_run(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The run with the median delivered rate, with every run's rate beside it."""
    ranked = sorted(runs, key=lambda r: r["events_per_s"])
    return {**ranked[(len(ranked) - 1) // 2], "events_per_s_by_round": [r["events_per_s"] for r in runs]}
