"""``vision-events query | use-cases | schema`` through click's runner, against the local server."""
from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import click
import pytest
from click.testing import CliRunner

from vision_events_blocks.api.client import VisionEventsClient
from vision_events_blocks.cli import main
from vision_events_blocks.cli.query import (
    build_query,
    parse_event_field_filter,
    parse_expression,
    parse_image_count,
    parse_metadata_filter,
    parse_time,
)
from vision_events_blocks.server.testing import free_port

NOW = datetime.now(timezone.utc)


@pytest.fixture
def run(local_server, monkeypatch):
    """Run the CLI with the server's URL and key in the environment; stdout and stderr apart."""
    monkeypatch.setenv("VISION_EVENTS_API_URL", local_server.url)
    monkeypatch.setenv("ROBOFLOW_API_KEY", local_server.api_key)
    runner = CliRunner(mix_stderr=False)

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def populated(local_server, use_case_id):
    """Five events of several kinds in a fresh use case."""
    def ev(minutes_ago: int, **fields):
        body = {"eventId": str(uuid.uuid4()), "useCaseId": use_case_id,
                "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat()}
        body.update(fields)
        return body

    with VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as client:
        source = client.upload_image(b"\xff\xd8\xff\xe0" + b"\0" * 64).source_id
        events = [
            ev(1, eventType="quality_check", eventData={"result": "fail", "externalId": "batch-1"}, deviceId="cam-1",
               customMetadata={"temperature": 80, "line": "A1"},
               images=[{"sourceId": source, "objectDetections": [
                   {"class": "defect", "x": 1, "y": 1, "width": 1, "height": 1, "confidence": 0.9}]}]),
            ev(2, eventType="quality_check", eventData={"result": "pass"}, deviceId="cam-2",
               customMetadata={"temperature": 60, "line": "B2"}),
            ev(3, eventType="inventory_count", eventData={"itemCount": 12, "location": "dock"}, deviceId="cam-1"),
            ev(4, eventType="safety_alert", eventData={"alertType": "no_hardhat", "severity": "high"}, streamId="s1"),
            ev(300, eventType="custom", eventData={"value": "old"}, workflowId="wf-1",
               customMetadata={"overtime": True}),
        ]
        client.create_events(events)
    return use_case_id, events


def jsonl(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_clean_failure(result, code: int, *fragments: str):
    """A one-line ``Error: ...`` on stderr, the exit code, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert "Error:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# ------------------------------------------------------------------------------------------
# query
# ------------------------------------------------------------------------------------------
def test_query_table_is_readable(run, populated):
    use_case_id, events = populated
    result = run("query", "--use-case", use_case_id)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["TIMESTAMP", "TYPE", "EVENT"]
    assert len(lines) == 1 + len(events)
    assert events[0]["eventId"] in lines[1]  # newest first
    assert "result=fail" in lines[1] and "temperature=80" in lines[1]
    assert "fetched 5 events (1 page)" in result.stderr


def test_query_jsonl_follows_pages_and_reports_progress(run, populated):
    use_case_id, events = populated
    result = run("query", "--use-case", use_case_id, "--format", "jsonl", "--limit", "2")
    assert result.exit_code == 0, result.stderr
    rows = jsonl(result.stdout)
    assert sorted(r["eventId"] for r in rows) == sorted(e["eventId"] for e in events)
    assert "(3 pages)" in result.stderr
    assert rows[0]["eventData"] == {"result": "fail", "externalId": "batch-1"}


def test_query_max_events_stops_early(run, populated):
    use_case_id, _ = populated
    result = run("query", "--use-case", use_case_id, "--format", "jsonl", "--limit", "2", "--max-events", "3", "-q")
    assert result.exit_code == 0 and len(jsonl(result.stdout)) == 3 and result.stderr == ""


def test_query_csv_to_a_file(run, populated, tmp_path):
    use_case_id, _ = populated
    out = tmp_path / "events.csv"
    result = run("query", "--use-case", use_case_id, "--format", "csv", "--output", str(out), "--event-type", "quality_check")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["eventData.result"] for r in rows] == ["fail", "pass"]
    assert rows[0]["detectionClasses"] == "defect" and rows[0]["imageCount"] == "1"
    assert json.loads(rows[0]["customMetadata"]) == {"temperature": 80, "line": "A1"}
    assert "wrote 2 events" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--event-type", "inventory_count", "--event-type", "safety_alert"], [2, 3]),
        (["--device-id", "cam-1"], [0, 2]),
        (["--device-id", "!=cam-1"], [1, 3, 4]),
        (["--stream-id", "s1"], [3]),
        (["--workflow-id", "wf-1"], [4]),
        (["--external-id", "batch-1"], [0]),
        (["--class", "defect"], [0]),
        (["--class", "defect", "--class", "scratch"], [0]),
        (["--not-class", "defect"], [1, 2, 3, 4]),
        (["--image-count", "gte:1"], [0]),
        (["--image-count", "=0"], [1, 2, 3, 4]),
        (["--meta", "temperature > 70"], [0]),
        (["--meta", "line in A1,B2"], [0, 1]),
        (["--meta", "line not_in A1", "--event-type", "quality_check"], [1]),
        (["--meta", "overtime = true"], [4]),
        (["--meta", "temperature >= 60", "--meta", "line != A1"], [1]),
        (["--field", "result = fail"], [0]),
        (["--field", "item_count >= 10"], [2]),
        (["--field", "severity in high,medium"], [3]),
        (["--start", "1h"], [0, 1, 2, 3]),
        (["--end", "2h"], [4]),
        (["--no-warnings"], [0, 1, 2, 3, 4]),
        (["--has-warnings"], []),
    ],
)
def test_query_filters(run, populated, options, expected):
    use_case_id, events = populated
    result = run("query", "--use-case", use_case_id, "--format", "jsonl", "-q", *options)
    assert result.exit_code == 0, result.stderr
    assert sorted(r["eventId"] for r in jsonl(result.stdout)) == sorted(events[i]["eventId"] for i in expected)


def test_query_iso_time_range(run, populated):
    use_case_id, events = populated
    start = (NOW - timedelta(minutes=3, seconds=30)).isoformat()
    end = (NOW - timedelta(minutes=1, seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%f")  # naive = UTC
    result = run("query", "--use-case", use_case_id, "--format", "jsonl", "-q", "--start", start, "--end", end)
    assert sorted(r["eventId"] for r in jsonl(result.stdout)) == sorted(e["eventId"] for e in events[1:3])


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["--meta", "temperature"], "NAME OP VALUE"),
        (["--meta", "temperature > hot:number"], "not a number"),
        (["--meta", "flag = maybe:boolean"], "not a boolean"),
        (["--meta", "temperature > 70:string"], "> compares numbers"),
        (["--field", "colour = red"], "colour"),
        (["--field", "result > fail"], "only applies to item_count"),
        (["--image-count", "lots"], "--image-count"),
        (["--start", "last tuesday"], "--start"),
        (["--start", "1h", "--end", "2h"], "startTime must not be after endTime"),
        (["--class", "a", "--not-class", "b"], "--class"),
        (["--event-type", "fire"], "--event-type"),
        (["--limit", "5000"], "--limit"),
        (["--format", "xml"], "--format"),
        (["--class"], "--class"),
    ],
)
def test_query_bad_options_exit_2_with_a_clear_message(run, options, fragment):
    result = run("query", "--use-case", "uc", *options)
    assert_clean_failure(result, 2, fragment)


def test_query_too_many_classes_is_refused(run):
    args = []
    for i in range(51):
        args += ["--class", f"c{i}"]
    assert_clean_failure(run("query", "--use-case", "uc", *args), 2, "detectionClass", "50")


def test_query_needs_a_use_case(run):
    assert_clean_failure(run("query"), 2, "--use-case")


def test_api_errors_exit_1_without_the_key(run, local_server, monkeypatch):
    monkeypatch.setenv("ROBOFLOW_API_KEY", "wrong-" + local_server.api_key)
    result = run("query", "--use-case", "uc")
    assert_clean_failure(result, 1, "401")
    assert local_server.api_key not in result.stdout + result.stderr
    read_only = local_server.key_with_scopes("vision-events:read")
    result = run("use-cases", "create", "nope", "--api-key", read_only)
    assert_clean_failure(result, 1, "403", "Insufficient permissions")
    assert read_only not in result.stdout + result.stderr


def test_missing_key_is_a_usage_error_naming_the_variable(run, monkeypatch):
    monkeypatch.delenv("ROBOFLOW_API_KEY")
    monkeypatch.delenv("API_KEY", raising=False)
    assert_clean_failure(run("use-cases", "list"), 2, "ROBOFLOW_API_KEY")


def test_unreachable_server_exits_1_and_writes_nothing(run, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    assert_clean_failure(run("use-cases", "list", "--api-url", dead), 1, "cannot reach", dead, "vision-events serve")
    result = run("query", "--use-case", "uc", "--api-url", dead)
    assert_clean_failure(result, 1, "Connection refused")
    assert result.stdout == ""  # not even a table header
    out = tmp_path / "out.csv"
    assert_clean_failure(run("query", "--use-case", "uc", "--api-url", dead, "-o", str(out)), 1)
    assert not out.exists()


def test_bad_api_url_exits_2_without_echoing_it(run):
    result = run("use-cases", "list", "--api-url", "https://me:s3cr3t@example.com")
    assert_clean_failure(result, 2, "credentials")
    assert "s3cr3t" not in result.stderr


def test_query_help_documents_the_syntax(run):
    result = run("query", "--help")
    assert result.exit_code == 0
    for piece in ("--meta 'F OP V[:T]'", "not_in", "item_count", "!=X", "gte:1", "30m 2h 7d"):
        assert piece in result.stdout


# ------------------------------------------------------------------------------------------
# use-cases and schema
# ------------------------------------------------------------------------------------------
def test_use_case_lifecycle(run):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = run("use-cases", "create", name)
    assert created.exit_code == 0, created.stderr
    use_case_id = created.stdout.strip()
    listed = run("use-cases", "list")
    assert use_case_id in listed.stdout and name in listed.stdout and listed.stdout.startswith("ID")
    renamed = run("use-cases", "rename", use_case_id, name + "-2")
    assert renamed.exit_code == 0 and name + "-2" in renamed.stdout
    assert run("use-cases", "archive", use_case_id).exit_code == 0
    inactive = json.loads(run("use-cases", "list", "--status", "inactive", "--format", "json").stdout)
    assert any(u["id"] == use_case_id and u["status"] == "inactive" for u in inactive["useCases"])
    assert use_case_id not in run("use-cases", "list").stdout
    assert run("use-cases", "unarchive", use_case_id).exit_code == 0
    assert_clean_failure(run("use-cases", "unarchive", use_case_id), 1, "not archived")
    assert_clean_failure(run("use-cases", "create", name + "-2"), 1, "already exists")
    assert_clean_failure(run("use-cases", "archive", "no-such-id"), 1, "404")
    assert_clean_failure(run("use-cases", "list", "--status", "deleted"), 2, "--status")


def test_schema(run, populated):
    use_case_id, _ = populated
    table = run("schema", use_case_id)
    assert table.exit_code == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["FIELD", "TYPES"]
    assert any(line.split() == ["temperature", "number"] for line in table.stdout.splitlines())
    as_json = json.loads(run("schema", use_case_id, "--format", "json").stdout)
    assert as_json["fields"]["overtime"]["types"] == ["boolean"]


def test_schema_of_an_empty_use_case(run, use_case_id):
    result = run("schema", use_case_id)
    assert result.exit_code == 0 and result.stdout == "" and "no custom metadata" in result.stderr


# ------------------------------------------------------------------------------------------
# The option mini-language, unit by unit
# ------------------------------------------------------------------------------------------
def test_expression_operators_words_and_symbols():
    assert parse_expression("a eq 1", "x") == ("a", "eq", "1")
    assert parse_expression("a == 1", "x") == ("a", "eq", "1")
    assert parse_expression("line name <= 3", "x") == ("line name", "lte", "3")
    assert parse_expression("note = hello in there", "x") == ("note", "eq", "hello in there")
    assert parse_expression("k not_in a,b", "x") == ("k", "not_in", "a,b")
    with pytest.raises(click.BadParameter):
        parse_expression("k =", "x")


def test_metadata_types_inferred_or_explicit():
    assert parse_metadata_filter("t < -1.5")["value"] == -1.5
    assert parse_metadata_filter("n = 3")["value"] == 3 and parse_metadata_filter("n = 3")["type"] == "number"
    assert parse_metadata_filter("ok != False") == {"field": "ok", "operator": "neq", "value": False, "type": "boolean"}
    assert parse_metadata_filter("code = 007:string")["value"] == "007"
    assert parse_metadata_filter("zone in a, b")["value"] == ["a", "b"]


def test_event_field_values_and_image_count():
    assert parse_event_field_filter("item_count in 1,2") == {"column": "item_count", "operator": "in", "value": [1, 2]}
    assert parse_event_field_filter("feedback = incorrect")["value"] == "incorrect"
    assert parse_image_count("3") == {"operator": "eq", "value": 3}
    assert parse_image_count("neq:0") == {"operator": "neq", "value": 0}
    assert parse_image_count("<2") == {"operator": "lt", "value": 2}


def test_times_relative_and_iso():
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert parse_time("90m", "--start", now=now) == now - timedelta(minutes=90)
    assert parse_time("1w", "--start", now=now) == now - timedelta(days=7)
    assert parse_time("2026-01-01T10:00:00Z", "--start") == datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    assert parse_time("2026-01-01", "--start").tzinfo == timezone.utc


def test_build_query_maps_classes_to_eq_or_in():
    assert build_query("u", classes=["a"]).to_wire()["detectionClass"] == {"operator": "eq", "value": "a"}
    assert build_query("u", not_classes=["a", "b"]).to_wire()["detectionClass"] == {"operator": "not_in", "value": ["a", "b"]}
