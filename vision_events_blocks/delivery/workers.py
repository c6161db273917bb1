"""Threads fed by one queue: the encoder stage and the exporter pool are both this.

Plain daemon ``threading.Thread``s, never an executor: an exit flush must not find its workers
already shut down by the interpreter (the OpenTelemetry exit-flush bug).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, List, Optional

logger = logging.getLogger("vision_events_blocks.delivery")


class QueueWorkers:
    """``count`` threads named ``name-<i>``; each item goes to ``handle``. ``before_each``
    runs before an item (it may wait, e.g. out a pause); False means stop."""

    def __init__(self, name: str, count: int, handle: Callable[[Any], None],
                 before_each: Callable[[], bool] = lambda: True) -> None:
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()  # C-level put: cheap on the frame thread
        self._name, self._handle, self._before_each = name, handle, before_each
        self.threads: List[threading.Thread] = []
        for i in range(count):
            thread = threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def stop(self, join_timeout: Optional[float] = None) -> None:
        """Each thread finishes what was queued before, then stops; joined within ``join_timeout``."""
        for _ in self.threads:
            self._queue.put(None)
        if join_timeout is not None:
            deadline = time.monotonic() + join_timeout
            for thread in self.threads:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or not self._before_each():
                return  # closed: what is left is counted (memory) or stays in the outbox
            try:
                self._handle(item)
            except Exception:  # a bug must not kill the thread
                logger.exception("vision-events: unexpected error in %s", self._name)
