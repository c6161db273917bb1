"""Issue 14's "done when", as a person does it: run the demo with ``--keep-server``, open the
link it prints, find the failed parts with their defects boxed, filter to them with the
form, and mark one as incorrect -- in a real headless Chromium, against the demo's own server.
"""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import httpx

from _viewer_support import WAIT_MS, Tab, chromium, screenshot, shown_event_ids  # noqa: F401 (fixtures)

DEMO_READY_S = 280.0  # inference import + three clips + delivery, on two shared cores


def _lines_of(process: subprocess.Popen) -> "queue.Queue[str]":
    lines: "queue.Queue[str]" = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for_line(lines: "queue.Queue[str]", marker: str, seen: list) -> None:
    deadline = time.monotonic() + DEMO_READY_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line == "":
            raise AssertionError("the demo ended early:\n" + "".join(seen)[-4000:])
        seen.append(line)
        if marker in line:
            return
    raise AssertionError(f"no {marker!r} within {DEMO_READY_S:.0f}s:\n" + "".join(seen)[-4000:])


def test_demo_link_finds_failed_parts_boxed_and_marks_one_incorrect(tmp_path, chromium):
    demo = subprocess.Popen(
        [sys.executable, "-c", "from vision_events_blocks.cli import main; main()", "demo", "--frames", "60",
         "--fail-rate", "0.1", "--data-dir", str(tmp_path), "--keep-server"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    seen: list = []
    context = None
    try:
        _wait_for_line(_lines_of(demo), "Server left running", seen)
        out = "".join(seen)
        all_events = re.search(r"all events:\s+(\S+)", out).group(1)
        failed_link = re.search(r"failed quality checks:\s+(\S+)", out).group(1)
        parts = urlsplit(all_events)
        server_url, key = f"{parts.scheme}://{parts.netloc}", parse_qs(parts.fragment)["key"][0]
        use_case = parts.path.rsplit("/", 1)[-1]

        context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(WAIT_MS)
        tab = Tab(context.new_page())
        tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
        page = tab.open(all_events)  # the printed link, key in its fragment
        tab.wait_ready()
        assert "key=" not in page.url
        everything = shown_event_ids(page)
        assert page.locator("#event-rows [data-role=summary]:text-is('result: fail')").count() >= 1
        page.wait_for_selector("#chart-by-type rect")
        screenshot(page, "viewer-list.png", tmp_path)  # the README's pictures, from the demo's own events

        # Filter to the failed parts with the form.
        page.check("input[name=eventTypes][value=quality_check]")
        row = page.locator("[data-group=eventFieldFilters]").first
        row.locator("[data-part=column]").select_option("result")
        row.locator("[data-part=value]").fill("fail")
        page.click("#apply-filters")
        page.wait_for_url("**eventFieldFilters.0.value=fail**")
        tab.wait_ready()
        failed = shown_event_ids(page)
        assert failed and set(failed) < set(everything)
        assert set(page.locator("#event-rows [data-role=summary]").all_text_contents()) == {"result: fail"}
        # The demo's own "failed quality checks" link shows the same events.
        other = context.new_page()
        other.goto(failed_link)
        other.wait_for_selector("main[data-ready=true]")
        assert shown_event_ids(other) == failed

        # One failed part: its defect boxed over the real frame, then marked incorrect.
        page.click(f"tr[data-event-id='{failed[0]}'] a")
        tab.wait_ready()
        assert page.locator("svg.overlay image").count() >= 1
        defects = page.locator(".annotation[data-kind=box][data-class=template_match]")
        assert defects.count() >= 1 and float(defects.first.get_attribute("data-confidence")) >= 0.5
        page.check("#feedback-incorrect")
        page.fill("#feedback-comment", "not a defect: glare")
        page.click("#send-feedback")
        page.wait_for_selector("#feedback-status.ok")
        page.wait_for_selector("#feedback-list li[data-feedback=incorrect]")
        screenshot(page, "viewer-event.png", tmp_path)
        stored = httpx.post(f"{server_url}/vision-events/query", headers={"Authorization": f"Bearer {key}"},
                            json={"useCaseId": use_case, "eventTypes": ["operator_feedback"]}).json()["events"]
        assert [(e["eventData"], e.get("comment")) for e in stored] == [
            ({"relatedEventId": failed[0], "feedback": "incorrect"}, "not a defect: glare")]
        assert not tab.errors
    finally:
        if context is not None:
            context.close()
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # the demo's Ctrl+C: it stops its server
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
