"""``vision-events demo`` end to end, as a user runs it: a subprocess, its output and exit status."""
from __future__ import annotations

import os
import subprocess
import sys


def test_demo_delivers_every_event_and_says_how_to_look(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-c", "from vision_events_blocks.cli import main; main()", "demo", "--frames", "60", "--fail-rate", "0.3",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=280, cwd=tmp_path,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    out = finished.stdout
    assert finished.returncode == 0, (out + finished.stderr)[-4000:]
    for line in ("quality_check", "safety_alert", "inventory_count", "counts over time: 6 -> 5 -> 4 -> 3",
                 "Result: every event the workflows reported is stored on the server.",
                 "vision-events query --api-url http://127.0.0.1:"):
        assert line in out, out[-3000:]
    assert "fail 0" not in out                         # the clip has a defective part: the line fails it
    assert "retried 0" not in out                      # the injected 503s (30%) were retried...
    assert "dropped: none" in out                      # ...and nothing was lost
    assert (tmp_path / "server").is_dir() and (tmp_path / "clips" / "production_line.mp4").is_file()
