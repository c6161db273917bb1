"""The durable outbox keeps events private: 0700 directories, 0600 files, and never the key.

Checked under the most permissive umask (0), with images on disk (raw frames encoded by the
sender) and the sender's own stats, logs and dead letters, so every place the key could leak
is looked at.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from vision_events_blocks.delivery import ImageAttachment
from vision_events_blocks.server.testing import free_port

pytestmark = pytest.mark.security


@pytest.fixture
def open_umask():
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def every_path(root: Path) -> list:
    return [root, *root.rglob("*")]


def test_outbox_files_are_private_and_hold_no_key(make_sender, local_server, use_case_id, tmp_path, open_umask):
    outbox = tmp_path / "outbox"
    outbox.mkdir(mode=0o777)  # a pre-existing, world-open directory is tightened too
    os.chmod(outbox, 0o777)
    unreachable = f"http://127.0.0.1:{free_port()}"  # everything stays on disk while we look
    sender = make_sender(url=unreachable, outbox_dir=str(outbox), outbox_sync="FULL")
    pixels = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for index in range(5):
        sender.submit({"eventType": "custom", "useCaseId": use_case_id, "eventData": {"value": str(index)}},
                      images=[ImageAttachment(input=pixels, output=pixels[::-1])])
    assert sender.flush(timeout=30), sender.stats()  # persisted
    paths = every_path(outbox)
    assert sum(p.suffix == ".jpg" for p in paths) == 10, "the frames did not reach the outbox"
    assert any(p.name.endswith("-wal") for p in paths), "no WAL file to check"
    sender.close(timeout=2)
    for path in paths + every_path(outbox):
        if not path.exists():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{path.relative_to(tmp_path)} is {oct(mode)}, expected {oct(expected)}"
        if path.is_file():
            assert local_server.api_key.encode() not in path.read_bytes(), f"the API key is in {path.name}"


def test_sender_stats_logs_and_dead_letters_never_hold_the_key(make_sender, local_server, use_case_id, caplog):
    """A refused key ends in dead letters whose messages, like stats() and the logs, omit it."""
    import json
    import logging
    import uuid

    secret = "refused-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    sender = make_sender(key=secret)
    for _ in range(3):
        sender.submit({"eventType": "custom", "useCaseId": use_case_id})
    assert sender.flush(timeout=30), sender.stats()
    stats = sender.stats()
    assert stats["dead_lettered"] == 3, stats
    sender.close(timeout=5)
    text = json.dumps(stats, default=str) + repr(sender) + str(vars(sender)) + caplog.text
    assert "401" in json.dumps(stats["dead_letters"])
    assert secret not in text
