"""Many processes, one outbox directory: each sender owns a *slot* of its own.

Layout of an outbox directory (0700; every file 0600)::

    ROOT/slot-<hex>/lock            fcntl lock held by the owning process (its pid inside)
    ROOT/slot-<hex>/meta.json       the destination: API URL and key *fingerprint* (never the key)
    ROOT/slot-<hex>/outbox.sqlite3  events and dead letters (see :mod:`.slot`)
    ROOT/slot-<hex>/images/         encoded images

A uvicorn/gunicorn worker, an InferencePipeline script, a forked child: each sender takes a
free slot of its destination (a slot left by a dead process, with its backlog) or makes a new
one. A new slot is built under a dot-name and renamed into place only once it is locked, so
no one can take it half-made. ``flock`` dies with its process, so a lock left by a process
that crashed (even a ``lock`` file naming a dead pid) is simply free.

A slot whose lock is free and that holds events is an **orphan**: a live sender adopts it (at
start and then periodically), moving its rows and images into its own slot and removing it,
all while holding the orphan's lock, so exactly one process ever delivers them. Only a sender
that may deliver that backlog adopts it (:func:`adoptable`): one with the same key (a restart
with a corrected URL delivers it), or with the same URL when the server refused the slot's key
(marked ``keyRefused`` in its meta: a corrected key delivers it). Never another workspace's:
the inference HTTP server serves requests with many workspaces' keys from one default outbox
directory, and one workspace's events must not be sent with another's key. A slot left for
another destination is logged once, counted (``foreign_slots``) and shown by ``vision-events
outbox status``; ``vision-events outbox flush`` delivers it on request. A sender never adopts
another kind's slot (bundles of an air-gapped site must not go to a cloud). An outbox written
by version 0.1, where the directory itself was the one slot, is adopted by any cloud sender.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..api import OutboxLockedError
from .storage import write_file_atomically

logger = logging.getLogger("vision_events_blocks.delivery")

DB_NAME = "outbox.sqlite3"
LOCK_NAME = "lock"
META_NAME = "meta.json"
KEY_REFUSED = "keyRefused"  # meta: the server refused this slot's key (401/403)
IMAGES_DIR = "images"
SLOT_PREFIX = "slot-"
_NEW_PREFIX = ".new-"
_CORRUPT_PREFIX = "corrupt-"
_STALE_NEW_S = 3600.0


def make_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def try_lock(path: Path, *, mark: bool = True) -> Optional[int]:
    """The slot's lock as an open descriptor, or None when a live process holds it; ``mark``
    writes this process's pid into the lock file (a mere probe leaves it as it was)."""
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        return None  # the slot was removed meanwhile (adopted by someone else)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    if mark:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def lock_or_raise(path: Path) -> int:
    fd = try_lock(path)
    if fd is None:
        raise OutboxLockedError(f"the outbox slot {path} is in use by another process")
    return fd


def read_meta(path: Path) -> Optional[Dict[str, str]]:
    """The slot's destination; None for a 0.1 outbox (no meta) — raises ValueError when unreadable."""
    try:
        return json.loads((path / META_NAME).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable {path / META_NAME}: {exc}") from None


def slot_dirs(root: Path) -> Iterator[Path]:
    """Every slot of ``root``, oldest name first (a 0.1 outbox at the root counts as one)."""
    if (root / DB_NAME).exists():
        yield root
    try:
        names = sorted(p.name for p in root.iterdir() if p.name.startswith(SLOT_PREFIX) and p.is_dir())
    except FileNotFoundError:
        return
    for name in names:
        yield root / name


def kind_of(meta: Optional[Dict[str, str]]) -> str:
    """The slot's destination kind: ``cloud`` (meta without one, or a 0.1 outbox), ``event_store``, ``bundle``."""
    return (meta or {}).get("destination") or "cloud"


def matches(path: Path, destination: Dict[str, str]) -> bool:
    """Whether a slot belongs to ``destination`` (a slot without meta belongs to any cloud sender)."""
    meta = read_meta(path)
    if kind_of(meta) != kind_of(destination):
        return False
    return meta is None or (meta.get("apiUrl"), meta.get("keyFingerprint")) == (
        destination["apiUrl"], destination["keyFingerprint"])


def claim_slot(root: Path, destination: Dict[str, str]) -> Tuple[Path, int]:
    """A slot of ``destination`` for this process: a free existing one, else a new one."""
    make_private_dir(root)
    _remove_stale_new(root)
    for path in slot_dirs(root):
        if path == root:
            continue  # a 0.1 outbox is adopted, not reused: its layout differs
        try:
            if read_meta(path) is None or not matches(path, destination):
                continue
        except ValueError:
            continue
        fd = try_lock(path)
        if fd is not None:
            if path.exists():
                return path, fd
            os.close(fd)
    new = root / f"{_NEW_PREFIX}{uuid.uuid4().hex[:12]}"
    make_private_dir(new)
    fd = lock_or_raise(new)
    (new / META_NAME).write_text(json.dumps({**destination, "createdBy": os.getpid(), "createdAt": time.time()}))
    os.chmod(new / META_NAME, 0o600)
    final = root / f"{SLOT_PREFIX}{new.name[len(_NEW_PREFIX):]}"
    os.rename(new, final)
    return final, fd


def orphans(root: Path, own: Path, destination: Dict[str, str], *, any_of_kind: bool = False,
            foreign: Optional[List[Path]] = None) -> Iterator[Tuple[Path, int]]:
    """Slots (other than ``own``) that ``destination`` may adopt (see :func:`adoptable`) and that
    no live process holds, locked for the caller, who must close the descriptor. Slots with
    unreadable meta are set aside (logged). ``any_of_kind`` (an explicit ``outbox flush``) takes
    every slot of the kind; otherwise the paths of slots left for another destination are
    appended to ``foreign``."""
    for path in list(slot_dirs(root)):
        if path == own:
            continue
        try:
            meta = read_meta(path)
        except ValueError as exc:
            set_aside(path, str(exc))
            continue
        if kind_of(meta) != kind_of(destination):
            continue  # another kind's backlog is never taken: bundles must not go to a cloud
        if not any_of_kind and not adoptable(meta, destination):
            if foreign is not None:
                foreign.append(path)
            continue
        fd = try_lock(path)
        if fd is None:
            continue
        if path != root and not path.exists():
            os.close(fd)
            continue
        yield path, fd


def adoptable(meta: Optional[Dict[str, Any]], destination: Dict[str, str]) -> bool:
    """Whether a slot's backlog may be delivered by ``destination`` (of the same kind):

    * the same key (fingerprint), at any URL: a restart with a corrected URL delivers it;
    * the same URL, when the slot's own key was refused: a corrected key delivers it;
    * destinations without a key (bundle folders, an Event Store without one): the same target;
    * a 0.1 outbox (no meta): any sender of its kind.
    """
    if meta is None:
        return True
    fingerprint = meta.get("keyFingerprint")
    same_target = meta.get("apiUrl") == destination.get("apiUrl")
    if fingerprint and fingerprint == destination.get("keyFingerprint"):
        return True
    if not fingerprint and not destination.get("keyFingerprint"):
        return same_target
    return same_target and bool(meta.get(KEY_REFUSED))


def mark_key_refused(path: Path, refused: bool) -> None:
    """Record in the slot's meta whether the server refuses its key (written atomically)."""
    meta = read_meta(path) or {}
    meta[KEY_REFUSED] = refused
    write_file_atomically(path / META_NAME, json.dumps(meta).encode())


def remove_slot(path: Path, fd: int) -> None:
    """Delete an emptied slot (its lock is held by the caller, then released)."""
    try:
        if path.name.startswith(SLOT_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        else:  # a 0.1 outbox at the root: remove its files, keep the directory (the slots live in it)
            for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", LOCK_NAME):
                (path / name).unlink(missing_ok=True)
            shutil.rmtree(path / IMAGES_DIR, ignore_errors=True)
    finally:
        os.close(fd)


def set_aside(path: Path, reason: str) -> Optional[Path]:
    """Move an unusable slot out of the way (never deleted: someone may want to look)."""
    target = path.parent / f"{_CORRUPT_PREFIX}{path.name}-{int(time.time())}"
    try:
        os.rename(path, target)
    except OSError:
        return None
    logger.warning("vision-events: outbox slot %s is unusable (%s); moved aside to %s", path, reason, target)
    return target


def _remove_stale_new(root: Path) -> None:
    """Half-made slots of a process that died while creating one."""
    now = time.time()
    for path in root.glob(f"{_NEW_PREFIX}*"):
        try:
            if now - path.stat().st_mtime > _STALE_NEW_S:
                fd = try_lock(path)
                if fd is not None:
                    shutil.rmtree(path, ignore_errors=True)
                    os.close(fd)
        except OSError:
            continue


def list_slots(root: Path) -> List[Path]:
    return list(slot_dirs(root))
