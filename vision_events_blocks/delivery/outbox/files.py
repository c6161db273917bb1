"""An outbox slot's image files, written ahead of their rows by a few threads of their own.

Writing a file is disk-bound (write, fsync, rename), so several threads write at once and
their fsync waits overlap, and the sender's encoders hand events over without waiting on the
disk. Once an event's files are in place, ``on_written`` queues its row for the slot's next
group commit; the directory itself is fsynced at that commit (see :mod:`.slot`).
"""
from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Callable, List

from ..envelope import Envelope
from ..workers import QueueWorkers
from .storage import write_file_atomically

FILE_WRITERS = 4  # threads writing image files: disk-bound, so more than the cores


class ImageFiles:
    """The file writers of one slot's ``images`` directory."""

    def __init__(self, images_dir: Path, fsync: bool, on_written: Callable[[Envelope, List[str]], None],
                 on_failed: Callable[[Envelope, OSError], None]) -> None:
        self.images_dir, self._fsync = images_dir, fsync
        self._on_written, self._on_failed = on_written, on_failed
        self._pending = 0
        self._idle = threading.Condition()
        self._writers = QueueWorkers("vision-events-outbox-files", FILE_WRITERS, self._write)

    def put(self, env: Envelope) -> None:
        with self._idle:
            self._pending += 1
        self._writers.put(env)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every event handed over so far has been written (or failed)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)

    def stop(self, timeout: float) -> None:
        """Write what was handed over, then stop the threads."""
        self._writers.stop(join_timeout=timeout)

    def _write(self, env: Envelope) -> None:
        try:
            if env.phase.live:  # an event decided meanwhile needs no file
                try:
                    files = self.write(env)
                except OSError as exc:
                    self._on_failed(env, exc)
                    return
                self._on_written(env, files)
        finally:
            with self._idle:
                self._pending -= 1
                if not self._pending:
                    self._idle.notify_all()

    def write(self, env: Envelope) -> List[str]:
        """Write the slots' bytes that are not on disk yet (each file fsynced, then renamed
        into place); returns the new files' names. A failure leaves none of them behind."""
        written: List[str] = []
        try:
            for slot in env.slots:
                if slot.file is None and slot.source_id is None and slot.data is not None:
                    name = uuid.uuid4().hex + slot.suffix
                    write_file_atomically(self.images_dir / name, slot.data, fsync=self._fsync)
                    slot.file = name
                    written.append(name)
        except OSError:
            self.forget(env, written)
            raise
        return written

    def forget(self, env: Envelope, files: List[str]) -> None:
        """Remove files whose row was never committed (the event still holds their bytes)."""
        for slot in env.slots:
            if slot.file in files:
                slot.file = None
        for name in files:
            try:
                (self.images_dir / name).unlink(missing_ok=True)
            except OSError:
                pass
