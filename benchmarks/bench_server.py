"""Benchmark the local Vision Events server: batch ingest rate and query latency.

    scripts/py benchmarks/bench_server.py            # 100k events
    scripts/py benchmarks/bench_server.py --events 20000 --repeats 20

Starts a real server (subprocess, temporary data dir), posts ``--events`` events in batches
of 100 from ``--senders`` threads, then times each query shape ``--repeats`` times (client-side,
over HTTP, keep-alive). Prints a table and writes ``benchmarks/results/server.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vision_events_blocks.server.testing import LocalServer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "server.json"
CLASSES = [f"class-{i}" for i in range(20)]
DEVICES = [f"cam-{i}" for i in range(10)]
LINES = ["A", "B", "C", "D", "E"]


def make_events(use_case: str, count: int, seed: int = 7) -> List[Dict[str, Any]]:
    """Events spread over the last 10 days with varied types, devices, classes and metadata."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    events = []
    for i in range(count):
        kind = rng.choice(["quality_check", "quality_check", "inventory_count", "safety_alert"])
        data = {
            "quality_check": lambda: {"result": rng.choice(["pass", "pass", "pass", "fail"]), "externalId": f"ext-{i % 1000}"},
            "inventory_count": lambda: {"itemCount": rng.randint(0, 100), "location": rng.choice(["dock", "aisle"])},
            "safety_alert": lambda: {"alertType": "no_hardhat", "severity": rng.choice(["low", "medium", "high"])},
        }[kind]()
        # class-19 is rare (~1%), the others common
        classes = [rng.choice(CLASSES[:19]) for _ in range(rng.randint(0, 3))] + (["class-19"] if rng.random() < 0.01 else [])
        events.append({
            "eventId": f"bench-{i:07d}",
            "eventType": kind,
            "useCaseId": use_case,
            "timestamp": (now - timedelta(seconds=rng.uniform(0, 10 * 86400))).isoformat(),
            "deviceId": rng.choice(DEVICES),
            "eventData": data,
            "images": [{"sourceId": f"ve-img-{i:024x}", "objectDetections": [
                {"class": c, "x": 10, "y": 10, "width": 5, "height": 5, "confidence": 0.9} for c in classes]}],
            "customMetadata": {"line": rng.choice(LINES), "temperature": round(rng.uniform(50, 90), 1), "shift": i % 3},
        })
    return events


def ingest(server: LocalServer, events: List[Dict[str, Any]], senders: int) -> Dict[str, float]:
    bodies = [json.dumps({"events": events[i:i + 100]}).encode() for i in range(0, len(events), 100)]
    chunks = [bodies[n::senders] for n in range(senders)]
    failures: List[str] = []

    def send(chunk: List[bytes]) -> None:
        with httpx.Client(base_url=server.url, timeout=120, headers={
                "Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}) as http:
            for body in chunk:
                response = http.post("/vision-events/batch", content=body)
                if response.status_code != 201:
                    failures.append(response.text[:200])

    started = time.perf_counter()
    threads = [threading.Thread(target=send, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} batches failed, e.g. {failures[0]}")
    return {"events": len(events), "batches": len(bodies), "senders": senders, "seconds": round(elapsed, 2),
            "events_per_s": round(len(events) / elapsed), "batches_per_s": round(len(bodies) / elapsed, 1)}


def query_shapes(use_case: str) -> Dict[str, Dict[str, Any]]:
    now = datetime.now(timezone.utc)
    base = {"useCaseId": use_case}
    return {
        "newest page (limit 100)": {**base},
        "limit 1000": {**base, "limit": 1000},
        "time range (1 day)": {**base, "startTime": (now - timedelta(days=3)).isoformat(), "endTime": (now - timedelta(days=2)).isoformat()},
        "eventTypes": {**base, "eventTypes": ["safety_alert"]},
        "deviceId eq": {**base, "deviceId": {"operator": "eq", "value": "cam-3"}},
        "detectionClass eq (common)": {**base, "detectionClass": {"operator": "eq", "value": "class-3"}},
        "detectionClass eq (rare, 1%)": {**base, "detectionClass": {"operator": "eq", "value": "class-19"}},
        "detectionClass not_in": {**base, "detectionClass": {"operator": "not_in", "value": CLASSES[:10]}},
        "metadata number gt": {**base, "customMetadataFilters": [{"field": "temperature", "operator": "gt", "value": 88, "type": "number"}]},
        "metadata string eq + number": {**base, "customMetadataFilters": [
            {"field": "line", "operator": "eq", "value": "C", "type": "string"},
            {"field": "shift", "operator": "eq", "value": 2, "type": "number"}]},
        "eventField result eq fail": {**base, "eventFieldFilters": [{"column": "result", "operator": "eq", "value": "fail"}]},
        "eventField item_count gt": {**base, "eventFieldFilters": [{"column": "item_count", "operator": "gt", "value": 95}]},
        "combined (type+device+class+meta+range)": {
            **base, "eventTypes": ["quality_check"], "deviceId": {"operator": "eq", "value": "cam-1"},
            "detectionClass": {"operator": "in", "value": ["class-1", "class-2"]},
            "customMetadataFilters": [{"field": "temperature", "operator": "gte", "value": 60, "type": "number"}],
            "startTime": (now - timedelta(days=7)).isoformat()},
    }


def percentile(samples: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def time_queries(server: LocalServer, use_case: str, repeats: int) -> List[Dict[str, Any]]:
    rows = []
    with httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {server.api_key}"}) as http:
        for name, body in query_shapes(use_case).items():
            samples, returned = [], 0
            for _ in range(repeats):
                started = time.perf_counter()
                response = http.post("/vision-events/query", json=body)
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
                returned = len(response.json()["events"])
            rows.append({"query": name, "returned": returned, "p50_ms": round(percentile(samples, 50), 2),
                         "p99_ms": round(percentile(samples, 99), 2)})
        # Deep pagination: follow cursors through 20 pages of 100 (per-page latency).
        samples, body = [], {"useCaseId": use_case, "limit": 100}
        for _ in range(max(1, repeats // 20)):
            body.pop("cursor", None)
            for _ in range(20):
                started = time.perf_counter()
                page = http.post("/vision-events/query", json=body).json()
                samples.append((time.perf_counter() - started) * 1000)
                body["cursor"] = page["nextCursor"]
        rows.append({"query": "cursor page (pages 1-20)", "returned": 100, "p50_ms": round(percentile(samples, 50), 2),
                     "p99_ms": round(percentile(samples, 99), 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=4, help="concurrent posting threads")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per query shape")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    with LocalServer() as server:
        use_case = server.create_use_case("bench")
        events = make_events(use_case, args.events)
        ingest_result = ingest(server, events, args.senders)
        print(f"ingest: {ingest_result['events']} events in {ingest_result['batches']} batches of 100, "
              f"{ingest_result['senders']} senders: {ingest_result['seconds']} s = "
              f"{ingest_result['events_per_s']} events/s ({ingest_result['batches_per_s']} batches/s)")
        queries = time_queries(server, use_case, args.repeats)
        db_size = sum(p.stat().st_size for p in server.data_dir.glob("vision-events.sqlite3*"))

    width = max(len(r["query"]) for r in queries)
    print(f"\n{'query over ' + str(args.events) + ' events':<{width}}  returned   p50 ms   p99 ms")
    for r in queries:
        print(f"{r['query']:<{width}}  {r['returned']:>8}  {r['p50_ms']:>7.2f}  {r['p99_ms']:>7.2f}")
    print(f"\ndatabase size: {db_size / 1e6:.1f} MB")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "note": "2 shared cores"},
        "ingest": ingest_result, "queries": queries, "repeats": args.repeats, "db_bytes": db_size,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
