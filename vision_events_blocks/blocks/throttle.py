"""Process-wide block state: the sink's cooldown, per-stream memories and counters.

The inference HTTP server builds new block instances for every request, so everything that
must outlive one frame lives in :func:`.state.shared_state` (the counters in this module,
behind a plain lock), never in the block instance. Every map is bounded: old entries are pruned so a long-running server with
many streams or tracks never grows without limit.
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any, Dict, Hashable

from .state import shared_state

MAX_KEYS = 10_000  # entries kept per map before pruning


class Cooldown:
    """At most one event per key per ``cooldown`` seconds.

    The key names everything that makes an event *different* (destination, use case, stream,
    event type, signature), so a 30 fps stream repeating the same verdict sends one event per
    cooldown, while a different verdict, class set or count goes through at once.

    >>> gate = Cooldown("doc")                       # doctest: +SKIP
    >>> gate.admit(("cam-1", "pass"), 1.0, now=100.0), gate.admit(("cam-1", "pass"), 1.0, now=100.5)  # doctest: +SKIP
    (True, False)
    """

    def __init__(self, namespace: str) -> None:
        self._state = shared_state(namespace)

    def admit(self, key: Hashable, cooldown: float, now: float) -> bool:
        """True (and the key's clock restarts) when the key was last admitted ``cooldown`` ago or never."""
        with self._state:
            last = self._state.get(key)
            if cooldown > 0 and last is not None and 0 <= now - last[0] < cooldown:
                return False
            self._state[key] = (now, cooldown)
            if len(self._state) > MAX_KEYS:
                _prune(self._state, now)
            return True

    def forget(self, key: Hashable) -> None:
        """Undo an admission whose event was not sent after all (so the next one is not throttled)."""
        with self._state:
            self._state.pop(key, None)


def _prune(state: Dict[Hashable, Any], now: float) -> None:
    """Forget keys whose cooldown has passed; if still too many, the oldest half."""
    for key in [k for k, (at, cooldown) in state.items() if now - at >= cooldown]:
        del state[key]
    if len(state) > MAX_KEYS:
        for key in sorted(state, key=lambda k: state[k][0])[: len(state) // 2]:
            del state[key]


def stream_memory(namespace: str) -> Any:
    """A process-wide dict of per-(step, stream) memories (see :func:`common.state_key`)."""
    return shared_state(namespace)


def bounded_put(memory: Dict[Hashable, Any], key: Hashable, value: Any) -> None:
    """Store ``value``; past :data:`MAX_KEYS` entries the oldest inserted half is dropped."""
    memory[key] = value
    if len(memory) > MAX_KEYS:
        for old in list(memory)[: len(memory) // 2]:
            del memory[old]


# ------------------------------------------------------------------------ counters
# One process-wide tally behind a plain lock: ``count`` runs on every frame, so it is a lock
# and a dict update, not a registry look-up and a re-entrant lock. A forked child gets a
# fresh lock (a parent thread may have held this one at fork time); the counts are kept.
_counts: Counter = Counter()
_counts_lock = threading.Lock()


def count(name: str, n: int = 1) -> None:
    """Count a block outcome (``submitted``, ``throttled``, ``disabled``, ``error:<reason>``...)."""
    with _counts_lock:
        _counts[name] += n


def counters() -> Dict[str, int]:
    """A snapshot of the counts (see :func:`vision_events_blocks.block_stats`)."""
    with _counts_lock:
        return dict(_counts)


def _fresh_lock_in_child() -> None:
    global _counts_lock
    _counts_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)
