"""Adopting a dead process's slot: its rows and images move into the adopter's own slot.

Images are hard-linked first, then the rows are copied in one transaction, then the orphan
is emptied; the caller holds the orphan's lock throughout and removes it afterwards. A crash
in between leaves copies in both slots, which the next adoption skips by eventId (and the
server upserts by eventId anyway), so an event is never lost and never stored twice.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import List, Tuple

from .slots import DB_NAME, IMAGES_DIR
from .storage import SCHEMA, fsync_dir, write_file_atomically


def migrate(conn: sqlite3.Connection, path: Path, images_dir: Path) -> Tuple[List[tuple], int]:
    """Rows and images of an orphan slot into this one: images linked first, rows copied
    in one transaction, then the orphan emptied. A crash in between leaves copies in both,
    which the next adoption skips by eventId (and the server upserts by eventId anyway)."""
    db = path / DB_NAME
    if not db.exists():
        return [], 0
    conn.execute("ATTACH DATABASE ? AS orphan", (str(db),))
    try:
        conn.executescript(SCHEMA.replace("CREATE TABLE IF NOT EXISTS ", "CREATE TABLE IF NOT EXISTS orphan."))
        new = conn.execute(
            "SELECT event_id, created_at, slots, nbytes FROM orphan.events WHERE event_id NOT IN "
            "(SELECT event_id FROM main.events) ORDER BY seq").fetchall()
        for _, _, slot_rows, _ in new:
            for row in json.loads(slot_rows):
                if row.get("file"):
                    _link_image(path / IMAGES_DIR / row["file"], images_dir / row["file"])
        if new:
            fsync_dir(images_dir)
        conn.execute("BEGIN")
        conn.execute(
            "INSERT OR IGNORE INTO main.events(event_id, body, specs, slots, nbytes, created_at, attempts) "
            "SELECT event_id, body, specs, slots, nbytes, created_at, attempts FROM orphan.events ORDER BY seq")
        conn.execute("INSERT OR IGNORE INTO main.dead_letters SELECT * FROM orphan.dead_letters")
        conn.execute("COMMIT")
        conn.execute("BEGIN")
        conn.execute("DELETE FROM orphan.events")
        conn.execute("DELETE FROM orphan.dead_letters")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("DETACH DATABASE orphan")
    return [(event_id, created_at) for event_id, created_at, _, _ in new], sum(row[3] for row in new)


def _link_image(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except FileNotFoundError:
        pass  # the row's image is gone (a crash before its file was renamed in): sent without it
    except OSError:  # another filesystem: copy instead
        write_file_atomically(target, source.read_bytes())
