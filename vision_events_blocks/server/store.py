"""SQLite storage for the local server.

WAL mode, one writer connection behind a lock (writes are short transactions), and one
reader connection per thread, so several pipelines posting at once never see
``database is locked`` and queries never wait for writes.

Every filterable field of an event has its own indexed column; detection classes and custom
metadata live in child tables (``event_classes``, ``event_metadata``) so that every query
filter is plain indexed SQL. The event itself is kept as its wire JSON (``body``) and
returned in the shape it was sent.
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
import string
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from ..api.models import VisionEvent

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
WORKSPACE_ID = "local-workspace"
_ID_ALPHABET = string.ascii_letters + string.digits

# Event columns that queries filter on, in insert order (after pk).
EVENT_COLUMNS = (
    "event_id", "use_case_id", "ts_us", "event_type", "device_id", "stream_id", "workflow_id",
    "external_id", "result", "location", "item_count", "item_type", "alert_type", "severity",
    "feedback", "image_count", "has_warnings", "body",
)
# Every filterable column has an index (use_case_id, column, ts_us) that also serves the
# newest-first order. The optional ones are partial (NOT NULL): most events carry only two or
# three eventData fields, and indexing the NULLs made ingestion three times slower.
ALWAYS_SET_COLUMNS = ("event_type", "image_count")
OPTIONAL_COLUMNS = (
    "device_id", "stream_id", "workflow_id", "external_id", "result", "location",
    "item_count", "item_type", "alert_type", "severity", "feedback",
)
_INDEXES = "".join(
    [f"CREATE INDEX IF NOT EXISTS events_{c} ON events (use_case_id, {c}, ts_us);" for c in ALWAYS_SET_COLUMNS]
    + [f"CREATE INDEX IF NOT EXISTS events_{c} ON events (use_case_id, {c}, ts_us) WHERE {c} IS NOT NULL;"
       for c in OPTIONAL_COLUMNS]
    + ["CREATE INDEX IF NOT EXISTS events_warned ON events (use_case_id, ts_us) WHERE has_warnings = 1;"]
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS use_cases (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    pk           INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    use_case_id  TEXT NOT NULL,
    ts_us        INTEGER NOT NULL,           -- event timestamp, epoch microseconds UTC
    event_type   TEXT NOT NULL,
    device_id    TEXT, stream_id TEXT, workflow_id TEXT,
    external_id  TEXT, result TEXT, location TEXT, item_count INTEGER, item_type TEXT,
    alert_type   TEXT, severity TEXT, feedback TEXT,
    image_count  INTEGER NOT NULL,
    has_warnings INTEGER NOT NULL,
    body         TEXT NOT NULL,              -- the event's wire JSON, as sent
    received_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_page ON events (use_case_id, ts_us, event_id);
{_INDEXES}
CREATE TABLE IF NOT EXISTS event_classes (
    event_pk INTEGER NOT NULL,
    class    TEXT NOT NULL,
    PRIMARY KEY (event_pk, class)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_classes_class ON event_classes (class, event_pk);
CREATE TABLE IF NOT EXISTS event_metadata (
    event_pk   INTEGER NOT NULL,
    key        TEXT NOT NULL,
    vtype      TEXT NOT NULL CHECK (vtype IN ('string', 'number', 'boolean')),
    text_value TEXT,
    num_value  REAL,                         -- numbers; booleans as 0/1
    PRIMARY KEY (event_pk, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_metadata_num ON event_metadata (key, vtype, num_value);
CREATE INDEX IF NOT EXISTS event_metadata_text ON event_metadata (key, vtype, text_value);
CREATE TABLE IF NOT EXISTS images (
    source_id    TEXT PRIMARY KEY,
    ext          TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    name         TEXT,
    metadata     TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
"""


class NameTaken(Exception):
    """A use case with this name already exists."""


class UseCaseNotFound(Exception):
    """No use case has this id."""


def now_iso() -> str:
    """Current UTC time as ``2024-01-15T10:30:00.000Z``, the docs' format."""
    return iso_millis(datetime.now(timezone.utc))


def iso_millis(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_micros(moment: datetime) -> int:
    """Exact epoch microseconds (no float rounding), so cursors compare exactly."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def cutoff_micros(lookback_days: int, now: Optional[datetime] = None) -> int:
    """Oldest timestamp still inside the retention window."""
    return to_micros((now or datetime.now(timezone.utc)) - timedelta(days=lookback_days))


def new_use_case_id() -> str:
    """20 random letters/digits, like the ids Roboflow hands out."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def new_source_id() -> str:
    return f"ve-img-{secrets.token_hex(12)}"


@dataclass(frozen=True)
class EventRow:
    """One event flattened into its columns and child rows."""

    values: Tuple[Any, ...]                         # EVENT_COLUMNS, in order
    classes: Tuple[str, ...]                        # distinct detection classes
    metadata: Tuple[Tuple[str, str, Optional[str], Optional[float]], ...]  # key, vtype, text, num

    @property
    def event_id(self) -> str:
        return self.values[0]


def metadata_rows(metadata: Dict[str, Any]) -> Tuple[Tuple[str, str, Optional[str], Optional[float]], ...]:
    rows = []
    for key, value in metadata.items():
        if isinstance(value, bool):
            rows.append((key, "boolean", None, float(value)))
        elif isinstance(value, (int, float)):
            rows.append((key, "number", None, float(value)))
        else:
            rows.append((key, "string", str(value), None))
    return tuple(rows)


def wire_as_sent(event: VisionEvent) -> Dict[str, Any]:
    """The event's JSON with only the keys the client sent (timestamp normalised to UTC)."""
    body = event.model_dump(mode="json", by_alias=True, exclude_unset=True)
    body.setdefault("eventData", {})
    return body


def image_ids(event: VisionEvent) -> Set[str]:
    """Every image id the event refers to (the shown image and the annotated input)."""
    return {i for image in event.images for i in (image.source_id, image.input_source_id) if i}


def event_row(event: VisionEvent, known_images: Set[str]) -> EventRow:
    """Flatten a validated event; an image id never uploaded here marks it ``has_warnings``."""
    data = event.event_data
    classes = sorted({c for image in event.images for c in image.detection_classes()})
    values = (
        event.event_id, event.use_case_id, to_micros(event.timestamp), event.event_type,
        event.device_id, event.stream_id, event.workflow_id,
        getattr(data, "external_id", None), getattr(data, "result", None), getattr(data, "location", None),
        getattr(data, "item_count", None), getattr(data, "item_type", None), getattr(data, "alert_type", None),
        getattr(data, "severity", None), getattr(data, "feedback", None),
        len(event.images), int(bool(image_ids(event) - known_images)),
        json.dumps(wire_as_sent(event), separators=(",", ":")),
    )
    return EventRow(values, tuple(classes), metadata_rows(event.custom_metadata))


class Store:
    """The server's database and image directory under ``data_dir``."""

    def __init__(self, data_dir: os.PathLike | str) -> None:
        self.data_dir = Path(data_dir)
        self.images_dir = self.data_dir / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "vision-events.sqlite3"
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: List[sqlite3.Connection] = []
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MB: the indexes of 100k+ events stay in memory
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._write_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")

    def read(self, sql: str, params: Sequence[Any] = ()) -> List[sqlite3.Row]:
        return self._reader().execute(sql, params).fetchall()

    def close(self) -> None:
        for conn in self._readers:
            conn.close()
        self._writer.close()

    # -- use cases ---------------------------------------------------------------------------
    def create_use_case(self, name: str) -> Dict[str, Any]:
        stamp = now_iso()
        row = {"id": new_use_case_id(), "name": name, "status": "active", "created_at": stamp, "updated_at": stamp}
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO use_cases (id, name, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    tuple(row.values()),
                )
        except sqlite3.IntegrityError:
            raise NameTaken(name) from None
        return row

    def get_use_case(self, use_case_id: str) -> Optional[Dict[str, Any]]:
        rows = self.read("SELECT * FROM use_cases WHERE id = ?", (use_case_id,))
        return dict(rows[0]) if rows else None

    def list_use_cases(self, status: str, cutoff_us: int) -> List[Dict[str, Any]]:
        """Use cases with this status, with their retained event count."""
        rows = self.read(
            """SELECT u.*, (SELECT count(*) FROM events e WHERE e.use_case_id = u.id AND e.ts_us >= ?) AS event_count
               FROM use_cases u WHERE u.status = ? ORDER BY u.created_at, u.id""",
            (cutoff_us, status),
        )
        return [dict(r) for r in rows]

    def update_use_case(self, use_case_id: str, name: Optional[str], status: Optional[str]) -> Dict[str, Any]:
        try:
            with self._transaction() as db:
                row = db.execute("SELECT * FROM use_cases WHERE id = ?", (use_case_id,)).fetchone()
                if row is None:
                    raise UseCaseNotFound(use_case_id)
                updated = dict(row)
                updated.update({k: v for k, v in (("name", name), ("status", status)) if v is not None})
                updated["updated_at"] = now_iso()
                db.execute(
                    "UPDATE use_cases SET name = ?, status = ?, updated_at = ? WHERE id = ?",
                    (updated["name"], updated["status"], updated["updated_at"], use_case_id),
                )
        except sqlite3.IntegrityError:
            raise NameTaken(name) from None
        return updated

    def active_use_case_ids(self, ids: Iterable[str]) -> Set[str]:
        ids = list(set(ids))
        marks = ",".join("?" * len(ids))
        rows = self.read(f"SELECT id FROM use_cases WHERE status = 'active' AND id IN ({marks})", ids)
        return {r["id"] for r in rows}

    # -- events ------------------------------------------------------------------------------
    def put_events(self, rows: Sequence[EventRow]) -> None:
        """Insert or overwrite (same ``eventId``) every event in one transaction."""
        columns = ", ".join(EVENT_COLUMNS)
        marks = ", ".join("?" * (len(EVENT_COLUMNS) + 1))
        updates = ", ".join(f"{c} = excluded.{c}" for c in EVENT_COLUMNS[1:] + ("received_at",))
        upsert = (
            f"INSERT INTO events ({columns}, received_at) VALUES ({marks}) "
            f"ON CONFLICT (event_id) DO UPDATE SET {updates} RETURNING pk"
        )
        received = now_iso()
        with self._transaction() as db:
            for row in rows:
                pk = db.execute(upsert, row.values + (received,)).fetchone()[0]
                db.execute("DELETE FROM event_classes WHERE event_pk = ?", (pk,))
                db.execute("DELETE FROM event_metadata WHERE event_pk = ?", (pk,))
                db.executemany("INSERT INTO event_classes VALUES (?, ?)", [(pk, c) for c in row.classes])
                db.executemany("INSERT INTO event_metadata VALUES (?, ?, ?, ?, ?)", [(pk,) + m for m in row.metadata])

    def purge_before(self, cutoff_us: int, chunk: int = 2000) -> int:
        """Delete events older than the retention window, in short transactions (ingestion
        never waits long); returns how many were deleted. Uploaded images are kept."""
        deleted = 0
        while True:
            with self._transaction() as db:
                pks = [r[0] for r in db.execute("SELECT pk FROM events WHERE ts_us < ? LIMIT ?", (cutoff_us, chunk))]
                if not pks:
                    return deleted
                marks = ",".join("?" * len(pks))
                for table, column in (("event_classes", "event_pk"), ("event_metadata", "event_pk"), ("events", "pk")):
                    db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", pks)
            deleted += len(pks)

    def metadata_schema(self, use_case_id: str, cutoff_us: int) -> Dict[str, List[str]]:
        """Metadata keys seen in the use case's retained events, with their value types."""
        rows = self.read(
            """SELECT DISTINCT m.key, m.vtype FROM event_metadata m JOIN events e ON e.pk = m.event_pk
               WHERE e.use_case_id = ? AND e.ts_us >= ? ORDER BY m.key, m.vtype""",
            (use_case_id, cutoff_us),
        )
        fields: Dict[str, List[str]] = {}
        for r in rows:
            fields.setdefault(r["key"], []).append(r["vtype"])
        return fields

    # -- images ------------------------------------------------------------------------------
    def save_image(self, content: bytes, ext: str, content_type: str, name: Optional[str], metadata: Dict[str, Any],
                   source_id: Optional[str] = None) -> str:
        """Write the file atomically under a server-made name; return its ``sourceId``."""
        source_id = source_id or new_source_id()
        final = self.images_dir / f"{source_id}.{ext}"
        partial = final.with_suffix(".part")
        partial.write_bytes(content)
        os.replace(partial, final)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?)",
                (source_id, ext, content_type, len(content), name, json.dumps(metadata), now_iso()),
            )
        return source_id

    def image_exts(self, source_ids: Iterable[str]) -> Dict[str, str]:
        ids = list(set(source_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.read(f"SELECT source_id, ext FROM images WHERE source_id IN ({marks})", ids)
        return {r["source_id"]: r["ext"] for r in rows}

    def image_file(self, source_id: str) -> Optional[Tuple[Path, str]]:
        rows = self.read("SELECT ext, content_type FROM images WHERE source_id = ?", (source_id,))
        if not rows:
            return None
        return self.images_dir / f"{source_id}.{rows[0]['ext']}", rows[0]["content_type"]
