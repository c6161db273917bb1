"""Python child processes for the crash tests: start one on a snippet, kill it with SIGKILL at
the moment that matters (nothing of the child's exit code runs)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

from .waits import wait_for

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, **env: str) -> subprocess.Popen:
    """``python -c code`` (dedented) from the repository root, importing this checkout, with
    text pipes for stdout and stderr; ``env`` adds to the environment."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": path, **env},
                            cwd=str(ROOT))


def kill_9_when(child: subprocess.Popen, condition: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    """Once the child printed its ``PERSISTED`` line and ``condition`` holds, SIGKILL it; it is
    killed whatever happens, so a failed wait never leaves it running."""
    try:
        line = child.stdout.readline()
        assert line.startswith("PERSISTED"), child.stderr.read()
        wait_for(condition, timeout, what)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
