"""A newcomer's first hour (issue 17), through the real ``vision-events`` entry point.

Each case runs the installed console script in a subprocess against the real local server
and checks what a user sees: the exit code, one ``Error: ...`` line naming the problem and the
next step, no traceback, never the key.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from vision_events_blocks.api.client import VisionEventsClient
from vision_events_blocks.server.testing import free_port, wait_until_answering

REPO = Path(__file__).resolve().parents[1]
NOW = datetime.now(timezone.utc)


def entry_point() -> list:
    """The ``vision-events`` console script next to this Python (as installed), else the same
    ``main`` through ``-c``."""
    script = Path(sys.executable).parent / "vision-events"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from vision_events_blocks.cli import main; main()"]  # pragma: no cover


def cli_env(**overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VISION_EVENTS_API_URL", "API_BASE_URL", "ROBOFLOW_API_KEY", "API_KEY",
                        "VISION_EVENTS_SERVER_API_KEYS", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                        "http_proxy", "https_proxy", "all_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(overrides)
    return env


class Cli:
    def __init__(self, env: dict) -> None:
        self.env = env

    def __call__(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(entry_point() + list(args), capture_output=True, text=True, timeout=timeout,
                              env=dict(self.env, **env))


@pytest.fixture
def cli(local_server) -> Cli:
    return Cli(cli_env(VISION_EVENTS_API_URL=local_server.url, ROBOFLOW_API_KEY=local_server.api_key))


@pytest.fixture
def stored(local_server, use_case_id):
    """Three events: ``shift`` stored as a string, ``temperature`` as a number."""
    events = [
        {"eventType": "custom", "useCaseId": use_case_id, "timestamp": NOW - timedelta(minutes=i),
         "customMetadata": {"shift": shift, "temperature": temperature}}
        for i, (shift, temperature) in enumerate([("3", 61), ("2", 75.5), ("1", 60)])
    ]
    with VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as client:
        ids = client.create_events(events).event_ids
    return use_case_id, ids


def failed(result: subprocess.CompletedProcess, code: int, *fragments: str, secret: str = "") -> str:
    """Exit ``code``, one ``Error:`` line holding ``fragments``, no traceback, no ``secret``."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    if secret:
        assert secret not in result.stdout + result.stderr
    return errors[0]


def ids_of(result: subprocess.CompletedProcess) -> list:
    assert result.returncode == 0, result.stderr
    return sorted(json.loads(line)["eventId"] for line in result.stdout.splitlines() if line.strip())


# ------------------------------------------------------------------------------------------
# --meta and the stored type
# ------------------------------------------------------------------------------------------
def test_meta_without_a_type_uses_the_stored_type(cli, stored):
    use_case_id, ids = stored
    result = cli("query", "--use-case", use_case_id, "--format", "jsonl", "-q", "--meta", "shift = 3")
    assert ids_of(result) == [ids[0]]
    assert "'shift' is stored as string" in result.stderr


def test_meta_with_a_type_that_cannot_match_says_so(cli, stored):
    use_case_id, _ = stored
    result = cli("query", "--use-case", use_case_id, "--format", "jsonl", "-q", "--meta", "shift = 3:number")
    assert ids_of(result) == []
    assert "Note:" in result.stderr and "stored as string" in result.stderr and "never as number" in result.stderr


def test_meta_on_a_field_no_event_has_says_so(cli, stored):
    use_case_id, _ = stored
    result = cli("query", "--use-case", use_case_id, "-q", "--meta", "shfit = 3")
    assert result.returncode == 0 and "no event of use case" in result.stderr and "vision-events schema" in result.stderr


@pytest.mark.parametrize("expression, expected", [
    ("temperature in 60,61", [0, 2]),
    ("temperature not_in 60,61", [1]),
    ("temperature > 70:int", [1]),
    ("temperature <= 61:float", [0, 2]),
    ("shift in 1,3", [0, 2]),
])
def test_meta_numbers_take_in_not_in_and_type_aliases(cli, stored, expression, expected):
    use_case_id, ids = stored
    result = cli("query", "--use-case", use_case_id, "--format", "jsonl", "-q", "--meta", expression)
    assert ids_of(result) == sorted(ids[i] for i in expected)


@pytest.mark.parametrize("expression, fragments", [
    ("temperature > hot", ["'temperature' is stored as number", "'hot' is not a number"]),
    ("shift > 2", ["> compares numbers", "'shift' is stored as a string"]),
    ("temperature > 70:text", ["> compares numbers"]),
    ("temperature > 70:int:", ["'70:int:' is not a number"]),
])
def test_meta_values_that_do_not_fit_exit_2(cli, stored, expression, fragments):
    use_case_id, _ = stored
    failed(cli("query", "--use-case", use_case_id, "--meta", expression), 2, "--meta", *fragments)


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------
def test_output_into_a_missing_directory_exits_2_before_any_request(cli, tmp_path):
    missing = tmp_path / "nonexistent" / "x.csv"
    failed(cli("query", "--use-case", "no-such-use-case", "-o", str(missing)), 2, "--output", str(missing),
           "does not exist")
    failed(cli("query", "--use-case", "uc", "-o", str(tmp_path)), 2, "is a directory")


def test_a_failed_query_leaves_no_partial_file(cli, tmp_path):
    out = tmp_path / "out.csv"
    failed(cli("query", "--use-case", "no-such-use-case", "-o", str(out)), 1, "404", "use-cases list")
    assert not out.exists()


def test_one_output_flag_everywhere(cli, stored):
    use_case_id, ids = stored
    events = json.loads(cli("query", "--use-case", use_case_id, "--format", "json", "-q").stdout)
    assert sorted(e["eventId"] for e in events) == sorted(ids)
    assert json.loads(cli("query", "--use-case", use_case_id, "--json", "-q").stdout) == events
    empty = cli("query", "--use-case", use_case_id, "--json", "-q", "--meta", "shift = 9")
    assert json.loads(empty.stdout) == []
    listed = json.loads(cli("use-cases", "list", "--json").stdout)
    assert any(u["id"] == use_case_id for u in listed["useCases"])
    lines = [json.loads(line) for line in cli("use-cases", "list", "--format", "jsonl").stdout.splitlines()]
    assert any(u["id"] == use_case_id for u in lines)
    assert cli("use-cases", "list", "--format", "csv").stdout.splitlines()[0] == "id,name,status,eventCount,createdAt,updatedAt"
    assert json.loads(cli("schema", use_case_id, "--json").stdout)["fields"]["shift"]["types"] == ["string"]
    assert "temperature,number" in cli("schema", use_case_id, "--format", "csv").stdout.splitlines()
    created = json.loads(cli("use-cases", "create", f"json-{uuid.uuid4().hex[:8]}", "--json").stdout)
    assert set(created) >= {"id", "name"}
    failed(cli("schema", use_case_id, "--json", "--format", "csv"), 2, "--json")


# ------------------------------------------------------------------------------------------
# Where, and with which key
# ------------------------------------------------------------------------------------------
def test_a_server_that_is_not_running_is_named_with_the_next_step(cli):
    dead = f"http://127.0.0.1:{free_port()}"
    failed(cli("use-cases", "list", VISION_EVENTS_API_URL=dead), 1, f"cannot reach the Vision Events API at {dead}",
           "Connection refused", "VISION_EVENTS_API_URL", "vision-events serve")


def test_without_a_url_the_cloud_is_named_and_the_local_setting_shown(cli):
    # No network needed: the (unset) cloud URL goes through a proxy that refuses connections.
    proxy = f"http://127.0.0.1:{free_port()}"
    result = cli("use-cases", "list", VISION_EVENTS_API_URL="", HTTPS_PROXY=proxy, https_proxy=proxy)
    failed(result, 1, "https://api.roboflow.com", "VISION_EVENTS_API_URL is not set", "vision-events serve",
           "VISION_EVENTS_API_URL=http://127.0.0.1:8787")


def test_a_refused_key_names_its_source_never_the_key(cli, local_server):
    wrong = "wrong-" + uuid.uuid4().hex
    failed(cli("use-cases", "list", ROBOFLOW_API_KEY=wrong), 1, "401", "from ROBOFLOW_API_KEY", secret=wrong)
    failed(cli("use-cases", "list", "--api-key", wrong), 1, "401", "from --api-key", secret=wrong)
    read_only = local_server.key_with_scopes("vision-events:read")
    failed(cli("use-cases", "create", "nope", "--api-key", read_only), 1, "403", "vision-events:manage",
           secret=read_only)


def test_a_missing_key_exits_2_and_says_where_to_get_one(cli):
    failed(cli("use-cases", "list", ROBOFLOW_API_KEY=""), 2, "ROBOFLOW_API_KEY", "dev-api-key")


def test_impossible_times_are_explained(cli, stored):
    use_case_id, _ = stored
    failed(cli("query", "--use-case", use_case_id, "--start", "2999-01-01"), 2, "--start", "more than a day ahead")
    old = cli("query", "--use-case", use_case_id, "-q", "--end", "30d")
    assert old.returncode == 0 and "events older than that are not kept" in old.stderr


# ------------------------------------------------------------------------------------------
# vision-events serve
# ------------------------------------------------------------------------------------------
def test_serve_on_a_busy_port_fails_before_the_banner_and_the_dev_key(local_server, tmp_path):
    data_dir = tmp_path / "data"
    result = Cli(cli_env())("serve", "--port", str(local_server.port), "--data-dir", str(data_dir))
    failed(result, 2, "--port", f"{local_server.port} is already in use", "--port")
    assert result.stdout == "" and not (data_dir / "dev-api-key").exists()


def test_serve_accepts_keys_from_the_option_and_the_variable_together(tmp_path):
    import httpx

    port = free_port()
    env = cli_env(VISION_EVENTS_SERVER_API_KEYS="env-key-1\nenv-key-2:vision-events:read")
    log = open(tmp_path / "serve.log", "wb")
    process = subprocess.Popen(entry_point() + ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
                                                "--api-key", "option-key", "--log-level", "warning"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until_answering(f"{url}/_health", process, 60, 0.05) is None, (tmp_path / "serve.log").read_text()
        for key in ("option-key", "env-key-1", "env-key-2"):
            answer = httpx.get(f"{url}/vision-events/use-cases", headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200, (key, answer.text)
        assert not (tmp_path / "data" / "dev-api-key").exists()
    finally:
        process.terminate()
        process.wait(30)
        log.close()
    assert "env-key" not in (tmp_path / "serve.log").read_text()


def test_serve_names_a_bad_key_spec_in_the_variable_without_the_key(tmp_path):
    result = Cli(cli_env(VISION_EVENTS_SERVER_API_KEYS="s3cret-key:vision-events:reed"))(
        "serve", "--port", "0", "--data-dir", str(tmp_path))
    failed(result, 2, "VISION_EVENTS_SERVER_API_KEYS", "unknown scope 'vision-events:reed'", secret="s3cret-key")


# ------------------------------------------------------------------------------------------
# Shell completion (documented in the README)
# ------------------------------------------------------------------------------------------
def test_shell_completion_as_documented():
    cli = Cli(cli_env())
    script = cli(_VISION_EVENTS_COMPLETE="bash_source")
    assert script.returncode == 0 and "complete " in script.stdout and "_vision_events_completion" in script.stdout
    words = cli(_VISION_EVENTS_COMPLETE="bash_complete", COMP_WORDS="vision-events use-cases ar", COMP_CWORD="2")
    assert "archive" in words.stdout.split() or "plain,archive" in words.stdout
    assert "_VISION_EVENTS_COMPLETE=bash_source vision-events" in cli("--help").stdout


# ------------------------------------------------------------------------------------------
# Waiting: never longer than asked, and a failing server says "try again"
# ------------------------------------------------------------------------------------------
def test_a_server_that_never_answers_is_given_up_on_with_timeout(cli):
    import socket

    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = cli("query", "--use-case", "uc", "--api-url", url, "--timeout", "0.5", timeout=30)
    failed(result, 1, f"no answer from {url} in time", "--timeout")


def test_a_failing_server_says_try_again(cli, faults):
    faults.set_faults(fail_rate=1.0)
    failed(cli("use-cases", "list"), 1, "HTTP 503", "try again")


@pytest.mark.parametrize("args, fragments", [
    (["query", "--use-case", ""], ["--use-case", "use-cases list"]),
    (["query", "--use-case", "x" * 300], ["--use-case", "1 to 256"]),
    (["use-cases", "list", "--api-url", "localhost:8787"], ["--api-url must be an http:// or https:// URL"]),
    (["query", "--use-case", "uc", "--start", "9999999999d"], ["--start", "before year 1"]),
    (["query", "--use-case", "uc", "--timeout", "0"], ["--timeout"]),
    (["use-cases", "create", " "], ["name must not be empty"]),
    (["serve", "--port", "70000"], ["--port"]),
    (["serve", "--fail-rate", "2"], ["--fail-rate"]),
])
def test_siblings_bad_input_exits_2_naming_it(cli, args, fragments):
    failed(cli(*args), 2, *fragments)


def test_a_name_taken_points_at_the_list(cli):
    name = f"taken-{uuid.uuid4().hex[:8]}"
    assert cli("use-cases", "create", name).returncode == 0
    failed(cli("use-cases", "create", name), 1, "already exists", "use-cases list")


def test_the_table_shows_whole_timestamps(cli, stored):
    use_case_id, ids = stored
    rows = cli("query", "--use-case", use_case_id, "-q").stdout.splitlines()[1:]
    assert len(rows) == 3 and all(row.split()[0].endswith("Z") and "…" not in row.split()[0] for row in rows)


def test_a_refusal_by_the_default_cloud_says_it_was_the_cloud(monkeypatch):
    # Unit level: the cloud cannot be reached from the test machine.
    from vision_events_blocks.api.errors import AuthenticationError
    from vision_events_blocks.cli._common import explain

    for name in ("VISION_EVENTS_API_URL", "API_BASE_URL", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROBOFLOW_API_KEY", "k")
    refused = AuthenticationError(401, "Invalid API key", method="GET", path="/vision-events/use-cases")
    message = explain(refused)
    assert "from ROBOFLOW_API_KEY" in message and "VISION_EVENTS_API_URL is not set" in message
    assert "cloud" not in explain(refused, api_url="http://127.0.0.1:8787")
