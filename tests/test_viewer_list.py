"""The viewer's list page in a real headless Chromium against the real local server.

Every filter kind of the query API, given as the page's query string (a shareable link) and
through the form; cursor pages; the server's error shown next to the field it names; new
events appearing live; the use-case index with its counts.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from _viewer_support import WAIT_MS, Seeder, box, chromium, event, shown_event_ids, tab  # noqa: F401 (fixtures)


def z(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def seeded(local_server):
    """One use case with six events that differ in every filterable way, plus their ids."""
    seeder = Seeder(local_server)
    use_case = local_server.create_use_case(f"viewer-list-{os.urandom(3).hex()}")
    frame = seeder.upload()
    base = datetime.now(timezone.utc)

    def at(seconds_ago: float) -> str:
        return (base - timedelta(seconds=seconds_ago)).isoformat()

    events = {
        "fail_a": event(use_case, timestamp=at(10), eventData={"result": "fail", "externalId": "part-1"},
                        deviceId="cam-1", streamId="s-1", workflowId="wf-qc",
                        images=[{"sourceId": frame, "objectDetections": [box("scratch", 100, 100, 40, 30, 0.9),
                                                                         box("screw", 300, 200, 10, 10, 0.8)]}],
                        customMetadata={"line": "3", "temp": 71.5, "overtime": True}),
        "pass": event(use_case, timestamp=at(20), eventData={"result": "pass", "externalId": "part-2"},
                      deviceId="cam-1", streamId="s-1", workflowId="wf-qc",
                      images=[{"sourceId": frame, "objectDetections": [box("screw", 300, 200, 10, 10, 0.8)]}],
                      customMetadata={"line": "3", "temp": 65, "overtime": False}),
        "fail_b": event(use_case, timestamp=at(30), eventData={"result": "fail", "externalId": "part-3"},
                        deviceId="cam-2", streamId="s-2",
                        images=[{"sourceId": frame, "objectDetections": [box("dent", 200, 200, 50, 50, 0.7)]},
                                {"sourceId": "ve-img-never-uploaded"}],
                        customMetadata={"line": "4", "temp": 80}),
        "alert": event(use_case, "safety_alert", timestamp=at(40),
                       eventData={"alertType": "no_hardhat", "severity": "high"}, deviceId="cam-2",
                       images=[{"sourceId": frame, "objectDetections": [box("person", 200, 200, 50, 100, 0.95)]}]),
        "inv": event(use_case, "inventory_count", timestamp=at(50),
                     eventData={"itemCount": 5, "location": "aisle 7"}, customMetadata={"line": "4"}),
        "custom": event(use_case, "custom", timestamp=at(3600), workflowId="wf-other"),
    }
    seeder.post(*events.values())
    yield use_case, {name: e["eventId"] for name, e in events.items()}, base
    seeder.close()


def metadata(field: str, kind: str, operator: str, value: str) -> str:
    return "&".join(f"customMetadataFilters.0.{k}={quote(v)}" for k, v in
                    (("field", field), ("type", kind), ("operator", operator), ("value", value)))


def event_field(column: str, operator: str, value: str) -> str:
    return "&".join(f"eventFieldFilters.0.{k}={quote(v)}" for k, v in
                    (("column", column), ("operator", operator), ("value", value)))


FILTER_CASES = [
    ("eventTypes=quality_check", ["fail_a", "pass", "fail_b"]),
    ("eventTypes=safety_alert&eventTypes=inventory_count", ["alert", "inv"]),
    ("deviceId=cam-1", ["fail_a", "pass"]),
    ("deviceId=cam-1&deviceId.operator=neq", ["fail_b", "alert", "inv", "custom"]),
    ("streamId=s-2", ["fail_b"]),
    ("workflowId=wf-qc&workflowId.operator=neq", ["fail_b", "alert", "inv", "custom"]),
    ("externalId=part-3", ["fail_b"]),
    ("detectionClass=scratch", ["fail_a"]),
    ("detectionClass=screw&detectionClass.operator=neq", ["fail_b", "alert", "inv", "custom"]),
    ("detectionClass=dent,scratch&detectionClass.operator=in", ["fail_a", "fail_b"]),
    ("detectionClass=screw,person&detectionClass.operator=not_in", ["fail_b", "inv", "custom"]),
    ("imageCount=2&imageCount.operator=gte", ["fail_b"]),
    ("imageCount=0", ["inv", "custom"]),
    ("hasWarnings=true", ["fail_b"]),
    (metadata("line", "string", "eq", "4"), ["fail_b", "inv"]),
    (metadata("line", "string", "in", "3,4"), ["fail_a", "pass", "fail_b", "inv"]),
    (metadata("temp", "number", "gt", "70"), ["fail_a", "fail_b"]),
    (metadata("overtime", "boolean", "eq", "true"), ["fail_a"]),
    (event_field("result", "eq", "fail"), ["fail_a", "fail_b"]),
    (event_field("item_count", "gt", "4"), ["inv"]),
    (event_field("severity", "in", "high,low"), ["alert"]),
    ("eventTypes=quality_check&deviceId=cam-2&" + event_field("result", "eq", "fail"), ["fail_b"]),
]


@pytest.mark.parametrize("search, expected", FILTER_CASES, ids=[c[0][:60] for c in FILTER_CASES])
def test_every_filter_kind_from_the_query_string(local_server, seeded, tab, search, expected):
    use_case, ids, _ = seeded
    page = tab.open(f"{local_server.url}/view/{use_case}?{search}", local_server.api_key)
    tab.wait_ready()
    assert shown_event_ids(page) == [ids[name] for name in expected]  # newest first
    assert not tab.errors


def test_time_range_filter(local_server, seeded, tab):
    use_case, ids, base = seeded
    search = f"startTime={quote(z(base - timedelta(seconds=45)))}&endTime={quote(z(base - timedelta(seconds=15)))}"
    page = tab.open(f"{local_server.url}/view/{use_case}?{search}", local_server.api_key)
    tab.wait_ready()
    assert shown_event_ids(page) == [ids["pass"], ids["fail_b"], ids["alert"]]
    assert page.input_value("input[name=startTime]") == z(base - timedelta(seconds=45))


def test_the_form_builds_a_shareable_link(local_server, seeded, tab):
    use_case, ids, _ = seeded
    page = tab.open(f"{local_server.url}/view/{use_case}", local_server.api_key)
    tab.wait_ready()
    assert len(shown_event_ids(page)) == 6
    page.check("input[name=eventTypes][value=quality_check]")
    page.select_option("select[name='deviceId.operator']", "neq")
    page.fill("input[name=deviceId]", "cam-1")
    row = page.locator("[data-group=customMetadataFilters]").first
    row.locator("[data-part=field]").fill("temp")
    row.locator("[data-part=field]").dispatch_event("change")
    assert row.locator("[data-part=type]").input_value() == "number"  # from the custom-metadata schema
    row.locator("[data-part=operator]").select_option("gte")
    row.locator("[data-part=value]").fill("80")
    page.click("#apply-filters")
    page.wait_for_url("**/view/**?**")
    tab.wait_ready()
    assert shown_event_ids(page) == [ids["fail_b"]]
    assert "eventTypes=quality_check" in page.url and "deviceId.operator=neq" in page.url
    assert "customMetadataFilters.0.field=temp" in page.url and "customMetadataFilters.0.type=number" in page.url
    # The link alone reproduces the view, in a new context with only the key.
    again = page.context.new_page()
    again.goto(page.url)  # sessionStorage is per tab: this one asks for the key
    again.wait_for_selector("#key-form")
    again.fill("#api-key", local_server.api_key)
    again.click("#key-form button[type=submit]")
    again.wait_for_selector("main[data-ready=true]")
    assert shown_event_ids(again) == [ids["fail_b"]]


@pytest.mark.parametrize("search, field, words", [
    ("imageCount=many", "imageCount", "imageCount"),
    (metadata("overtime", "boolean", "gt", "true"), "customMetadataFilters", "not allowed for type 'boolean'"),
    (event_field("result", "gt", "pass"), "eventFieldFilters", "only applies to item_count"),
    ("startTime=2026-01-02T00:00:00Z&endTime=2026-01-01T00:00:00Z", "startTime", "startTime must not be after endTime"),
    ("detectionClass=a&detectionClass.operator=in&limit=5000", "limit", "limit"),
])
def test_the_servers_error_shows_next_to_the_field(local_server, seeded, tab, search, field, words):
    use_case, _, _ = seeded
    page = tab.open(f"{local_server.url}/view/{use_case}?{search}", local_server.api_key)
    tab.wait_ready()
    slot = page.locator(f"[data-error-for={field}]")
    slot.wait_for(state="visible")
    assert words in slot.text_content()
    assert page.locator(".field-error:visible").count() == 1
    assert shown_event_ids(page) == []


def test_cursor_pages_with_more(local_server, seeded, tab):
    use_case, ids, _ = seeded
    page = tab.open(f"{local_server.url}/view/{use_case}?limit=2", local_server.api_key)
    tab.wait_ready()
    order = ["fail_a", "pass", "fail_b", "alert", "inv", "custom"]
    assert shown_event_ids(page) == [ids[n] for n in order[:2]]
    for shown in (4, 6):
        page.click("#more")
        page.locator("#event-rows tr[data-event-id]").nth(shown - 1).wait_for()
    assert shown_event_ids(page) == [ids[n] for n in order]
    page.wait_for_selector("#more", state="hidden")


def test_counts_by_type_and_result(local_server, seeded, tab):
    use_case, _, _ = seeded
    page = tab.open(f"{local_server.url}/view/{use_case}", local_server.api_key)
    tab.wait_ready()
    page.wait_for_selector("#chart-by-type rect")
    totals = page.eval_on_selector_all("#totals-by-type [data-key]", "s => s.map(e => [e.dataset.key, +e.dataset.count])")
    assert dict(totals) == {"quality_check": 3, "safety_alert": 1, "inventory_count": 1, "custom": 1}
    results = page.eval_on_selector_all("#totals-by-result [data-key]", "s => s.map(e => [e.dataset.key, +e.dataset.count])")
    assert dict(results) == {"fail": 2, "pass": 1}
    bars = page.eval_on_selector_all("#chart-by-type rect", "s => s.reduce((n, r) => n + +r.dataset.count, 0)")
    assert bars == 6


def test_new_events_appear_live(local_server, tab):
    seeder = Seeder(local_server)
    use_case = local_server.create_use_case(f"viewer-live-{os.urandom(3).hex()}")
    (old,) = seeder.post(event(use_case, seconds_ago=5, eventData={"result": "pass"}))
    page = tab.open(f"{local_server.url}/view/{use_case}?eventTypes=quality_check", local_server.api_key)
    tab.wait_ready()
    assert shown_event_ids(page) == [old]
    (alert,) = seeder.post(event(use_case, "safety_alert"))  # filtered out: must not appear
    (fresh,) = seeder.post(event(use_case, eventData={"result": "fail"}))
    page.wait_for_selector(f"#event-rows tr[data-event-id='{fresh}']", timeout=WAIT_MS)
    assert shown_event_ids(page) == [fresh, old]
    assert alert not in shown_event_ids(page)
    page.wait_for_selector("#totals-by-result [data-key=fail]")  # the chart followed
    # A burst larger than one poll's page (100) arrives whole, in order: live is paused while it
    # is posted, so that the next poll must follow the cursor.
    page.uncheck("#live")
    burst = [event(use_case, eventData={"result": "pass"}) for _ in range(150)]
    seeder.post(*burst[:75])
    seeder.post(*burst[75:])
    page.check("#live")
    page.locator("#event-rows tr[data-event-id]").nth(151).wait_for()
    assert shown_event_ids(page) == [e["eventId"] for e in reversed(burst)] + [fresh, old]
    seeder.close()


def test_a_trailing_slash_still_shows_the_list(local_server, seeded, tab):
    use_case, ids, _ = seeded
    page = tab.open(f"{local_server.url}/view/{use_case}/?deviceId=cam-1", local_server.api_key)
    tab.wait_ready()
    assert shown_event_ids(page) == [ids["fail_a"], ids["pass"]]


def test_index_lists_use_cases_with_counts(local_server, seeded, tab):
    use_case, _, _ = seeded
    page = tab.open(f"{local_server.url}/", local_server.api_key)
    row = page.wait_for_selector(f"tr[data-use-case-id='{use_case}']")
    assert row.query_selector("[data-role=event-count]").text_content() == "6"
    row.query_selector("a").click()
    page.wait_for_url(f"**/view/{use_case}")
    tab.wait_ready()
    assert len(shown_event_ids(page)) == 6
