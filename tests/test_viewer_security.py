"""The viewer's security in a real headless Chromium: the key's path (fragment -> session
storage, never a URL, cookie or log), a wrong key, a read-only key giving feedback, hostile
event data shown as text, and the Content-Security-Policy on every viewer response.
"""
from __future__ import annotations

import os

import httpx
import pytest

from _viewer_support import Seeder, box, chromium, event, shown_event_ids, tab  # noqa: F401 (fixtures)

HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


@pytest.fixture(scope="module")
def hostile(local_server):
    """An event whose every free-text field carries markup."""
    seeder = Seeder(local_server)
    use_case = local_server.create_use_case(f"viewer-xss-{os.urandom(3).hex()}")
    frame = seeder.upload()
    alert = event(use_case, "safety_alert",
                  eventData={"alertType": HOSTILE[:200], "severity": "high", "description": HOSTILE},
                  deviceId=HOSTILE[:200], customMetadata={"note": HOSTILE},
                  comment=HOSTILE,
                  images=[{"sourceId": frame, "label": HOSTILE, "objectDetections": [box(HOSTILE[:100], 100, 100, 50, 50, 0.9)]}])
    seeder.post(alert)
    yield use_case, alert
    seeder.close()


def assert_inert(tab, page) -> None:
    """No markup from the data became an element, and no script of it ran."""
    assert page.title() != "pwned"
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("main script, [onerror]").count() == 0
    assert not [e for e in tab.errors if "pwned" in e]


def test_hostile_event_data_is_shown_as_text_on_the_event_page(local_server, hostile, tab):
    use_case, alert = hostile
    page = tab.open(f"{local_server.url}/view/{use_case}/{alert['eventId']}", local_server.api_key)
    tab.wait_ready()
    assert page.text_content("#custom-metadata [data-key=note]") == HOSTILE
    assert page.text_content("#event-data [data-key=description]") == HOSTILE
    assert page.text_content("#event-comment") == HOSTILE
    assert page.locator(".annotation[data-kind=box]").get_attribute("data-class") == HOSTILE[:100]
    assert page.text_content("#context-ids [data-key=deviceId]") == HOSTILE[:200]
    assert_inert(tab, page)


def test_hostile_event_data_is_shown_as_text_in_the_list(local_server, hostile, tab):
    use_case, alert = hostile
    page = tab.open(f"{local_server.url}/view/{use_case}", local_server.api_key)
    tab.wait_ready()
    assert shown_event_ids(page) == [alert["eventId"]]
    assert HOSTILE in page.text_content(f"tr[data-event-id='{alert['eventId']}'] [data-role=summary]")
    assert_inert(tab, page)


def test_a_key_in_the_fragment_moves_to_session_storage(local_server, hostile, tab):
    use_case, _ = hostile
    key = local_server.api_key
    page = tab.open(f"{local_server.url}/view/{use_case}", key)
    tab.wait_ready()
    assert "key" not in page.url and key not in page.url
    assert page.evaluate("() => history.length") >= 1 and key not in page.evaluate("() => location.href")
    assert page.evaluate("() => sessionStorage.getItem('visionEventsViewerKey')") == key
    assert page.context.cookies() == []
    assert not [u for u in tab.urls if key in u]  # never in a request URL
    assert key not in local_server.log_path.read_text(errors="replace")


def test_a_wrong_key_is_refused_and_asked_again(local_server, hostile, tab):
    use_case, _ = hostile
    page = tab.open(f"{local_server.url}/view/{use_case}", "not-a-key")
    error = page.wait_for_selector("#key-error")
    assert "401" in error.text_content() and "Invalid API key" in error.text_content()
    assert page.evaluate("() => sessionStorage.getItem('visionEventsViewerKey')") is None
    assert "not-a-key" not in page.content()
    page.fill("#api-key", local_server.api_key)
    page.click("#key-form button[type=submit]")
    tab.wait_ready()
    assert len(shown_event_ids(page)) == 1


def test_no_key_asks_for_one(local_server, tab):
    page = tab.open(f"{local_server.url}/")
    page.wait_for_selector("#key-form #api-key[type=password]")
    assert page.locator("#use-cases").count() == 0


def test_a_read_only_key_cannot_give_feedback(local_server, hostile, tab):
    use_case, alert = hostile
    reader = local_server.key_with_scopes("vision-events:read")
    page = tab.open(f"{local_server.url}/view/{use_case}/{alert['eventId']}", reader)
    tab.wait_ready()  # reading works
    page.check("#feedback-correct")
    page.click("#send-feedback")
    status = page.wait_for_selector("#feedback-status.error")
    assert "403" in status.text_content() and "vision-events:write" in status.text_content()
    assert [e for e in local_server.events(use_case) if e["eventType"] == "operator_feedback"] == []


def test_a_write_only_key_cannot_look(local_server, hostile, tab):
    use_case, _ = hostile
    writer = local_server.key_with_scopes("vision-events:write")
    page = tab.open(f"{local_server.url}/view/{use_case}", writer)
    error = page.wait_for_selector("#page-error")
    assert "403" in error.text_content() and "Insufficient permissions" in error.text_content()


@pytest.mark.parametrize("path", ["/", "/view/uc", "/view/uc/ev", "/viewer/static/common.js", "/viewer/static/viewer.css"])
def test_every_viewer_response_forbids_inline_script(local_server, path):
    answer = httpx.get(local_server.url + path)
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in answer.headers
    if path.endswith(".html") or "." not in path.rsplit("/", 1)[-1]:
        assert "<script>" not in answer.text and "onload=" not in answer.text  # no inline script to allow


@pytest.mark.parametrize("event_id", ["a%0Ab", "a%0Db", "tail%0A", "a%2Fb/c"])
def test_any_event_id_still_needs_a_key(local_server, event_id):
    """An eventId with a line break or a slash reaches the route (401), not the router's 404."""
    url = f"{local_server.url}/viewer/api/use-cases/uc/events/{event_id}"
    assert httpx.get(url).status_code == 401
    reader = local_server.key_with_scopes("vision-events:read")
    assert httpx.get(url, headers={"Authorization": f"Bearer {reader}"}).status_code == 404
    assert httpx.get(f"{local_server.url}/view/uc/{event_id}").status_code == 200


def test_pages_load_nothing_from_another_origin(local_server, hostile, tab):
    use_case, alert = hostile
    tab.open(f"{local_server.url}/view/{use_case}/{alert['eventId']}", local_server.api_key)
    tab.wait_ready()
    assert tab.urls and all(u.startswith(local_server.url) or u.startswith("data:") for u in tab.urls)


def test_serve_prints_the_viewer_link_but_never_a_given_key(local_server):
    """LocalServer starts `vision-events serve` with keys from the environment: the link asks for one."""
    printed = local_server.log_path.read_text(errors="replace")
    assert f"Event viewer: {local_server.url}/  (the page asks for an API key)" in printed
    assert local_server.api_key not in printed and "#key=" not in printed


def test_an_unknown_event_says_so(local_server, hostile, tab):
    use_case, _ = hostile
    page = tab.open(f"{local_server.url}/view/{use_case}/no-such-event", local_server.api_key)
    error = page.wait_for_selector("#page-error")
    assert "404" in error.text_content() and "Event not found" in error.text_content()
