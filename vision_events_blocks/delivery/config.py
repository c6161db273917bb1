"""Sender settings: one frozen dataclass, defaults overridable by environment variables.

Every knob has a default that suits a camera on a poor network: bounded memory, batching,
patient retries. ``SenderConfig.from_env(**overrides)`` reads the ``VISION_EVENTS_*``
variables; keyword arguments win over the environment.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

from .api import OverflowPolicy
from .outbox.location import OUTBOX_DIR_VARIABLE

MB = 1024 * 1024
_POLICIES = ("drop_oldest", "drop_newest", "block")


@dataclasses.dataclass(frozen=True)
class SenderConfig:
    """How one sender buffers, encodes, batches, retries and persists.

    Memory mode (``outbox_dir=None``) is best effort with counted loss; durable mode keeps
    every event in a SQLite outbox until the server acknowledged it.
    """

    # memory bound (raw frames until encoded, then encoded bytes + JSON)
    max_buffer_bytes: int = 128 * MB
    overflow_policy: OverflowPolicy = "drop_oldest"
    block_timeout_s: float = 1.0
    # encoding
    jpeg_quality: int = 80
    jpeg_optimize: bool = False  # optimised Huffman tables: ~13 % smaller, ~2x encode time
    max_image_side: Optional[int] = 1920
    encode_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)  # cv2 releases the GIL
    # a live stream whose events fill more than this share of the budget gets smaller images
    degrade_above: float = 0.5
    # a source that can wait (file, request, script) waits this long for room before shedding
    backpressure_timeout_s: float = 30.0
    # sending: requests in flight adapt (AIMD) between 1 and max_concurrency, from initial_concurrency
    max_concurrency: int = 16
    initial_concurrency: int = 4
    batch_max_events: int = 100
    batch_linger_s: float = 0.5
    batch_max_bytes: int = 4 * MB
    request_timeout_s: float = 30.0
    # retries: full jitter between retry_initial_s and min(retry_max_s, initial * 2**attempt)
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    # memory mode gives up after this age (retry_expired); None retries while memory allows
    max_retry_age_s: Optional[float] = 24 * 3600.0
    # durable outbox: the root directory (each sender process owns a slot in it); None = memory
    outbox_dir: Optional[str] = None
    outbox_max_bytes: int = 2048 * MB
    outbox_sync: str = "FULL"  # SQLite synchronous= FULL (power-loss safe) or NORMAL (crash safe)
    outbox_commit_interval_s: float = 0.1
    outbox_commit_rows: int = 200
    replay_chunk: int = 50
    adopt_interval_s: float = 15.0  # how often a live sender looks for dead processes' slots
    # adopt every free slot of the destination's kind, whatever its URL and key (`outbox flush`)
    adopt_any_slot: bool = False
    # shutdown and observability
    shutdown_timeout_s: float = 5.0
    # at the exit of a script / file-based pipeline: keep delivering past the timeout while it advances
    drain_while_progressing_s: float = 300.0
    stats_log_interval_s: float = 60.0
    dead_letters_kept: int = 100

    def __post_init__(self) -> None:
        if self.overflow_policy not in _POLICIES:
            raise ValueError(f"overflow_policy must be one of {_POLICIES}, got {self.overflow_policy!r}")
        if self.outbox_sync.upper() not in ("FULL", "NORMAL"):
            raise ValueError(f"outbox_sync must be FULL or NORMAL, got {self.outbox_sync!r}")
        if not 1 <= self.batch_max_events <= 100:
            raise ValueError("batch_max_events must be between 1 and 100 (the API's batch limit)")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be between 1 and 100")
        if not 0.0 < self.degrade_above <= 1.0:
            raise ValueError("degrade_above must be in (0, 1]")
        for name in ("max_buffer_bytes", "encode_threads", "max_concurrency", "initial_concurrency",
                     "batch_max_bytes", "outbox_max_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if not 0 < self.retry_initial_s <= self.retry_max_s:
            raise ValueError("need 0 < retry_initial_s <= retry_max_s")

    @classmethod
    def from_env(cls, **overrides: Any) -> "SenderConfig":
        """Defaults, then ``VISION_EVENTS_*`` variables, then ``overrides`` (``None`` = not given)."""
        values: dict = {}
        for env, field, convert in _ENV:
            raw = os.environ.get(env)
            if raw not in (None, ""):
                try:
                    values[field] = convert(raw)
                except ValueError:
                    raise ValueError(f"environment variable {env}={raw!r} is not valid") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown sender setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)


def _flag(raw: str) -> bool:
    """on/off words; anything else is an error (never silently off)."""
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _mb(raw: str) -> int:
    return int(float(raw) * MB)


def _optional_seconds(raw: str) -> Optional[float]:
    """``0``, ``none`` or ``inf`` mean 'no limit'."""
    if raw.strip().lower() in ("none", "inf", "0"):
        return None
    return float(raw)


_ENV = (
    ("VISION_EVENTS_MAX_BUFFER_MB", "max_buffer_bytes", _mb),
    ("VISION_EVENTS_OVERFLOW_POLICY", "overflow_policy", str),
    ("VISION_EVENTS_BLOCK_TIMEOUT_S", "block_timeout_s", float),
    ("VISION_EVENTS_JPEG_QUALITY", "jpeg_quality", int),
    ("VISION_EVENTS_JPEG_OPTIMIZE", "jpeg_optimize", _flag),
    ("VISION_EVENTS_MAX_IMAGE_SIDE", "max_image_side", lambda raw: int(raw) or None),
    ("VISION_EVENTS_ENCODE_THREADS", "encode_threads", int),
    ("VISION_EVENTS_MAX_CONCURRENCY", "max_concurrency", int),
    ("VISION_EVENTS_BACKPRESSURE_TIMEOUT_S", "backpressure_timeout_s", float),
    ("VISION_EVENTS_BATCH_LINGER_S", "batch_linger_s", float),
    ("VISION_EVENTS_RETRY_MAX_S", "retry_max_s", float),
    ("VISION_EVENTS_MAX_RETRY_AGE_S", "max_retry_age_s", _optional_seconds),
    ("VISION_EVENTS_OUTBOX_MAX_MB", "outbox_max_bytes", _mb),
    ("VISION_EVENTS_OUTBOX_SYNC", "outbox_sync", str.upper),
    ("VISION_EVENTS_SHUTDOWN_TIMEOUT_S", "shutdown_timeout_s", float),
    ("VISION_EVENTS_DRAIN_WHILE_PROGRESSING_S", "drain_while_progressing_s", float),
    ("VISION_EVENTS_STATS_LOG_INTERVAL_S", "stats_log_interval_s", float),
)
# The outbox root is read where it is resolved (outbox/location.py), once.
ENVIRONMENT_VARIABLES = tuple(env for env, _, _ in _ENV) + (OUTBOX_DIR_VARIABLE,)
