"""The sender's disk side: its outbox slot (or why it has none), replay of the backlog, adoption.

A backlog on disk — the sender's own slot reused after a restart, or a dead process's slot
it adopted — is known at first only as *markers* (eventId, age) in the ledger, so ``stats()``
and ``flush`` count it at once; the events themselves are loaded a chunk at a time on the
outbox writer's idle moments, only while memory allows, so a large backlog never spikes memory.

When the outbox cannot be opened (read-only or missing directory, full disk, permissions, a
database that cannot be repaired) the sender runs in memory mode: one log line per reason,
a counter in ``stats()["durability"]``, and the pipeline carries on.
"""
from __future__ import annotations

import errno
import json
import logging
import sqlite3
from collections import Counter
from typing import Any, Dict, List, Optional

from .envelope import Envelope, ImageSlot, Phase
from .outbox import Outbox

logger = logging.getLogger("vision_events_blocks.delivery")

_REPLAY_RESIDENT_LIMIT = 2000  # replay stops loading while this many events are in memory
_logged_reasons: set = set()


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.DatabaseError):
        return "database_unusable"
    if isinstance(exc, OSError):
        return {errno.EROFS: "read_only", errno.ENOSPC: "disk_full", errno.EACCES: "permission_denied",
                errno.EPERM: "permission_denied", errno.ENOENT: "missing_directory",
                errno.ENOTDIR: "not_a_directory"}.get(exc.errno or 0, "os_error")
    return type(exc).__name__


class Durability:
    def __init__(self, sender: Any) -> None:
        self._sender = sender
        self.outbox: Optional[Outbox] = None
        self.failures: Counter = Counter()
        self._cursor = 0
        self._wanted = self._restart = False
        if sender.config.outbox_dir:
            self._open(sender.config.outbox_dir)
        sender._budget.durable = self.outbox is not None

    # ---------------------------------------------------------------- opening
    def _open(self, root: str) -> None:
        sender, cfg = self._sender, self._sender.config
        try:
            self.outbox = Outbox(
                root, sender.destination.identity(),
                max_bytes=cfg.outbox_max_bytes, sync=cfg.outbox_sync,
                commit_interval_s=cfg.outbox_commit_interval_s, commit_rows=cfg.outbox_commit_rows,
                adopt_interval_s=cfg.adopt_interval_s, adopt_any_slot=cfg.adopt_any_slot,
                on_persisted=self._persisted, on_evicted=self._outbox_evicted,
                on_write_failed=self._write_failed, on_adopted=self._seed, on_idle=self._replay_step)
        except Exception as exc:  # noqa: BLE001 - any disk trouble: memory mode, never a stopped pipeline
            reason = _failure_reason(exc)
            self.failures[reason] += 1
            if reason not in _logged_reasons:
                _logged_reasons.add(reason)
                logger.warning("vision-events: durable outbox %s unavailable (%s: %s); events for %s are kept "
                               "in memory only", root, reason, exc, sender.label)
            return
        self._seed(self.outbox.index())

    def _seed(self, rows: List[tuple]) -> None:
        """Markers for events on disk (own backlog at start, or adopted from a dead process)."""
        ledger = self._sender._ledger
        added = 0
        with ledger.lock:
            for event_id, created_at in rows:
                if event_id in ledger.live:
                    continue
                marker = Envelope(event_id=event_id, seq=next(self._sender._seq), created_at=created_at,
                                  phase=Phase.SPILLED, persisted=True)
                ledger.live[event_id] = marker
                ledger.last_seq = marker.seq
                added += 1
            ledger.counts["replayed"] += added
            self._wanted = self._wanted or bool(added)
        if added and self.outbox is not None:
            logger.info("vision-events: %d event(s) waiting in the outbox %s; replaying", added, self.outbox.directory)

    # ---------------------------------------------------------------- writer-thread callbacks
    def _persisted(self, envs: List[Envelope]) -> None:
        """Rows are committed; images now live on disk, not in memory."""
        sender = self._sender
        for env in envs:
            env.persisted = True
            for slot in env.slots:
                if slot.file:
                    slot.data = None
            sender._budget.resize(env, env.body_size)
            sender._budget.unclaim(env, Phase.READY_TO_UPLOAD)
            if env.phase.live:
                sender._to_upload(env)

    def _outbox_evicted(self, event_ids: List[str]) -> None:
        from . import api

        sender = self._sender
        for event_id in event_ids:
            env = sender._ledger.live.get(event_id)
            if env is not None:
                sender._budget.unclaim(env, Phase.READY_TO_UPLOAD)
                sender._finish(env, "dropped", api.DROP_OUTBOX_FULL, reason=api.DROP_OUTBOX_FULL)

    def _write_failed(self, env: Envelope, exc: BaseException) -> None:
        """Disk trouble: keep delivering this event from memory rather than losing it."""
        reason = _failure_reason(exc)
        self.failures[f"write_{reason}"] += 1
        if f"write_{reason}" not in _logged_reasons:
            _logged_reasons.add(f"write_{reason}")
            logger.warning("vision-events: outbox write failed (%s: %s); events are delivered from memory meanwhile",
                           reason, exc)
        self._sender._note_error(f"outbox write failed, event kept in memory: {type(exc).__name__}: {exc}")
        self._sender._budget.unclaim(env, Phase.READY_TO_UPLOAD)
        self._sender._to_upload(env)

    def spilled(self) -> None:
        """The budget moved a persisted event out of memory: replay must look behind its cursor."""
        self._wanted = self._restart = True

    # ---------------------------------------------------------------- replay
    def _replay_step(self) -> None:
        """Writer thread, when idle: load chunks of the backlog that is not in memory."""
        if not self._wanted or self.outbox is None or self._sender._scheduler.stopping:
            return
        for _ in range(20):  # up to 20 chunks per idle moment, while memory allows
            if not self._replay_chunk():
                return

    def _replay_chunk(self) -> bool:
        """Load one chunk; False when there is nothing more to load now."""
        sender = self._sender
        budget, ledger = sender._budget, sender._ledger
        if len(budget) >= _REPLAY_RESIDENT_LIMIT or budget.used > budget.cap // 2:
            return False  # throttled: let memory drain first
        if self._restart:  # something was spilled behind the cursor
            self._cursor, self._restart = 0, False
        rows = self.outbox.load_chunk(self._cursor, sender.config.replay_chunk)
        if not rows:
            self._wanted = self._restart
            return False
        for row in rows:
            self._cursor = row["seq"]
            with ledger.lock:
                marker = ledger.live.get(row["event_id"])
                if marker is None or marker.phase is not Phase.SPILLED:
                    continue  # decided meanwhile, or already in memory
                env = _from_row(row, marker.seq)
                ledger.live[env.event_id] = env  # same key: keeps its place (oldest first)
            if not budget.adopt(env, env.body_size):
                env.phase = Phase.SPILLED
                self._cursor = row["seq"] - 1
                return False
            sender._to_upload(env)
        return True

    # ---------------------------------------------------------------- lifecycle and stats
    def forget_after_fork(self) -> None:
        if self.outbox is not None:
            self.outbox.forget_after_fork()

    def close(self, timeout: float) -> None:
        if self.outbox is not None:
            self.outbox.close(timeout=timeout)

    def describe(self) -> Dict[str, Any]:
        outbox = self.outbox
        info: Dict[str, Any] = {"mode": "disk" if outbox else "memory", "failures": dict(self.failures)}
        if outbox is not None:
            info.update(slot=str(outbox.directory), adopted_slots=outbox.adopted_slots,
                        adopted_events=outbox.adopted_events, set_aside=outbox.set_aside,
                        foreign_slots=len(outbox.foreign_slots))
        return info


def _from_row(row: Dict[str, Any], seq: int) -> Envelope:
    env = Envelope(event_id=row["event_id"], seq=seq, body=json.loads(row["body"]), created_at=row["created_at"],
                   image_specs=json.loads(row["specs"]), slots=[ImageSlot.from_row(s) for s in json.loads(row["slots"])],
                   persisted=True, attempts=row["attempts"], phase=Phase.READY_TO_UPLOAD)
    env.body_size = len(row["body"]) + len(row["specs"])
    return env
