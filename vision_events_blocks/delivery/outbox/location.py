"""Where the durable outbox lives by default, and when it may not live anywhere.

Durable is the default in every long-running host. The root directory is, in order:

1. the block's ``outbox_dir`` / ``get_sender(outbox_dir=...)``, when it names a path;
2. ``VISION_EVENTS_OUTBOX_DIR``;
3. ``$WORKFLOW_BLOCKS_WRITE_DIRECTORY/vision_events_outbox`` (inference's directory for blocks
   that write files);
4. ``$MODEL_CACHE_DIR/vision_events_outbox``, inference's model cache (``/tmp/cache`` unless
   set), which Docker users already mount as a volume so that models survive a restart.

``off`` (also ``none``, ``memory``, ``false``, ``0``) in either of the first two keeps events
in memory only. When inference forbids blocks to touch local storage
(``ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE=false``) the outbox is refused: memory mode,
logged once and counted (``durability.refused`` in ``stats()``).
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Optional, Tuple

logger = logging.getLogger("vision_events_blocks.delivery")

OUTBOX_DIR_VARIABLE = "VISION_EVENTS_OUTBOX_DIR"
OPT_OUT_WORDS = ("off", "none", "memory", "false", "0", "disabled")
AUTO_WORDS = ("", "auto", "default")
OUTBOX_FOLDER = "vision_events_outbox"
INFERENCE_MODEL_CACHE_DEFAULT = "/tmp/cache"  # inference.core.env.MODEL_CACHE_DIR's default

_lock = threading.Lock()
_refused = 0


def default_root() -> str:
    """The outbox root when nothing names one (steps 3-4 of the module docstring)."""
    write_dir = os.environ.get("WORKFLOW_BLOCKS_WRITE_DIRECTORY")
    if write_dir:
        return os.path.join(write_dir, OUTBOX_FOLDER)
    return os.path.join(os.environ.get("MODEL_CACHE_DIR") or INFERENCE_MODEL_CACHE_DEFAULT, OUTBOX_FOLDER)


def configured_root(requested: Optional[str] = None) -> Tuple[Optional[str], str]:
    """(root or None, why): the directory the rules above give, before the storage rule."""
    for value, source in ((requested, "outbox_dir"), (os.environ.get(OUTBOX_DIR_VARIABLE), OUTBOX_DIR_VARIABLE)):
        if value is None:
            continue
        word = str(value).strip()
        if word.lower() in OPT_OUT_WORDS:
            return None, f"memory mode chosen ({source}={word})"
        if word.lower() not in AUTO_WORDS:
            return os.path.abspath(os.path.expanduser(word)), f"from {source}"
    return os.path.abspath(default_root()), "default location"


def storage_allowed() -> bool:
    raw = os.environ.get("ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE")
    return raw is None or raw.strip() == "" or raw.strip().lower() in ("1", "true", "yes", "on")


def resolve_outbox_root(requested: Optional[str] = None) -> Optional[str]:
    """The outbox root a sender of the plugin uses, or None for memory mode (see the module)."""
    root, _ = configured_root(requested)
    if root is None:
        return None
    if not storage_allowed():
        note_refused(f"durable outbox {root} refused: ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE is false; "
                     f"events are kept in memory only")
        return None
    return root


def note_refused(message: str) -> None:
    """Count a refusal of durable mode; log the first one."""
    global _refused
    with _lock:
        _refused += 1
        first = _refused == 1
    if first:
        logger.warning("vision-events: %s", message)


def refused_count() -> int:
    return _refused
