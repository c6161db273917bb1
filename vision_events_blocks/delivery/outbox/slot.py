"""One outbox slot: events in SQLite (WAL), their images as files, until the server said 2xx.

Image files are written by a few file-writer threads (fsync waits overlap, and the sender's
encoders never wait on the disk); each event's row is queued once its files are in place. One
writer thread owns the database connection and **group-commits**: it gathers inserts,
sourceId updates and deletes for up to ``commit_interval_s`` (or ``commit_rows`` operations)
and commits them in one transaction, instead of one fsync per event. A row is deleted only
after the server acknowledged the event. When the outbox grows past its byte cap, the oldest
rows go first (counted ``outbox_full``). When nothing is queued the same thread calls
``on_idle`` (the sender replays its backlog a chunk at a time) and, every
``adopt_interval_s``, adopts the slots of dead processes (:mod:`.slots`).

Disk writes per event: its image files (write, fsync, rename: one per image), one row
inserted and later deleted in group commits (one WAL fsync per commit, not per event), and
one directory fsync per commit that wrote files. ``sync="NORMAL"`` skips the fsyncs
(survives a crash of the process, not a power cut).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from ..envelope import Envelope
from . import slots
from .adoption import migrate
from .files import ImageFiles
from .storage import connect, fsync_dir, touch_private
from .tools import slot_status
from .slots import DB_NAME, IMAGES_DIR

logger = logging.getLogger("vision_events_blocks.delivery")


class Outbox:
    """One locked outbox directory with its writer thread (see the module docstring)."""

    def __init__(
        self,
        root: str,
        destination: Dict[str, str],
        *,
        max_bytes: int,
        sync: str = "FULL",
        commit_interval_s: float = 0.1,
        commit_rows: int = 200,
        adopt_interval_s: float = 15.0,
        adopt_any_slot: bool = False,
        on_persisted: Callable[[List[Envelope]], None] = lambda envs: None,
        on_evicted: Callable[[List[str]], None] = lambda ids: None,
        on_write_failed: Callable[[Envelope, BaseException], None] = lambda env, exc: None,
        on_adopted: Callable[[List[tuple]], None] = lambda rows: None,
        on_idle: Callable[[], None] = lambda: None,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.destination = destination
        self.max_bytes = max_bytes
        self.sync = sync.upper()
        self.commit_interval_s = commit_interval_s
        self.commit_rows = commit_rows
        self.adopt_interval_s = adopt_interval_s
        self.adopt_any_slot = adopt_any_slot
        self.foreign_slots: List[str] = []  # free slots left for another destination (see slots.adoptable)
        self._on_persisted, self._on_evicted = on_persisted, on_evicted
        self._on_write_failed, self._on_idle, self._on_adopted = on_write_failed, on_idle, on_adopted
        self.write_errors = 0
        self.adopted_slots = 0
        self.adopted_events = 0
        self.set_aside = 0  # unusable slots moved out of the way (corrupt database, bad meta)
        self._open_own_slot()
        self._key_refused = bool((slots.read_meta(self.directory) or {}).get(slots.KEY_REFUSED))
        self.adopt_orphans()  # before the first flush or status can look: the backlog is known at once
        self._next_adoption = time.monotonic() + adopt_interval_s
        self._queue: "queue.Queue[tuple]" = queue.Queue()
        self._files = ImageFiles(self.images_dir, self.sync == "FULL", self._file_written, self._file_failed)
        self._thread = threading.Thread(target=self._run, name="vision-events-outbox", daemon=True)
        self._thread.start()

    def _open_own_slot(self) -> None:
        """Claim a slot; a reused one with a corrupt database is set aside and another taken."""
        for _ in range(3):
            self.directory, self._lock_fd = slots.claim_slot(self.root, self.destination)
            self.images_dir = self.directory / IMAGES_DIR
            try:
                slots.make_private_dir(self.images_dir)
                touch_private(self.directory / DB_NAME)
                self._conn = connect(self.directory / DB_NAME, self.sync)
                self.rows, self.bytes = self._conn.execute(
                    "SELECT count(*), coalesce(sum(nbytes), 0) FROM events").fetchone()
                self._remove_orphan_files()
                return
            except sqlite3.DatabaseError as exc:
                self._release_lock()
                if slots.set_aside(self.directory, f"database: {exc}") is None:
                    raise
                self.set_aside += 1
            except BaseException:
                self._release_lock()
                raise
        raise sqlite3.DatabaseError(f"no usable outbox slot under {self.root}")

    # ---------------------------------------------------------------- called by the sender
    def index(self) -> List[tuple]:
        """(event_id, created_at) of every stored event, oldest first (seeds the sender at start)."""
        return self._conn.execute("SELECT event_id, created_at FROM events ORDER BY seq").fetchall()

    def insert(self, env: Envelope) -> None:
        """Hand the event to the file writers (:mod:`.files`); its row is queued for the next
        group commit once its images are on disk."""
        self._files.put(env)

    def _file_written(self, env: Envelope, files: List[str]) -> None:
        self._queue.put(("insert", env, files))

    def _file_failed(self, env: Envelope, exc: OSError) -> None:
        self.write_errors += 1
        self._on_write_failed(env, exc)  # not on disk: delivered from memory instead

    def update_sources(self, env: Envelope) -> None:
        self._queue.put(("sources", env.event_id, json.dumps([s.to_row() for s in env.slots])))

    def delete(self, event_ids: Sequence[str]) -> None:
        self._queue.put(("delete", list(event_ids)))

    def dead_letter(self, env: Envelope, status: Optional[int], message: str) -> None:
        self._queue.put(("dead", env.event_id, json.dumps(env.wire_event()), status, message))

    def note_key_refused(self, refused: bool) -> None:
        """Record whether the server refuses this slot's key, so that after a restart a sender
        with a corrected key adopts the backlog (see :func:`.slots.adoptable`). Written only
        when it changes."""
        if refused == self._key_refused:
            return
        self._key_refused = refused
        try:
            slots.mark_key_refused(self.directory, refused)
        except (OSError, ValueError) as exc:
            logger.warning("vision-events outbox: cannot record the key's state in %s: %s", self.directory, exc)

    def barrier(self, timeout: float) -> bool:
        """Wait until everything queued so far is committed (its files written first)."""
        deadline = time.monotonic() + timeout
        self._files.wait_idle(timeout)
        timeout = max(0.0, deadline - time.monotonic())
        done = threading.Event()
        self._queue.put(("barrier", done))
        return done.wait(timeout)

    def load_chunk(self, after_seq: int, limit: int) -> List[Dict[str, Any]]:
        """Rows after ``after_seq`` (writer thread only: called from ``on_idle``)."""
        cursor = self._conn.execute(
            "SELECT seq, event_id, body, specs, slots, created_at, attempts FROM events "
            "WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def read_image(self, file: str) -> bytes:
        return (self.images_dir / file).read_bytes()

    def close(self, timeout: float = 5.0) -> None:
        """Commit what is queued, stop the writer, release the lock; an empty slot is removed
        (so directories do not pile up as workers come and go)."""
        self._files.stop(timeout)  # what they hold reaches the writer queue first
        if self._thread.is_alive():
            self._queue.put(("stop",))
            self._thread.join(timeout)
        empty = False
        if not self._thread.is_alive():
            try:
                empty = self.rows == 0 and not self._conn.execute("SELECT 1 FROM dead_letters LIMIT 1").fetchone()
            except sqlite3.Error:
                empty = False
            self._conn.close()
        if empty and self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            slots.remove_slot(self.directory, fd)
        self._release_lock()

    # ---------------------------------------------------------------- the writer thread
    def _run(self) -> None:
        while True:
            try:
                op = self._queue.get(timeout=0.2)
            except queue.Empty:
                self._safe_idle()
                continue
            ops = [op]
            deadline = time.monotonic() + self.commit_interval_s
            while op[0] not in ("stop", "barrier") and len(ops) < self.commit_rows:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    op = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                ops.append(op)
            try:
                stop = self._apply(ops)
            except Exception as exc:  # a disk error must not kill the writer: log and keep going
                logger.warning("vision-events outbox: a group commit failed: %s", exc)
                self.write_errors += 1
                stop = any(o[0] == "stop" for o in ops)
                for o in ops:
                    if o[0] == "insert":
                        self._files.forget(o[1], o[2])
                        if o[1].phase.live:
                            self._on_write_failed(o[1], exc)  # not on disk: delivered from memory instead
                    elif o[0] == "barrier":
                        o[1].set()
            if stop:
                return
            if self._queue.empty():
                self._safe_idle()

    def _safe_idle(self) -> None:
        try:
            if time.monotonic() >= self._next_adoption:
                self._next_adoption = time.monotonic() + self.adopt_interval_s
                self.adopt_orphans()
            self._on_idle()
        except Exception:
            logger.exception("vision-events outbox: replay or adoption step failed")

    # ---------------------------------------------------------------- adopting dead slots
    def adopt_orphans(self) -> int:
        """Move the backlog of every orphan slot into this one (at start, then on the writer
        thread). Returns how many events were adopted."""
        adopted = 0
        foreign: List[Path] = []
        for path, fd in slots.orphans(self.root, self.directory, self.destination, any_of_kind=self.adopt_any_slot,
                                      foreign=foreign):
            try:
                rows, nbytes = migrate(self._conn, path, self.images_dir)
            except sqlite3.DatabaseError as exc:
                os.close(fd)
                if slots.set_aside(path, f"database: {exc}") is not None:
                    self.set_aside += 1
                continue
            except BaseException:
                os.close(fd)
                raise
            slots.remove_slot(path, fd)
            self.rows += len(rows)
            self.bytes += nbytes
            if rows:
                self.adopted_slots += 1
                self.adopted_events += len(rows)
                adopted += len(rows)
                logger.info("vision-events: adopted %d event(s) from %s", len(rows), path)
                self._on_adopted(rows)
        self._note_foreign(foreign)
        return adopted

    def _note_foreign(self, found: List[Path]) -> None:
        """Say once per slot that a free slot waits for another destination (never silent)."""
        waiting = {}
        for path in found:
            status = slot_status(path)
            if not status["held"] and status.get("events"):
                waiting[str(path)] = status
        for name, status in waiting.items():
            if name not in self.foreign_slots:
                logger.warning("vision-events: outbox slot %s holds %d event(s) for %s key:%s, not this sender's "
                               "destination; they wait for a sender of that destination (or for "
                               "`vision-events outbox flush --dir %s` with its URL and key)",
                               name, status["events"], status.get("apiUrl"), status.get("keyFingerprint"), self.root)
        self.foreign_slots = list(waiting)

    def _apply(self, ops: List[tuple]) -> bool:
        inserted: List[Envelope] = []
        evicted: List[str] = []
        unlink: List[str] = []
        barriers: List[threading.Event] = []
        wrote_files = False
        stop = False
        conn = self._conn
        conn.execute("BEGIN")
        try:
            for op in ops:
                kind = op[0]
                if kind == "insert":
                    _, env, files = op
                    if not env.phase.live:  # decided meanwhile (dropped, superseded): no row, no files
                        unlink.extend(files)
                        continue
                    wrote_files = wrote_files or bool(files)
                    nbytes = env.body_size + sum(slot.size for slot in env.slots if slot.file)
                    if nbytes > self.max_bytes:
                        unlink.extend(files)
                        evicted.append(env.event_id)
                        continue
                    self._delete_rows([env.event_id], unlink)  # a resubmitted eventId replaces its row
                    evicted.extend(self._make_room(nbytes, unlink))
                    conn.execute(
                        "INSERT INTO events(event_id, body, specs, slots, nbytes, created_at, attempts)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (env.event_id, json.dumps(env.body), json.dumps(env.image_specs),
                         json.dumps([s.to_row() for s in env.slots]), nbytes, env.created_at, env.attempts))
                    self.rows += 1
                    self.bytes += nbytes
                    inserted.append(env)
                elif kind == "sources":
                    conn.execute("UPDATE events SET slots = ? WHERE event_id = ?", (op[2], op[1]))
                elif kind == "delete":
                    self._delete_rows(op[1], unlink)
                elif kind == "dead":
                    _, event_id, body, status, message = op
                    conn.execute(
                        "INSERT OR REPLACE INTO dead_letters(event_id, body, status, message, dead_at) VALUES (?, ?, ?, ?, ?)",
                        (event_id, body, status, message, time.time()))
                    self._delete_rows([event_id], unlink)
                elif kind == "barrier":
                    barriers.append(op[1])
                elif kind == "stop":
                    stop = True
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                conn.execute("ROLLBACK")
            raise
        if wrote_files and self.sync == "FULL":
            fsync_dir(self.images_dir)  # the renames themselves are durable
        for name in unlink:
            try:
                os.unlink(self.images_dir / name)
            except FileNotFoundError:
                pass
        if inserted:
            self._on_persisted(inserted)
        if evicted:
            self._on_evicted(evicted)
        for barrier in barriers:
            barrier.set()
        return stop

    def _make_room(self, nbytes: int, unlink: List[str]) -> List[str]:
        """Delete the oldest rows until ``nbytes`` more fit under the cap; their ids."""
        evicted: List[str] = []
        while self.bytes + nbytes > self.max_bytes and self.rows > 0:
            oldest = self._conn.execute("SELECT event_id FROM events ORDER BY seq LIMIT 32").fetchall()
            if not oldest:
                break
            for (event_id,) in oldest:
                if self.bytes + nbytes <= self.max_bytes:
                    break
                self._delete_rows([event_id], unlink)
                evicted.append(event_id)
        return evicted

    def _delete_rows(self, event_ids: Iterable[str], unlink: List[str]) -> None:
        for event_id in event_ids:
            row = self._conn.execute("SELECT nbytes, slots FROM events WHERE event_id = ?", (event_id,)).fetchone()
            if row is None:
                continue
            self._conn.execute("DELETE FROM events WHERE event_id = ?", (event_id,))
            self.rows -= 1
            self.bytes -= row[0]
            unlink.extend(s["file"] for s in json.loads(row[1]) if s.get("file"))

    def _remove_orphan_files(self) -> None:
        """Files from a crash between writing an image and committing its row."""
        referenced = set()
        for (slot_rows,) in self._conn.execute("SELECT slots FROM events"):
            referenced.update(s["file"] for s in json.loads(slot_rows) if s.get("file"))
        for path in self.images_dir.iterdir():
            if path.name not in referenced:
                path.unlink(missing_ok=True)

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited lock descriptor (the parent keeps its lock)."""
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None


