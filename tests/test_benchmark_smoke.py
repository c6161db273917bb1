"""Smoke check of ``benchmarks/compare_builtin.py --quick``: it runs end to end and our side
keeps its promises (no loss, bounded memory, fewer requests). Behaviour only, never timing:
the figures themselves depend on the machine and are read from the report by people.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "compare_builtin.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    process = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                             capture_output=True, text=True, timeout=280, cwd=REPO)
    report = out / "compare_builtin-quick.json"
    assert report.exists(), f"no report written (exit {process.returncode}):\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
    return process, out, json.loads(report.read_text())


@pytest.mark.timeout(300)
def test_every_scenario_ran_and_files_were_written(quick_run):
    process, out, payload = quick_run
    assert payload["errors"] == {}, payload["errors"]
    assert process.returncode == 0, process.stdout[-3000:]
    assert (out / "compare_builtin-quick.png").stat().st_size > 10_000
    assert set(payload["results"]) >= {"hot_path", "throughput", "faults_5xx", "outage", "memory_blackhole", "pipeline_end"}
    assert "| Measure | Built-in | Ours |" in process.stdout  # the ratio table is printed


def test_our_side_loses_nothing_under_faults(quick_run):
    results = quick_run[2]["results"]
    for scenario in ("faults_5xx", "outage"):
        ours = results[scenario]["ours"]
        assert ours["accepted"] > 0, scenario
        assert ours["stored"] == ours["accepted"], f"{scenario}: {ours}"
        assert ours["stored_incomplete"] == 0, f"{scenario}: events arrived without their images: {ours}"


def test_our_side_loses_nothing_silently_at_pipeline_end(quick_run):
    """Every event the sink accepted is on the server or counted as dropped with a reason
    (a file read faster than the sender can encode overflows the buffer: drop_oldest)."""
    ours = quick_run[2]["results"]["pipeline_end"]["ours"]
    assert ours["accepted"] > 0
    assert ours["stored"] + sum(ours["dropped_before_exit"].values()) >= ours["accepted"], ours


def test_our_side_delivers_bursts_with_fewer_requests_and_connections(quick_run):
    throughput = quick_run[2]["results"]["throughput"]
    assert throughput["no_images"]["ours"]["stored"] == throughput["no_images"]["ours"]["submitted"]
    for images, sides in throughput.items():
        ours, builtin = sides["ours"], sides["builtin"]
        # whole, shed of images under memory pressure (marked and counted), or dropped with a reason
        accounted = ours["stored"] + ours["stored_incomplete"] + sum(ours["dropped"].values())
        assert accounted == ours["submitted"], f"{images}: {ours}"
        assert ours["connections_per_event"] < builtin["connections_per_event"], images
    for images in ("no_images", "one_720p"):
        assert throughput[images]["ours"]["requests_per_event"] < throughput[images]["builtin"]["requests_per_event"]


def test_the_builtin_reference_behaves_as_documented(quick_run):
    """One request per image plus one per event, each on a fresh connection: if this breaks,
    the benchmark no longer measures the block the README compares against."""
    throughput = quick_run[2]["results"]["throughput"]
    expected = {"no_images": 1, "one_720p": 2, "two_1080p": 3}
    for images, requests in expected.items():
        builtin = throughput[images]["builtin"]
        assert builtin["stored"] == builtin["submitted"], images
        assert builtin["requests_per_event"] == pytest.approx(requests), images
        # a client port can come round again within a run, so connection ids are ~unique
        assert builtin["connections_per_event"] == pytest.approx(requests, rel=0.1), images


def test_our_memory_stays_under_the_configured_cap_while_the_server_is_down(quick_run):
    payload = quick_run[2]
    cap_mb = payload["profile"]["buffer_cap_mb"]
    ours = payload["results"]["memory_blackhole"]["ours"]
    assert ours["accepted"] > 0
    (sender_stats,) = ours["stats"].values()
    assert sender_stats["peak_buffered_bytes"] > 0  # it really held events (not dropped up front)
    assert "encode_failed" not in sender_stats["dropped"]
    assert ours["growth_mb"] <= cap_mb * 1.5, ours  # cap plus encoder/allocator slack
    assert not math.isnan(payload["results"]["hot_path"]["ours"]["p99_us"])


def test_rounds_alternate_the_side_order_and_a_burst_reports_its_median_run():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from _compare import runner

    scenarios = runner.Scenarios(server=None, workers={"builtin": "B", "ours": "O"},
                                 profile=runner.dataclasses.replace(runner.QUICK, rounds=3), log=print)
    assert [(n, side) for n, side, _ in scenarios._rounds()] == [
        (0, "builtin"), (0, "ours"), (1, "ours"), (1, "builtin"), (2, "builtin"), (2, "ours")]
    median = runner._median_run([{"events_per_s": 30.0}, {"events_per_s": 10.0}, {"events_per_s": 20.0}])
    assert median["events_per_s"] == 20.0 and median["events_per_s_by_round"] == [30.0, 10.0, 20.0]
