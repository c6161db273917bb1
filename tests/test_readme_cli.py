"""The README's first run, CLI and Python client snippets, executed as written.

The blocks are read from README.md at test time, so the README cannot drift from the
behaviour. Only the local server's port and data directory are substituted (a test must not
take 8787 or the user's cache); everything else runs verbatim, through the installed
``vision-events`` entry point and ``python``.
"""
from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

from vision_events_blocks.api.client import VisionEventsClient
from vision_events_blocks.server.testing import free_port, wait_until_answering

from test_cli_newcomer import cli_env

README = Path(__file__).resolve().parents[1] / "README.md"
DEFAULT_DATA_DIR = "~/.cache/vision-events-blocks/server"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def blocks(text: str, language: str) -> list:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def bash(script: str, env: dict, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_first_run_ends_with_the_event_visible(tmp_path):
    first = section("First run")
    serve, steps = blocks(first, "bash")
    (python_example,) = blocks(section("Python client"), "python")
    assert serve.strip() == "vision-events serve"
    assert "8787" in steps and DEFAULT_DATA_DIR in steps and "python first_event.py" in steps
    port, data_dir = free_port(), tmp_path / "server-data"
    (tmp_path / "first_event.py").write_text(python_example)
    env = cli_env()
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(["bash", "-c", f"exec {serve.strip()} --port {port} --data-dir {data_dir}"],
                              env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        problem = wait_until_answering(f"http://127.0.0.1:{port}/_health", server, 60, 0.05)
        assert problem is None, (problem, (tmp_path / "serve.log").read_text())
        script = steps.replace("8787", str(port)).replace(DEFAULT_DATA_DIR, str(data_dir))
        result = bash(script, env, tmp_path)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    printed = result.stdout.splitlines()
    created = [line.split()[1] for line in printed if line.startswith("created ")]
    assert len(created) == 1, result.stdout
    table = [line for line in printed if created[0] in line and "quality_check" in line]
    assert len(table) == 2, result.stdout  # the client's loop, then the query's table row
    assert any("cam-1" in line and "result=fail" in line and "temperature=72.5" in line for line in table)
    banner = (tmp_path / "serve.log").read_text()
    assert "Development API key" in banner and (data_dir / "dev-api-key").read_text().strip() in banner


def test_cli_examples_run_as_written(local_server, tmp_path):
    (examples, completion) = blocks(section("Querying and managing from the command line"), "bash")
    name = f"readme-{uuid.uuid4().hex[:8]}"
    with VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as client:
        use_case_id = client.create_use_case(name).id
        client.create_events([
            {"eventType": "quality_check", "useCaseId": use_case_id, "eventData": {"result": "fail"},
             "customMetadata": {"temperature": 80, "line": "A1", "shift": "3"},
             "images": [{"sourceId": client.upload_image(b"\xff\xd8\xff\xe0" + b"\0" * 64).source_id,
                         "objectDetections": [{"class": "defect", "x": 1, "y": 1, "width": 1, "height": 1,
                                               "confidence": 0.9}]}]},
        ])
    env = cli_env(VISION_EVENTS_API_URL=local_server.url, ROBOFLOW_API_KEY=local_server.api_key)
    for line in filter(None, (raw.strip() for raw in examples.splitlines())):
        result = bash(line.replace("UC1", use_case_id), env, tmp_path)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (line, result.stderr)
        assert "matches no event" not in result.stderr, (line, result.stderr)  # every filter can match
        if line.startswith("vision-events query") and "-o " not in line:
            assert "fetched 1 events" in result.stderr, (line, result.stderr)
    assert "defect" in (tmp_path / "hot.csv").read_text()
    completion_check = bash(completion + "\ncomplete -p vision-events", env, tmp_path)
    assert completion_check.returncode == 0 and "vision-events" in completion_check.stdout, completion_check.stderr

