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
    encode_threads: int = 1
    # sending
    upload_threads: int = 3
    batch_max_events: int = 100
    batch_linger_s: float = 0.5
    batch_max_bytes: int = 4 * MB
    request_timeout_s: float = 30.0
    # retries: full jitter between retry_initial_s and min(retry_max_s, initial * 2**attempt)
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    # memory mode gives up after this age (retry_expired); None retries while memory allows
    max_retry_age_s: Optional[float] = 24 * 3600.0
    # durable outbox
    outbox_dir: Optional[str] = None
    outbox_max_bytes: int = 2048 * MB
    outbox_sync: str = "FULL"  # SQLite synchronous= FULL (power-loss safe) or NORMAL (crash safe)
    outbox_commit_interval_s: float = 0.1
    outbox_commit_rows: int = 200
    replay_chunk: int = 50
    # shutdown and observability
    shutdown_timeout_s: float = 5.0
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
        for name in ("max_buffer_bytes", "encode_threads", "upload_threads", "batch_max_bytes", "outbox_max_bytes"):
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
    ("VISION_EVENTS_JPEG_OPTIMIZE", "jpeg_optimize", lambda raw: raw.strip().lower() in ("1", "true", "yes")),
    ("VISION_EVENTS_MAX_IMAGE_SIDE", "max_image_side", lambda raw: int(raw) or None),
    ("VISION_EVENTS_ENCODE_THREADS", "encode_threads", int),
    ("VISION_EVENTS_UPLOAD_THREADS", "upload_threads", int),
    ("VISION_EVENTS_BATCH_LINGER_S", "batch_linger_s", float),
    ("VISION_EVENTS_RETRY_MAX_S", "retry_max_s", float),
    ("VISION_EVENTS_MAX_RETRY_AGE_S", "max_retry_age_s", _optional_seconds),
    ("VISION_EVENTS_OUTBOX_DIR", "outbox_dir", str),
    ("VISION_EVENTS_OUTBOX_MAX_MB", "outbox_max_bytes", _mb),
    ("VISION_EVENTS_OUTBOX_SYNC", "outbox_sync", str.upper),
    ("VISION_EVENTS_SHUTDOWN_TIMEOUT_S", "shutdown_timeout_s", float),
    ("VISION_EVENTS_STATS_LOG_INTERVAL_S", "stats_log_interval_s", float),
)
ENVIRONMENT_VARIABLES = tuple(env for env, _, _ in _ENV)
