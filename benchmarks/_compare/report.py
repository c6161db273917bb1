"""Turn the scenario results into the ratio table (Markdown), the chart (PNG) and JSON."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

from .workloads import BUILTIN, OURS

IMAGE_LABELS = {"no_images": "no images", "one_720p": "one 720p image", "two_1080p": "two 1080p images"}
THROUGHPUT_SECTIONS = (("throughput", "localhost"), ("throughput_wan", "+50 ms per request"))
EVENTS_PER_S_TARGET = {"no_images": 10.0, "one_720p": 2.5, "two_1080p": 2.0}  # localhost (issue 18's targets)
EVENTS_PER_S_TARGET_WAN = {"no_images": 20.0, "one_720p": 4.0, "two_1080p": 3.0}  # +50 ms per request


def _get(results: Dict[str, Any], *path: str) -> Optional[float]:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return None
    return value


def _fmt(value: Optional[float], digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _ratio(ours: Optional[float], builtin: Optional[float]) -> Optional[float]:
    if ours is None or builtin is None or builtin == 0 or math.isnan(ours) or math.isnan(builtin):
        return None
    return ours / builtin


def table_rows(results: Dict[str, Any], cap_mb: float) -> List[Dict[str, Any]]:
    """One row per measure: built-in, ours, ours ÷ built-in, the target and whether it is met."""
    rows: List[Dict[str, Any]] = []

    def add(measure: str, path: tuple, digits: int, target: str, met: Any, unit: str = "") -> None:
        builtin, ours = _get(results, *path[:-1], BUILTIN, path[-1]), _get(results, *path[:-1], OURS, path[-1])
        ratio = _ratio(ours, builtin)
        verdict = None if ours is None else met(ours, builtin, ratio)
        section = results.get(path[0]) or {}
        capped = {side: bool((section.get(side) or {}).get("stopped_at_ceiling")) for side in (BUILTIN, OURS)}
        rows.append({"measure": measure, "unit": unit, "builtin": builtin, "ours": ours, "ratio": ratio,
                     "target": target, "met": verdict, "digits": digits, "at_ceiling": capped})

    add("Hot path p50 per frame", ("hot_path", "p50_us"), 0, "≤ 1× built-in",
        lambda o, b, r: r is not None and r <= 1.0, "µs")
    add("Hot path p99 per frame", ("hot_path", "p99_us"), 0, "≤ 0.5× built-in",
        lambda o, b, r: r is not None and r <= 0.5, "µs")
    for section, where in THROUGHPUT_SECTIONS:
        if section not in results:
            continue
        targets = EVENTS_PER_S_TARGET_WAN if section == "throughput_wan" else EVENTS_PER_S_TARGET
        for images, factor in targets.items():
            add(f"Delivered events/s (with all images), {IMAGE_LABELS[images]}, {where}", (section, images, "events_per_s"), 1,
                f"≥ {factor:g}× built-in", lambda o, b, r, f=factor: r is not None and r >= f, "ev/s")
    zero = lambda o, b, r: o == 0  # noqa: E731
    for n in ("1", "4", "16"):
        if n in (results.get("streams") or {}):
            add(f"{n} stream(s) in one process: sink p99", ("streams", n, "p99_us"), 0, "≤ built-in",
                lambda o, b, r: r is not None and r <= 1.0, "µs")
            add(f"{n} stream(s) in one process: delivered events/s", ("streams", n, "events_per_s"), 1,
                "≥ 0.95× built-in (the cameras' rate caps both)", lambda o, b, r: r is not None and r >= 0.95, "ev/s")
            add(f"{n} stream(s) in one process: peak RSS growth", ("streams", n, "peak_rss_growth_mb"), 0,
                f"≤ cap ({cap_mb:g} MB)", lambda o, b, r: o <= cap_mb, "MB")
    if "live_stream" in results:
        add("Live stream 2×1080p at 30 fps: events with all images", ("live_stream", "with_all_images"), 0, "-",
            lambda o, b, r: None, "events")
        add("Live stream 2×1080p at 30 fps: events with smaller images", ("live_stream", "degraded"), 0, "-",
            lambda o, b, r: None, "events")
        add("Live stream 2×1080p at 30 fps: events without images", ("live_stream", "without_images"), 0, "-",
            lambda o, b, r: None, "events")
        add("Live stream 2×1080p at 30 fps: lost events", ("live_stream", "lost"), 0, "0", zero, "events")
    add("Lost events, 30% 5xx", ("faults_5xx", "lost"), 0, "0", zero, "events")
    add("Lost events, server outage", ("outage", "lost"), 0, "0", zero, "events")
    add("Lost events, pipeline end", ("pipeline_end", "lost"), 0, "0", zero, "events")
    for section, label in (("faults_5xx", "30% 5xx"), ("outage", "server outage"), ("pipeline_end", "pipeline end")):
        add(f"Events stored without all their images, {label}", (section, "stored_incomplete"), 0, "0", zero, "events")
    for mode in ("refused", "blackhole"):
        key = f"memory_{mode}"
        if key in results:
            label = "refused connections" if mode == "refused" else "unreachable (no answer)"
            add(f"Peak RSS growth, server {label}", (key, "growth_mb"), 0, f"≤ cap ({cap_mb:g} MB)",
                lambda o, b, r: o <= cap_mb, "MB")
    for images in EVENTS_PER_S_TARGET:
        add(f"Requests per stored event, {IMAGE_LABELS[images]}", ("throughput", images, "requests_per_event"), 2,
            "fewer", lambda o, b, r: b is None or o <= b)
        add(f"Connections per stored event, {IMAGE_LABELS[images]}", ("throughput", images, "connections_per_event"), 3,
            "fewer", lambda o, b, r: b is None or o <= b)
    return rows


def markdown_table(rows: List[Dict[str, Any]]) -> str:
    lines = ["| Measure | Built-in | Ours | Ours ÷ built-in | Target | Met |", "|---|---:|---:|---:|---|:-:|"]
    for row in rows:
        unit = f" ({row['unit']})" if row["unit"] else ""
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.3g}×"
        cells = {side: ("≥ " if row.get("at_ceiling", {}).get(side) else "") + _fmt(row[side], row["digits"])
                 for side in (BUILTIN, OURS)}
        lines.append(f"| {row['measure']}{unit} | {cells[BUILTIN]} | {cells[OURS]} | {ratio} | {row['target']} | {met} |")
    if any(any(row.get("at_ceiling", {}).values()) for row in rows):
        lines.append("")
        lines.append("≥: still growing when the stream was stopped at the safety ceiling.")
    return "\n".join(lines)


def write_json(path: Path, payload: Dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=True))


def write_chart(path: Path, results: Dict[str, Any], cap_mb: float, title: str) -> None:
    """Six panels: hot path, delivered events/s, loss, memory over time, requests and connections per event."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {BUILTIN: "#9e9e9e", OURS: "#6a1b9a"}
    names = {BUILTIN: "built-in roboflow_vision_events@v1", OURS: "vision_events/sink@v1 (ours)"}
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    fig.suptitle(title)

    def grouped(ax: Any, groups: List[str], values: Dict[str, List[Optional[float]]], ylabel: str,
                log: bool = False, digits: int = 0) -> None:
        width = 0.38
        for i, side in enumerate((BUILTIN, OURS)):
            xs = [g + (i - 0.5) * width for g in range(len(groups))]
            heights = [v if v is not None and not math.isnan(v) else 0 for v in values[side]]
            bars = ax.bar(xs, heights, width, color=colours[side], label=names[side])
            for bar, h in zip(bars, values[side]):
                ax.annotate(_fmt(h, digits), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")

    hot = {side: [_get(results, "hot_path", side, k) for k in ("p50_us", "p99_us")] for side in (BUILTIN, OURS)}
    grouped(axes[0, 0], ["p50", "p99"], hot, "sink step time per frame (µs)", log=True)
    axes[0, 0].set_title("Hot path (1080p in + out, 50 detections)")
    axes[0, 0].legend(fontsize=8)

    workloads = list(IMAGE_LABELS)
    short = {"no_images": "no img", "one_720p": "1×720p", "two_1080p": "2×1080p"}
    groups = [(section, w) for section, _ in THROUGHPUT_SECTIONS if section in results for w in workloads]
    rate = {side: [_get(results, section, w, side, "events_per_s") for section, w in groups] for side in (BUILTIN, OURS)}
    labels = [short[w] + ("\n+50 ms" if section == "throughput_wan" else "\nlocal") for section, w in groups]
    grouped(axes[0, 1], labels, rate, "delivered events / s", log=True, digits=0)
    axes[0, 1].set_title("Delivered events per second")

    cases = [("faults_5xx", "30% 5xx"), ("outage", "outage"), ("pipeline_end", "pipeline end")]
    loss = {side: [_get(results, c, side, "loss_pct") for c, _ in cases] for side in (BUILTIN, OURS)}
    grouped(axes[0, 2], [label for _, label in cases], loss, "events lost (% of accepted)", digits=1)
    axes[0, 2].set_title("Loss under faults")

    ax = axes[1, 0]
    for mode, style in (("blackhole", "-"), ("refused", ":")):
        section = results.get(f"memory_{mode}") or {}
        for side in (BUILTIN, OURS):
            data = (section.get(side) or {}).get("series")
            if data:
                base = section[side]["baseline_mb"]
                ax.plot([t for t, _ in data], [mb - base for _, mb in data], style, color=colours[side],
                        label=f"{side} ({mode})")
    ax.axhline(cap_mb, color="#c62828", linestyle="--", linewidth=1, label=f"our buffer cap {cap_mb:g} MB")
    ax.set_xlabel("seconds with the server down")
    ax.set_ylabel("RSS growth (MB)")
    ax.set_title("Memory, 30 fps 1080p, server down")
    ax.legend(fontsize=8)

    for ax, field, label in ((axes[1, 1], "requests_per_event", "HTTP requests per stored event"),
                             (axes[1, 2], "connections_per_event", "TCP connections per stored event")):
        values = {side: [_get(results, "throughput", w, side, field) for w in workloads] for side in (BUILTIN, OURS)}
        grouped(ax, [IMAGE_LABELS[w] for w in workloads], values, label, digits=2)
        ax.set_title(label)

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
