"""Where a sender delivers: the Vision Events API (``cloud``), an edge Event Store, or bundle files.

A :class:`Destination` is the sender's identity (its registry key, its outbox slot's meta,
its label in ``stats()``) and the factory of its exporter. Everything else in the sender —
byte budget, encoder, durable outbox, retries, back-pressure — is the same for all three:

=============  ======================================  ==========================================
kind           target, key                              defaults (argument, else environment)
=============  ======================================  ==========================================
``cloud``      API URL, Roboflow key (required)         ``VISION_EVENTS_API_URL`` / ``API_BASE_URL``;
                                                        ``ROBOFLOW_API_KEY`` / ``API_KEY``
``event_store`` Event Store URL, ingestion key          ``VISION_EVENTS_EVENT_STORE_URL``, else
               (optional, as the built-in block)        ``http://localhost:8001``; ``EVENT_INGESTION_API_KEY``
``bundle``     a directory                              ``VISION_EVENTS_BUNDLE_DIR`` (required)
=============  ======================================  ==========================================

The key is held as an :class:`~..api.secrets.ApiKey`: only its fingerprint appears in labels,
registry keys and outbox meta.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple, Union

import httpx

from ..api.client import resolve_api_key, resolve_api_url
from ..api.event_store import DEFAULT_EVENT_STORE_URL, EVENT_STORE_KEY_ENV, EVENT_STORE_URL_ENV
from ..api.secrets import ApiKey
from .outbox.location import storage_allowed

CLOUD, EVENT_STORE, BUNDLE = "cloud", "event_store", "bundle"
KINDS = (CLOUD, EVENT_STORE, BUNDLE)
BUNDLE_DIR_ENV = "VISION_EVENTS_BUNDLE_DIR"
WRITE_DIRECTORY_ENV = "WORKFLOW_BLOCKS_WRITE_DIRECTORY"  # inference's jail for blocks that write files


class DestinationError(ValueError):
    """A destination that cannot be used as configured (the message names the field)."""


@dataclasses.dataclass(frozen=True)
class Destination:
    """One place events go. ``target`` is a URL (cloud, event_store) or an absolute directory."""

    kind: str
    target: str
    key: Optional[ApiKey] = dataclasses.field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint if self.key is not None else ""

    @property
    def label(self) -> str:
        if self.kind == CLOUD:
            return f"{self.target} key:{self.fingerprint}"  # as before: existing dashboards keep working
        if self.kind == EVENT_STORE:
            return f"event_store {self.target} key:{self.fingerprint or 'none'}"
        return f"bundle {self.target}"

    def identity(self) -> Dict[str, str]:
        """The outbox slot's meta: a sender only reuses or adopts slots of its own kind, so an
        air-gapped site's events never leave for the cloud because a slot was free."""
        meta = {"apiUrl": self.target, "keyFingerprint": self.fingerprint}
        if self.kind != CLOUD:  # cloud slots keep the meta they always had
            meta["destination"] = self.kind
        return meta

    def registry_key(self) -> Tuple[str, str, str]:
        return (self.kind, self.target, self.fingerprint)

    def exporter(self, config: Any, gate: Any) -> Any:
        """A fresh exporter (after a fork too) with its own connection pool."""
        if self.kind == CLOUD:
            from ..api.client import VisionEventsClient
            from .exporter import Exporter

            client = VisionEventsClient(api_key=self.key, api_url=self.target, timeout=config.request_timeout_s,
                                        max_connections=config.max_concurrency + 1)
            return Exporter(client, gate)
        from .inline import BundleExporter, EventStoreExporter

        if self.kind == EVENT_STORE:
            from ..api.event_store import EventStoreClient

            return EventStoreExporter(EventStoreClient(self.target, self.key, timeout=config.request_timeout_s), gate)
        return BundleExporter(self.target, gate)


def cloud(api_url: Optional[str] = None, api_key: Union[str, ApiKey, None] = None) -> Destination:
    key = resolve_api_key(api_key)
    if key is None:
        raise DestinationError("no API key: pass api_key= or set ROBOFLOW_API_KEY")
    return Destination(CLOUD, resolve_api_url(api_url).rstrip("/"), key)


def event_store(url: Optional[str] = None, api_key: Union[str, ApiKey, None] = None) -> Destination:
    """``url``, else ``VISION_EVENTS_EVENT_STORE_URL``, else the built-in's ``http://localhost:8001``;
    the key: ``api_key``, else ``EVENT_INGESTION_API_KEY``, else none (no header, as the built-in)."""
    raw = (url or "").strip() or os.environ.get(EVENT_STORE_URL_ENV, "").strip() or DEFAULT_EVENT_STORE_URL
    try:
        parsed = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise DestinationError("event_store_url is not a valid URL; expected e.g. http://localhost:8001") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo or parsed.query or parsed.fragment:
        # never repeat the URL: it is what might hold a secret
        raise DestinationError("event_store_url must be an http:// or https:// URL with a host and no "
                               "credentials or query string, e.g. http://localhost:8001")
    if api_key is None:
        api_key = os.environ.get(EVENT_STORE_KEY_ENV) or None
    key = api_key if isinstance(api_key, ApiKey) or api_key is None else ApiKey(api_key)
    return Destination(EVENT_STORE, raw.rstrip("/"), key)


def bundle(directory: Optional[str] = None) -> Destination:
    """A folder for bundle files: created now and checked writable, so a misconfiguration is
    reported on the first frame (as the built-in block does), not lost in a background thread.
    Honours inference's ``ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE`` and
    ``WORKFLOW_BLOCKS_WRITE_DIRECTORY`` like the built-in ``vision_event_bundle@v1``."""
    raw = (directory or "").strip() or os.environ.get(BUNDLE_DIR_ENV, "").strip()
    if not raw:
        raise DestinationError(f"bundle_dir: required with destination bundle (or set {BUNDLE_DIR_ENV})")
    if not storage_allowed():
        raise DestinationError("bundle_dir: writing files is forbidden here "
                               "(ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE is false)")
    path = os.path.realpath(os.path.expanduser(raw))
    jail = os.environ.get(WRITE_DIRECTORY_ENV)
    if jail:
        root = os.path.realpath(os.path.expanduser(jail))
        if os.path.commonpath([root, path]) != root:
            raise DestinationError(f"bundle_dir: {path} is outside {WRITE_DIRECTORY_ENV} ({root})")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise DestinationError(f"bundle_dir: cannot create {path}: {exc.strerror or exc}") from None
    if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
        raise DestinationError(f"bundle_dir: {path} is not a writable directory")
    return Destination(BUNDLE, path)


def resolve(destination: Optional[str] = None, *, api_url: Optional[str] = None,
            api_key: Union[str, ApiKey, None] = None, event_store_url: Optional[str] = None,
            event_store_api_key: Union[str, ApiKey, None] = None, bundle_dir: Optional[str] = None) -> Destination:
    """The destination named by ``destination`` (``cloud`` when None or empty)."""
    kind = (destination or CLOUD).strip().lower().replace("-", "_")
    if kind == CLOUD:
        return cloud(api_url, api_key)
    if kind == EVENT_STORE:
        return event_store(event_store_url, event_store_api_key)
    if kind == BUNDLE:
        return bundle(bundle_dir)
    raise DestinationError(f"destination must be one of {', '.join(KINDS)}, got {destination!r}")
