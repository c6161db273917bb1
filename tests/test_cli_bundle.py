"""``vision-events bundle upload`` as a user runs it: a subprocess against the real local server.

Bundles come from both writers (ours and inference's ``vision_event_bundle@v1`` block). The
crash test kills the CLI with SIGKILL mid-upload and reruns it: every eventId is stored
exactly once and no bundle is lost.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import httpx

from support.bundles import FILES, JPEG, PNG, our_event, tarball, v1_payload, write_builtin_bundles
from vision_events_blocks.api.bundles import BundleImage, write_bundle

ROOT = Path(__file__).resolve().parents[1]


def cli_env(server, key=None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), ROBOFLOW_API_KEY=key or server.api_key,
               VISION_EVENTS_BATCH_LINGER_S="0.05", VISION_EVENTS_STATS_LOG_INTERVAL_S="3600")
    env.pop("VISION_EVENTS_OUTBOX_DIR", None)
    return env


def upload_args(server, *args) -> List[str]:
    return [sys.executable, "-m", "vision_events_blocks.cli", "bundle", "upload", "--api-url", server.url, *map(str, args)]


def run_cli(server, *args, key=None, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run(upload_args(server, *args), env=cli_env(server, key), capture_output=True, text=True,
                          timeout=timeout, cwd=str(ROOT))


def summary(finished: subprocess.CompletedProcess) -> dict:
    return json.loads(finished.stdout)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def ours(directory: Path, count: int, use_case_id=None) -> List[str]:
    ids = []
    for _ in range(count):
        event = our_event(use_case_id)
        write_bundle(directory, event, [BundleImage(output=JPEG, input=PNG)])
        ids.append(event["eventId"])
    return ids


def test_delivers_our_bundles_and_the_builtin_blocks_keeping_event_ids(local_server, use_case_id, run_workflow, tmp_path):
    inbox = tmp_path / "inbox"
    expected = ours(inbox, 3) + [o["event_id"] for o in write_builtin_bundles(run_workflow, inbox, 3)]
    (inbox / "notes.txt").write_text("not a bundle")
    (inbox / ".tmp_abc_event_x.tar.gz").write_bytes(b"half written")  # a writer's temporary file: never touched
    finished = run_cli(local_server, inbox, "--use-case-id", use_case_id, "--json")
    assert finished.returncode == 0, finished.stderr + finished.stdout
    result = summary(finished)
    assert (result["delivered"], result["skipped"], result["refused"], result["kept"]) == (6, 1, 0, 0)
    assert [b["reason"] for b in result["bundles"] if b["outcome"] == "skipped"] == ["not a bundle (*.tar.gz)"]
    stored = {e["eventId"]: e for e in local_server.events(use_case_id)}
    assert sorted(stored) == sorted(expected)
    for event in stored.values():
        image = event["images"][0]
        assert image["objectDetections"][0]["class"] == "scratch" and image["label"] == "workflow"
        assert httpx.get(image["url"]).status_code == 200 and httpx.get(image["inputUrl"]).status_code == 200
    assert sorted(p.name for p in inbox.iterdir()) == [".tmp_abc_event_x.tar.gz", "notes.txt"]


def test_done_dir_keeps_delivered_bundles_and_retries_survive_server_errors(faults, use_case_id, tmp_path):
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    expected = ours(inbox, 6, use_case_id)
    faults.set_faults(fail_rate=0.3)  # 503s on uploads and events: retried, never lost
    finished = run_cli(faults, inbox, "--done-dir", done, "--json")
    faults.set_faults()
    assert finished.returncode == 0, finished.stderr + finished.stdout
    assert summary(finished)["delivered"] == 6
    assert sorted(e["eventId"] for e in faults.events(use_case_id)) == sorted(expected)
    assert list(inbox.iterdir()) == [] and len(list(done.iterdir())) == 6


def test_refused_bundles_are_moved_aside_with_the_reason_and_others_still_delivered(local_server, use_case_id, tmp_path):
    inbox = tmp_path / "inbox"
    [good] = ours(inbox, 1, use_case_id)
    (inbox / "event_corrupt.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    (inbox / "event_traversal.tar.gz").write_bytes(tarball({**FILES, "../../etc/passwd": b"x"}, payload=v1_payload(use_case_id)))
    (inbox / "event_notimage.tar.gz").write_bytes(tarball({**FILES, "images/out.jpg": b"text"}, payload=v1_payload(use_case_id)))
    refused_by_api = v1_payload("no-such-use-case")
    (inbox / "event_unknown_uc.tar.gz").write_bytes(tarball(FILES, payload=refused_by_api))
    no_use_case = v1_payload()
    (inbox / "event_no_uc.tar.gz").write_bytes(tarball(FILES, payload=no_use_case))
    finished = run_cli(local_server, inbox, "--json")
    assert finished.returncode == 1, finished.stderr + finished.stdout
    result = summary(finished)
    assert (result["delivered"], result["skipped"], result["refused"], result["kept"]) == (1, 1, 4, 0)
    assert [e["eventId"] for e in local_server.events(use_case_id)] == [good]
    refused = inbox / "refused"
    reasons = {p.name[: -len(".error.txt")]: p.read_text() for p in refused.glob("*.error.txt")}
    assert set(reasons) == {"event_corrupt.tar.gz", "event_traversal.tar.gz", "event_notimage.tar.gz", "event_unknown_uc.tar.gz"}
    assert all((refused / name).is_file() for name in reasons)  # moved, never deleted
    assert "truncated or corrupt" in reasons["event_corrupt.tar.gz"]
    assert "path traversal" in reasons["event_traversal.tar.gz"]
    assert "not an image" in reasons["event_notimage.tar.gz"]
    assert "HTTP 400" in reasons["event_unknown_uc.tar.gz"] and "Solution not found" in reasons["event_unknown_uc.tar.gz"]
    assert refused_by_api["eventId"] in reasons["event_unknown_uc.tar.gz"]
    assert sorted(p.name for p in inbox.iterdir()) == ["event_no_uc.tar.gz", "refused"]  # skipped: left in place
    [skipped] = [b for b in result["bundles"] if b["outcome"] == "skipped"]
    assert "--use-case-id" in skipped["reason"]
    assert not Path("/etc/passwd").read_text().startswith("x")


def test_a_refused_key_moves_nothing(local_server, use_case_id, tmp_path):
    inbox = tmp_path / "inbox"
    ours(inbox, 2, use_case_id)
    finished = run_cli(local_server, inbox, key="not-a-valid-key", timeout=120)
    assert finished.returncode == 1 and "refused the key" in finished.stderr
    assert "delivered 0, skipped 0, refused 0, not acknowledged (left for a rerun) 2" in finished.stdout
    assert "not-a-valid-key" not in finished.stdout + finished.stderr
    assert len(list(inbox.glob("*.tar.gz"))) == 2 and not (inbox / "refused").exists()
    assert local_server.events(use_case_id) == []


def test_kill_9_during_upload_then_rerun_stores_every_event_exactly_once(faults, use_case_id, tmp_path):
    inbox = tmp_path / "inbox"
    expected = ours(inbox, 40, use_case_id)
    faults.set_faults(latency_ms=60)  # slow enough to be caught in the middle
    process = subprocess.Popen(upload_args(faults, inbox, "--in-flight", 5), env=cli_env(faults),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(ROOT))
    try:
        wait_for(lambda: len(list(inbox.glob("*.tar.gz"))) <= 30, what="some bundles delivered")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    remaining = len(list(inbox.glob("*.tar.gz")))
    assert process.returncode == -signal.SIGKILL and 0 < remaining < 40  # it really died mid-way
    stored_before = {e["eventId"] for e in faults.events(use_case_id)}
    assert 40 - remaining <= len(stored_before)  # every removed bundle's event is stored
    faults.set_faults()
    finished = run_cli(faults, inbox, "--json")
    assert finished.returncode == 0, finished.stderr + finished.stdout
    assert summary(finished)["delivered"] == remaining
    stored = [e["eventId"] for e in faults.events(use_case_id)]
    assert len(stored) == 40 and sorted(stored) == sorted(expected)
    assert list(inbox.glob("*.tar.gz")) == []


def test_watch_follows_a_folder_until_terminated(local_server, use_case_id, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    process = subprocess.Popen(upload_args(local_server, inbox, "--watch", "--interval", "0.2", "--use-case-id", use_case_id,
                                           "--json"),
                               env=cli_env(local_server), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    try:
        first = ours(inbox, 2)
        wait_for(lambda: len(local_server.events(use_case_id)) == 2, what="the first two bundles")
        later = ours(inbox, 1)
        wait_for(lambda: len(local_server.events(use_case_id)) == 3, what="a bundle written later")
        wait_for(lambda: not list(inbox.glob("*.tar.gz")), what="the bundles removed")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert json.loads(out)["delivered"] == 3
    assert sorted(e["eventId"] for e in local_server.events(use_case_id)) == sorted(first + later)


def test_watch_takes_only_settled_bundles_so_a_copy_in_progress_is_not_refused(tmp_path):
    from vision_events_blocks.cli._bundle_upload import collect

    inbox = tmp_path / "inbox"
    old, fresh = ours(inbox, 2)
    [old_path] = inbox.glob(f"*{old}*")
    os.utime(old_path, (time.time() - 60, time.time() - 60))
    (inbox / ".tmp_x_event.tar.gz").write_bytes(b"being written")
    found, skipped = collect([inbox], min_age_s=5.0)
    assert found == [old_path] and skipped == []
    found, _ = collect([inbox])  # a one-shot run takes everything that is there
    assert len(found) == 2 and all(fresh in p.name or old in p.name for p in found)
