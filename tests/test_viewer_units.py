"""The viewer's pure parts: printed links and counts over time (no browser, no server)."""
from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from vision_events_blocks.server.viewer import FAILED_QUALITY_CHECKS, viewer_link
from vision_events_blocks.server.viewer.routes import NICE_BUCKET_SECONDS, bucket_seconds, count_over_time

SECOND = 1_000_000


def test_link_keeps_the_key_in_the_fragment_and_ids_encoded():
    link = viewer_link("http://127.0.0.1:8787/", "line/3 a", FAILED_QUALITY_CHECKS, key="k+y&z=1")
    parts = urlsplit(link)
    assert parts.path == "/view/line%2F3%20a" and unquote(parts.path.rsplit("/", 1)[1]) == "line/3 a"
    assert parse_qs(parts.query) == {k: [v] for k, v in FAILED_QUALITY_CHECKS.items()}
    assert parse_qs(parts.fragment) == {"key": ["k+y&z=1"]}
    assert "k+y" not in parts.query


def test_link_without_key_or_use_case():
    assert viewer_link("http://h:1") == "http://h:1/"


@pytest.mark.parametrize("span_s, expected", [(0, 1), (24, 1), (25, 2), (300, 15), (86400, 3600), (10 * 86400, 43200), (30 * 86400, 2 * 86400)])
def test_bucket_size_splits_the_span_into_at_most_24(span_s, expected):
    assert bucket_seconds(span_s) == expected
    assert span_s / bucket_seconds(span_s) <= 24


def test_counts_over_time_add_up_and_keep_empty_buckets():
    t0 = 1_700_000_000 * SECOND
    rows = [(t0, "quality_check", "fail"), (t0 + 1 * SECOND, "quality_check", "pass"),
            (t0 + 299 * SECOND, "safety_alert", None), (t0 + 300 * SECOND, "quality_check", "fail")]
    stats = count_over_time(rows)
    assert stats["eventCount"] == 4 and stats["bucketSeconds"] in NICE_BUCKET_SECONDS
    assert stats["totals"] == {"byType": {"quality_check": 3, "safety_alert": 1}, "byResult": {"fail": 2, "pass": 1}}
    buckets = stats["buckets"]
    assert sum(sum(b["byType"].values()) for b in buckets) == 4
    assert buckets[0]["byResult"] == {"fail": 1, "pass": 1} and buckets[-1]["byResult"] == {"fail": 1}
    assert any(not b["byType"] for b in buckets)  # the quiet minutes are there, empty
    assert buckets[0]["start"].endswith("Z")


def test_no_events_no_buckets():
    assert count_over_time([]) == {"eventCount": 0, "bucketSeconds": None, "buckets": [],
                                   "totals": {"byType": {}, "byResult": {}}}


def test_the_strip_spans_the_asked_range_to_now():
    t0 = 1_700_000_000 * SECOND
    stats = count_over_time([(t0, "custom", None)], since_us=t0 - 60 * SECOND, until_us=t0 + 600 * SECOND)
    assert stats["bucketSeconds"] == 30  # 660 s in at most 24 buckets
    assert len(stats["buckets"]) == 23 and stats["buckets"][2]["byType"] == {"custom": 1}


def test_every_viewer_file_ships_in_the_package():
    """The pages and static files are package data: a file the patterns miss would 404 once installed."""
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "vision_events_blocks.server.viewer"]
    viewer = root / "vision_events_blocks" / "server" / "viewer"
    files = [p.relative_to(viewer).as_posix() for d in ("pages", "static") for p in (viewer / d).iterdir()]
    assert files and all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in files), (files, patterns)
