"""The durable outbox: events in SQLite (WAL), their images as files, until the server said 2xx.

Layout of an outbox directory (0700; every file 0600)::

    DIR/lock              fcntl lock: one process owns the outbox
    DIR/outbox.sqlite3    events (body, image slots with their sourceIds) and dead letters
    DIR/images/<hex>.jpg  encoded images, written atomically (tmp, fsync, rename)

One writer thread owns the database connection and **group-commits**: it gathers inserts,
sourceId updates and deletes for up to ``commit_interval_s`` (or ``commit_rows`` operations)
and commits them in one transaction, instead of one fsync per event. A row is deleted only
after the server acknowledged the event. When the outbox grows past its byte cap, the oldest
rows go first (counted ``outbox_full``). The same thread calls ``on_idle`` when nothing is
queued, which the sender uses to replay the backlog a chunk at a time.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from .api import OutboxLockedError
from .buffer import ACTIVE, Envelope

logger = logging.getLogger(__name__)

DB_NAME = "outbox.sqlite3"
LOCK_NAME = "lock"
IMAGES_DIR = "images"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    specs TEXT NOT NULL,
    slots TEXT NOT NULL,
    nbytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letters (
    event_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    status INTEGER,
    message TEXT NOT NULL,
    dead_at REAL NOT NULL
);
"""


def _make_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _touch_private(path: Path) -> None:
    """Create the file 0600 before SQLite does, so its -wal/-shm files inherit 0600 too."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def write_file_atomically(path: Path, data: bytes, fsync: bool = True) -> None:
    """tmp file (0600) -> fsync -> rename: a reader never sees half an image."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def lock_directory(directory: Path) -> int:
    """Take the outbox's exclusive lock or raise :class:`OutboxLockedError`; returns the fd."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise OutboxLockedError(
                f"the outbox {directory} is in use by another sender (another process, or another "
                f"destination in this one); give each sender its own outbox directory"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _connect(path: Path, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.executescript(_SCHEMA)
    return conn


class Outbox:
    """One locked outbox directory with its writer thread (see the module docstring)."""

    def __init__(
        self,
        directory: str,
        *,
        max_bytes: int,
        sync: str = "FULL",
        commit_interval_s: float = 0.1,
        commit_rows: int = 200,
        on_persisted: Callable[[List[Envelope]], None] = lambda envs: None,
        on_evicted: Callable[[List[str]], None] = lambda ids: None,
        on_write_failed: Callable[[Envelope, BaseException], None] = lambda env, exc: None,
        on_idle: Callable[[], None] = lambda: None,
    ) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self.max_bytes = max_bytes
        self.sync = sync.upper()
        self.commit_interval_s = commit_interval_s
        self.commit_rows = commit_rows
        self._on_persisted, self._on_evicted = on_persisted, on_evicted
        self._on_write_failed, self._on_idle = on_write_failed, on_idle
        _make_private_dir(self.directory)
        self.images_dir = self.directory / IMAGES_DIR
        _make_private_dir(self.images_dir)
        self._lock_fd: Optional[int] = lock_directory(self.directory)
        try:
            _touch_private(self.directory / DB_NAME)
            self._conn = _connect(self.directory / DB_NAME, self.sync)
            self.rows, self.bytes = self._conn.execute(
                "SELECT count(*), coalesce(sum(nbytes), 0) FROM events").fetchone()
            self._remove_orphan_files()
        except BaseException:
            self._release_lock()
            raise
        self.write_errors = 0
        self._queue: "queue.Queue[tuple]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="vision-events-outbox", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- called by the sender
    def index(self) -> List[tuple]:
        """(event_id, created_at) of every stored event, oldest first (seeds the sender at start)."""
        return self._conn.execute("SELECT event_id, created_at FROM events ORDER BY seq").fetchall()

    def insert(self, env: Envelope) -> None:
        self._queue.put(("insert", env))

    def update_sources(self, env: Envelope) -> None:
        self._queue.put(("sources", env.event_id, json.dumps([s.to_row() for s in env.slots])))

    def delete(self, event_ids: Sequence[str]) -> None:
        self._queue.put(("delete", list(event_ids)))

    def dead_letter(self, env: Envelope, status: Optional[int], message: str) -> None:
        self._queue.put(("dead", env.event_id, json.dumps(env.wire_event()), status, message))

    def barrier(self, timeout: float) -> bool:
        """Wait until everything queued so far is committed."""
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
        """Commit what is queued, stop the writer, release the lock."""
        if self._thread.is_alive():
            self._queue.put(("stop",))
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._conn.close()
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
                    if o[0] == "insert" and o[1].state == ACTIVE:
                        self._on_write_failed(o[1], exc)  # not on disk: delivered from memory instead
                    elif o[0] == "barrier":
                        o[1].set()
            if stop:
                return
            if self._queue.empty():
                self._safe_idle()

    def _safe_idle(self) -> None:
        try:
            self._on_idle()
        except Exception:
            logger.exception("vision-events outbox: replay step failed")

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
                    env = op[1]
                    if env.state != ACTIVE:
                        continue
                    try:
                        nbytes = self._write_images(env)
                    except OSError as exc:
                        self.write_errors += 1
                        self._on_write_failed(env, exc)
                        continue
                    wrote_files = wrote_files or bool(env.slots)
                    if nbytes > self.max_bytes:
                        unlink.extend(s.file for s in env.slots if s.file)
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
            dir_fd = os.open(self.images_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the renames themselves are durable
            finally:
                os.close(dir_fd)
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

    def _write_images(self, env: Envelope) -> int:
        """Write the slots' bytes that are not on disk yet; returns the row's byte cost."""
        total = 0
        for slot in env.slots:
            if slot.file is None and slot.source_id is None and slot.data is not None:
                name = uuid.uuid4().hex + (".png" if slot.content_type == "image/png" else ".jpg")
                write_file_atomically(self.images_dir / name, slot.data, fsync=self.sync == "FULL")
                slot.file = name
            total += slot.size if slot.file else 0
        return total + env.body_size

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
        for (slots,) in self._conn.execute("SELECT slots FROM events"):
            referenced.update(s["file"] for s in json.loads(slots) if s.get("file"))
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


# -------------------------------------------------------------------- tools (CLI, blocks)
def outbox_status(directory: str) -> Dict[str, Any]:
    """Counts, bytes and oldest age of an outbox, read-only (works while a sender owns it)."""
    path = Path(directory).expanduser().resolve()
    db = path / DB_NAME
    if not db.exists():
        raise FileNotFoundError(f"no outbox at {path} (missing {DB_NAME})")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events, nbytes, oldest = conn.execute(
            "SELECT count(*), coalesce(sum(nbytes), 0), min(created_at) FROM events").fetchone()
        dead, = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        last_dead = conn.execute(
            "SELECT event_id, status, message FROM dead_letters ORDER BY dead_at DESC LIMIT 5").fetchall()
    finally:
        conn.close()
    return {
        "directory": str(path),
        "events": events,
        "bytes": nbytes,
        "oldest_age_s": round(time.time() - oldest, 1) if oldest else None,
        "dead_letters": dead,
        "recent_dead_letters": [{"eventId": e, "status": s, "message": m} for e, s, m in last_dead],
    }


def purge_outbox(directory: str) -> int:
    """Delete every stored event, dead letter and image; returns how many events were removed."""
    path = Path(directory).expanduser().resolve()
    if not (path / DB_NAME).exists():
        raise FileNotFoundError(f"no outbox at {path} (missing {DB_NAME})")
    fd = lock_directory(path)
    try:
        conn = _connect(path / DB_NAME, "FULL")
        try:
            removed, = conn.execute("SELECT count(*) FROM events").fetchone()
            conn.execute("DELETE FROM events")
            conn.execute("DELETE FROM dead_letters")
        finally:
            conn.close()
        for image in (path / IMAGES_DIR).iterdir():
            image.unlink(missing_ok=True)
        return removed
    finally:
        os.close(fd)


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


DURABLE_DEFAULT = "auto"  # what a block passes to ask for durable mode without naming a path


def resolve_block_outbox_dir(requested: Optional[str]) -> Optional[str]:
    """Where a workflow block's outbox goes, following inference's storage rules.

    * ``None`` - the block did not ask for durability: ``VISION_EVENTS_OUTBOX_DIR`` if the
      operator set it, else memory mode (``None``).
    * ``""`` or ``"auto"`` - durable mode without a path: ``$WORKFLOW_BLOCKS_WRITE_DIRECTORY/
      vision_events_outbox`` (else ``VISION_EVENTS_OUTBOX_DIR``, else ``~/.cache/vision_events/outbox``).
    * a path - that directory.

    When inference forbids blocks to touch local storage
    (``ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE=false``) durable mode is refused: a
    warning is logged, the refusal is counted (``durable_refused`` in ``stats()``) and
    ``None`` (memory mode) is returned, so the pipeline keeps running.
    """
    env_dir = os.environ.get("VISION_EVENTS_OUTBOX_DIR") or None
    if requested is None:
        directory = env_dir
    elif requested.strip() in ("", DURABLE_DEFAULT):
        write_dir = os.environ.get("WORKFLOW_BLOCKS_WRITE_DIRECTORY")
        if write_dir:
            directory = os.path.join(write_dir, "vision_events_outbox")
        else:
            directory = env_dir or os.path.join(os.path.expanduser("~"), ".cache", "vision_events", "outbox")
    else:
        directory = requested
    if directory is None:
        return None
    if not _env_flag("ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE", True):
        from . import registry

        registry.note_durable_refused(
            f"durable outbox {directory} refused: ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE is false; "
            f"events are kept in memory only")
        return None
    return os.path.abspath(os.path.expanduser(directory))
