"""The blocks' process-wide state: one named, locked dict per purpose.

The inference HTTP server builds new block instances for every request, so what must outlive
one frame (cooldowns, alerted violators, last counts, counters) lives here, in the process,
never in a block instance. After a fork the child gets fresh locks (a parent thread may have
held one at fork time); the dicts themselves are kept.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Dict

_lock = threading.Lock()
_states: Dict[str, "SharedState"] = {}


class SharedState(dict):
    """A dict shared by every block instance in the process, with its own lock.

    >>> state = shared_state("doc-cooldown")
    >>> with state:
    ...     state["camera-1"] = 12.5
    >>> shared_state("doc-cooldown")["camera-1"]
    12.5
    """

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()

    def __enter__(self) -> "SharedState":
        self.lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()


def shared_state(namespace: str) -> SharedState:
    """The process-wide :class:`SharedState` named ``namespace`` (created on first use)."""
    with _lock:
        state = _states.get(namespace)
        if state is None:
            state = _states[namespace] = SharedState()
        return state


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for state in _states.values():
        state.lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
