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
    runs before an item (it may wait, e.g. out a pause); False means stop.

    ``spill_after`` makes the pool elastic: thread 0 takes every item until ``spill_after``
    wait for it, and only then do the others take the overflow. CPU-bound work (JPEG) thus
    uses one core while one is enough and every core under a burst, instead of always
    competing with the pipeline's own threads for all of them.
    """

    def __init__(self, name: str, count: int, handle: Callable[[Any], None],
                 before_each: Callable[[], bool] = lambda: True, spill_after: Optional[int] = None) -> None:
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()  # C-level put: cheap on the frame thread
        self._overflow: "Optional[queue.SimpleQueue[Any]]" = (
            queue.SimpleQueue() if spill_after is not None and count > 1 else None)
        self._spill_after = spill_after or 0
        self._name, self._handle, self._before_each = name, handle, before_each
        self.threads: List[threading.Thread] = []
        self._sources: List["queue.SimpleQueue[Any]"] = []
        for i in range(count):
            source = self._queue if i == 0 or self._overflow is None else self._overflow
            thread = threading.Thread(target=self._loop, args=(source,), name=f"{name}-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)
            self._sources.append(source)

    def put(self, item: Any) -> None:
        if self._overflow is not None and self._queue.qsize() >= self._spill_after:
            self._overflow.put(item)
        else:
            self._queue.put(item)

    def stop(self, join_timeout: Optional[float] = None) -> None:
        """Each thread finishes what was queued before, then stops; joined within ``join_timeout``."""
        for source in self._sources:
            source.put(None)
        if join_timeout is not None:
            deadline = time.monotonic() + join_timeout
            for thread in self.threads:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self, source: "queue.SimpleQueue[Any]") -> None:
        while True:
            item = source.get()
            if item is None or not self._before_each():
                return  # closed: what is left is counted (memory) or stays in the outbox
            try:
                self._handle(item)
            except Exception:  # a bug must not kill the thread
                logger.exception("vision-events: unexpected error in %s", self._name)
