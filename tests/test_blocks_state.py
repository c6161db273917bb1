"""The process-wide block state stays correct and bounded (no engine needed)."""
from __future__ import annotations

import os

from vision_events_blocks.blocks import throttle
from vision_events_blocks.blocks.state import shared_state


def _namespace() -> str:
    return f"test-{os.urandom(4).hex()}"


def test_cooldown_admits_once_per_key_and_forgets_on_request():
    gate = throttle.Cooldown(_namespace())
    assert gate.admit("pass", 1.0, now=100.0)
    assert not gate.admit("pass", 1.0, now=100.9)
    assert gate.admit("fail", 1.0, now=100.9)  # a different key is never held back
    assert gate.admit("pass", 1.0, now=101.0)
    gate.forget("pass")
    assert gate.admit("pass", 1.0, now=101.1)
    assert gate.admit("pass", 0.0, now=101.1)  # 0 disables the cooldown
    assert gate.admit("late", 5.0, now=50.0)


def test_cooldown_memory_is_bounded():
    namespace = _namespace()
    gate = throttle.Cooldown(namespace)
    for n in range(throttle.MAX_KEYS + 500):
        assert gate.admit(("stream", n), 3600.0, now=float(n))
    state = shared_state(namespace)
    assert len(state) <= throttle.MAX_KEYS
    assert ("stream", throttle.MAX_KEYS + 499) in state  # the newest are kept
    assert not gate.admit(("stream", throttle.MAX_KEYS + 499), 3600.0, now=float(throttle.MAX_KEYS + 500))


def test_stream_memory_is_bounded():
    memory = throttle.stream_memory(_namespace())
    for n in range(throttle.MAX_KEYS + 10):
        throttle.bounded_put(memory, n, n)
    assert len(memory) <= throttle.MAX_KEYS and memory[throttle.MAX_KEYS + 9] == throttle.MAX_KEYS + 9


def test_counts_add_up():
    before = throttle.counters().get("error:test", 0)
    throttle.count("error:test")
    throttle.count("error:test", 2)
    assert throttle.counters()["error:test"] == before + 3
