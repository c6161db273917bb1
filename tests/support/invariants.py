"""Invariants every sender must keep, checked the same way by every test."""
from __future__ import annotations

from typing import Any, Dict


def assert_invariant(stats: Dict[str, Any]) -> None:
    """Every event given to a sender is accounted for: sent, dropped with a reason,
    dead-lettered, or still pending (``replayed`` ones came from the outbox)."""
    accounted = stats["sent"] + stats["dropped_total"] + stats["dead_lettered"] + stats["pending"]
    assert stats["submitted"] + stats["replayed"] == accounted, stats
