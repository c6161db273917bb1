"""Looking after an outbox from the outside (the CLI): status of every slot, purge."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, List

from ..api import OutboxLockedError
from . import slots
from .slots import DB_NAME


def outbox_status(directory: str) -> Dict[str, Any]:
    """Counts, bytes and oldest age of every slot of an outbox, read-only (safe while senders run).

    The totals (``events``, ``bytes``, ``dead_letters``, ``oldest_age_s``) cover all slots;
    ``slots`` lists each with its destination (URL, key fingerprint) and whether a live
    process holds it.
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no outbox at {root} (no such directory)")
    entries = [slot_status(path) for path in slots.list_slots(root)]
    ages = [e["oldest_age_s"] for e in entries if e.get("oldest_age_s") is not None]
    recent = sorted((r for e in entries for r in e.get("recent_dead_letters", [])),
                    key=lambda r: -r.get("deadAt", 0))[:5]
    return {
        "directory": str(root),
        "events": sum(e.get("events", 0) for e in entries),
        "bytes": sum(e.get("bytes", 0) for e in entries),
        "oldest_age_s": max(ages) if ages else None,
        "dead_letters": sum(e.get("dead_letters", 0) for e in entries),
        "recent_dead_letters": recent,
        "slots": entries,
    }


def slot_status(path: Path) -> Dict[str, Any]:
    """One slot: its destination, whether a live process holds it, what waits in it (read-only)."""
    entry: Dict[str, Any] = {"slot": str(path), "held": _held(path)}
    try:
        meta = slots.read_meta(path) or {}
        entry.update(destination=slots.kind_of(meta), apiUrl=meta.get("apiUrl"), keyFingerprint=meta.get("keyFingerprint"))
    except ValueError as exc:
        entry["error"] = str(exc)
    db = path / DB_NAME
    if not db.exists():
        entry.update(events=0, bytes=0, oldest_age_s=None, dead_letters=0)
        return entry
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            events, nbytes, oldest = conn.execute(
                "SELECT count(*), coalesce(sum(nbytes), 0), min(created_at) FROM events").fetchone()
            dead, = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
            last_dead = conn.execute(
                "SELECT event_id, status, message, dead_at FROM dead_letters ORDER BY dead_at DESC LIMIT 5").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        entry.update(events=0, bytes=0, oldest_age_s=None, dead_letters=0,
                     error=f"unreadable database {db.name}: {exc}")
        return entry
    entry.update(events=events, bytes=nbytes, dead_letters=dead,
                 oldest_age_s=round(time.time() - oldest, 1) if oldest else None,
                 recent_dead_letters=[{"eventId": e, "status": s, "message": m, "deadAt": t}
                                      for e, s, m, t in last_dead])
    return entry


def _held(path: Path) -> bool:
    """Whether a live process owns the slot (probing its lock, released at once)."""
    import os

    if not (path / slots.LOCK_NAME).exists():
        return False
    fd = slots.try_lock(path, mark=False)
    if fd is None:
        return True
    os.close(fd)
    return False


def purge_outbox(directory: str) -> int:
    """Delete every slot no live process holds (events, dead letters, images); returns how
    many events were removed. Raises :class:`OutboxLockedError` when every slot is held."""
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no outbox at {root} (no such directory)")
    paths: List[Path] = slots.list_slots(root)
    removed = 0
    held = 0
    for path in paths:
        fd = slots.try_lock(path)
        if fd is None:
            held += 1
            continue
        removed += slot_status(path).get("events", 0)
        slots.remove_slot(path, fd)
    if paths and held == len(paths):
        raise OutboxLockedError(f"the outbox {root} is in use by a running sender; stop it first")
    return removed
