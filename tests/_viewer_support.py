"""Helpers for the event viewer's browser tests: Debian's Chromium driven by Playwright, and
a seeder that uploads real JPEGs and posts events to the real local server.

The browser is ``/usr/bin/chromium`` (``scripts/test.sh`` installs it when missing); a browser
that a Python or npm tool would download cannot be fetched here. A missing browser is a test
failure, never a skip, so that CI cannot pass without exercising the viewer.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, Optional

import cv2
import httpx
import numpy as np
import pytest

CHROMIUM = os.environ.get("VISION_EVENTS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
WAIT_MS = 15_000  # the longest any condition may take before the test fails
SCREENSHOTS_ENV = "VISION_EVENTS_VIEWER_SCREENSHOTS"  # a directory, e.g. docs, to refresh the README's pictures


def screenshot(page: Any, name: str, fallback_dir: Any) -> Any:
    """A full-page PNG of ``page``: into $VISION_EVENTS_VIEWER_SCREENSHOTS when set, else ``fallback_dir``."""
    from pathlib import Path

    target = Path(os.environ.get(SCREENSHOTS_ENV) or fallback_dir) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return target


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test module (each test gets a fresh context: no shared storage)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/test.sh` (installs Debian's chromium) "
                    "or `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Tab:
    """A page in a fresh browser context, with the console errors and requests it made."""

    page: Any
    errors: List[str] = field(default_factory=list)
    urls: List[str] = field(default_factory=list)

    def open(self, url: str, key: Optional[str] = None) -> Any:
        """Go to ``url`` (with ``#key=...`` when given) and wait for the page's scripts to finish."""
        self.page.goto(url + (f"#key={key}" if key else ""))
        return self.page

    def wait_ready(self) -> None:
        self.page.wait_for_selector("main[data-ready=true]", timeout=WAIT_MS)


@pytest.fixture
def tab(chromium) -> Iterator[Tab]:
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    opened = Tab(page)
    page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("request", lambda request: opened.urls.append(request.url))
    yield opened
    context.close()


def frame_jpeg(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    """A real JPEG: a conveyor-ish background with a part on it."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 60, np.uint8)
    image[height // 3: 2 * height // 3] = 120
    x = int(rng.integers(40, width - 200))
    cv2.rectangle(image, (x, height // 3 + 20), (x + 150, 2 * height // 3 - 20), (200, 180, 40), -1)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


def box(cls: str, x: float, y: float, width: float, height: float, confidence: float) -> Dict[str, Any]:
    return {"class": cls, "x": x, "y": y, "width": width, "height": height, "confidence": confidence}


def coco_person(x: float, y: float, confidence: float) -> Dict[str, Any]:
    """A keypoint instance with the 17 COCO keypoints (ids 0-16) around (x, y)."""
    pose = [(0, -50), (-4, -54), (4, -54), (-8, -52), (8, -52), (-15, -35), (15, -35), (-22, -15), (22, -15),
            (-25, 5), (25, 5), (-10, 5), (10, 5), (-12, 30), (12, 30), (-12, 55), (12, 55)]
    points = [{"id": i, "x": x + dx, "y": y + dy} for i, (dx, dy) in enumerate(pose)]
    return {**box("person", x, y, 60, 120, confidence), "keypoints": points}


class Seeder:
    """Posts events (and uploads their images) to the local server with its full key."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30.0, headers={"Authorization": f"Bearer {server.api_key}"})

    def close(self) -> None:
        self.http.close()

    def upload(self, content: Optional[bytes] = None) -> str:
        answer = self.http.post("/vision-events/upload", files={"file": ("frame.jpg", content or frame_jpeg(), "image/jpeg")})
        assert answer.status_code == 201, answer.text
        return answer.json()["sourceId"]

    def post(self, *events: Dict[str, Any]) -> List[str]:
        answer = self.http.post("/vision-events/batch", json={"events": list(events)})
        assert answer.status_code == 201, answer.text
        return [e["eventId"] for e in events]

    def query(self, body: Dict[str, Any]) -> List[Dict[str, Any]]:
        answer = self.http.post("/vision-events/query", json={"limit": 1000, **body})
        assert answer.status_code == 200, answer.text
        return answer.json()["events"]


def event(use_case_id: str, event_type: str = "quality_check", *, seconds_ago: float = 0.0, **fields: Any) -> Dict[str, Any]:
    """A valid wire event ``seconds_ago`` in the past; ``fields`` (camelCase) replace the defaults."""
    data = {"quality_check": {"result": "pass"}, "safety_alert": {"alertType": "no_hardhat"},
            "inventory_count": {"itemCount": 3}, "custom": {"value": "x"}}[event_type]
    body = {
        "eventId": str(uuid.uuid4()), "eventType": event_type, "useCaseId": use_case_id,
        "timestamp": (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat(), "eventData": data,
    }
    body.update(fields)
    return body


def shown_event_ids(page: Any) -> List[str]:
    """The ``data-event-id`` of every row of the list page, top to bottom."""
    return page.eval_on_selector_all("#event-rows tr[data-event-id]", "rows => rows.map(r => r.dataset.eventId)")
