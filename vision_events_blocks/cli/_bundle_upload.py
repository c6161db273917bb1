"""Delivering bundle files to the Vision Events API (the engine of ``vision-events bundle upload``).

Why it is safe to kill at any point: a bundle file is the only durable copy of its event, so
it is removed (or moved to ``--done-dir``) only after the sender reports ``sent`` (the API
answered 2xx). The event keeps the bundle's ``eventId`` and the API upserts on ``eventId``,
so a rerun after a crash re-sends at most the bundles not yet removed, without duplicates.

Images are uploaded here with the client (``POST /vision-events/upload``, retried while the
error is retryable); the event -- with those ``sourceId``s, the bundle's annotations and
``eventId`` -- goes through the sender, in memory mode (batched, retried). The sender's
``ImageAttachment`` cannot carry ready annotations, which is why the uploads happen here.

Outcomes: ``delivered``; ``refused`` (the bundle is unusable or the API refused the event:
moved to the refused folder with ``<name>.error.txt`` holding the reason, never deleted);
``skipped`` (left in place: not a bundle, no use case); ``kept`` (not acknowledged in time:
left in place for a rerun).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..api.bundles import BUNDLE_SUFFIX, Bundle, BundleError, read_bundle
from ..api.errors import APIStatusError, AuthenticationError, PermissionDeniedError, VisionEventsError
from ..api.media import sniff_content_type

ERROR_SUFFIX = ".error.txt"
_STATUS = re.compile(r"^HTTP (\d{3})")


class RunAborted(Exception):
    """The destination refuses us (bad key or scope): no bundle is at fault, so none is moved."""


@dataclasses.dataclass
class Outcome:
    path: Path
    outcome: str            # delivered | refused | skipped | kept
    reason: str = ""
    event_id: str = ""
    moved_to: str = ""


def is_candidate(path: Path) -> bool:
    """A published bundle: ``*.tar.gz``, not a dotfile (``.tmp_*`` files are still being written)."""
    return path.name.endswith(BUNDLE_SUFFIX) and not path.name.startswith(".")


def _settled(path: Path, min_age_s: float) -> bool:
    """Untouched for ``min_age_s``: a copier that writes in place (``cp``) has finished."""
    if min_age_s <= 0:
        return True
    try:
        return time.time() - path.stat().st_mtime >= min_age_s
    except OSError:
        return False


def collect(paths: Sequence[Path], min_age_s: float = 0.0) -> Tuple[List[Path], List[Outcome]]:
    """Bundles named or found (non-recursively) in folders, oldest name first; plus the files
    of those folders that are not bundles (skipped, with the reason). With ``min_age_s``
    (``--watch``), bundles in folders modified more recently wait for a later look."""
    bundles: List[Path] = []
    skipped: List[Outcome] = []
    for path in paths:
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                if entry.name.startswith(".") or entry.is_dir():
                    continue  # temporary files of a writer; the refused/done folders
                if is_candidate(entry):
                    if _settled(entry, min_age_s):
                        bundles.append(entry)
                elif not entry.name.endswith(ERROR_SUFFIX):
                    skipped.append(Outcome(entry, "skipped", "not a bundle (*.tar.gz)"))
        else:
            bundles.append(path)
    seen, unique = set(), []
    for bundle in bundles:
        key = os.path.abspath(bundle)
        if key not in seen:
            seen.add(key)
            unique.append(bundle)
    return unique, skipped


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    counter = 1
    while target.exists() or Path(f"{target}{ERROR_SUFFIX}").exists():
        target = folder / f"{name}.{counter}"
        counter += 1
    return target


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder, path.name)
    try:
        os.replace(path, target)
    except OSError:
        shutil.move(str(path), str(target))
    return target


class Uploader:
    """Uploads bundles through one sender; counts every outcome with its reason."""

    def __init__(self, client: Any, sender: Any, *, use_case_id: Optional[str] = None,
                 refused_dir: Optional[Path] = None, done_dir: Optional[Path] = None,
                 timeout_s: float = 300.0, in_flight: int = 20, upload_threads: int = 4) -> None:
        self.client = client
        self.sender = sender
        self.use_case_id = use_case_id
        self.refused_dir = refused_dir
        self.done_dir = done_dir
        self.timeout_s = timeout_s
        self.in_flight = max(1, in_flight)
        self.upload_threads = max(1, upload_threads)
        self._lock = threading.Lock()  # outcomes and refused-folder names, shared by the upload threads
        self.outcomes: List[Outcome] = []

    # -- outcomes ----------------------------------------------------------------------------
    def counts(self) -> Dict[str, int]:
        counted = Counter(o.outcome for o in self.outcomes)
        return {k: counted.get(k, 0) for k in ("delivered", "skipped", "refused", "kept")}

    def note(self, outcome: Outcome) -> Outcome:
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _refuse(self, path: Path, reason: str, event_id: str = "") -> Outcome:
        """Move the bundle aside with the reason next to it: never deleted, easy to retry by hand."""
        folder = self.refused_dir or path.parent / "refused"
        moved = ""
        try:
            with self._lock:
                moved = self._move_aside(path, folder, reason)
        except OSError as exc:
            reason = f"{reason} (could not move it aside: {exc.strerror or exc})"
        return self.note(Outcome(path, "refused", reason, event_id, moved))

    @staticmethod
    def _move_aside(path: Path, folder: Path, reason: str) -> str:
        """The reason first, then the bundle: a crash in between leaves the bundle in place."""
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder, path.name)
        Path(f"{target}{ERROR_SUFFIX}").write_text(reason + "\n", encoding="utf-8")
        try:
            os.replace(path, target)
        except OSError:
            shutil.move(str(path), str(target))
        return str(target)

    def _delivered(self, path: Path, event_id: str) -> Outcome:
        moved = ""
        try:
            if self.done_dir is not None:
                moved = str(_move(path, self.done_dir))
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # delivered all the same; a rerun would only upsert it again
            return self.note(Outcome(path, "delivered", f"delivered, but the file stayed: {exc.strerror or exc}", event_id))
        return self.note(Outcome(path, "delivered", "", event_id, moved))

    # -- one bundle ----------------------------------------------------------------------------
    def _upload_image(self, data: bytes, deadline: float) -> str:
        content_type = sniff_content_type(data) or "image/jpeg"
        attempt = 0
        while True:
            try:
                return self.client.upload_image(data, content_type=content_type).source_id
            except VisionEventsError as exc:
                remaining = deadline - time.monotonic()
                if not exc.retryable or remaining <= 0:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else min(30.0, 0.5 * 2 ** attempt)
                attempt += 1
                time.sleep(max(0.05, min(delay, remaining)))  # back-off between retries of a live call

    def _event_of(self, bundle: Bundle, deadline: float) -> Dict[str, Any]:
        event = dict(bundle.event)
        if self.use_case_id:
            event["useCaseId"] = self.use_case_id
        images = []
        for entry, data in zip(event.get("images") or [], bundle.images, strict=True):
            image = dict(entry)
            if data.output is not None:
                image["sourceId"] = self._upload_image(data.output, deadline)
            if data.input is not None:
                image["inputSourceId"] = self._upload_image(data.input, deadline)
            images.append(image)
        event["images"] = images
        return event

    def _submit(self, path: Path) -> Optional[Tuple[Path, str]]:
        """Read, upload images, hand the event to the sender; ``None`` when already decided."""
        try:
            bundle = read_bundle(path)
        except BundleError as exc:
            if not path.exists():
                self.note(Outcome(path, "skipped", "gone before it was read (another uploader?)"))
                return None
            self._refuse(path, str(exc))
            return None
        if not (self.use_case_id or bundle.event.get("useCaseId")):
            self.note(Outcome(path, "skipped", "no useCaseId in the bundle: pass --use-case-id", bundle.event_id))
            return None
        try:
            event = self._event_of(bundle, time.monotonic() + self.timeout_s)
        except (AuthenticationError, PermissionDeniedError) as exc:
            raise RunAborted(f"the API refused the key ({exc}); no bundle was moved") from None
        except APIStatusError as exc:
            if exc.retryable:
                self.note(Outcome(path, "kept", f"image upload failed: {exc}", bundle.event_id))
            else:
                self._refuse(path, f"{path.name}: image upload refused: {exc}", bundle.event_id)
            return None
        except VisionEventsError as exc:
            self.note(Outcome(path, "kept", f"image upload failed: {exc}", bundle.event_id))
            return None
        try:
            event_id = self.sender.submit(event, can_wait=True)  # a file can wait: back-pressure, never shedding
        except (ValueError, TypeError) as exc:
            self._refuse(path, f"{path.name}: invalid event: {exc}", bundle.event_id)
            return None
        return path, event_id

    def _settle(self, path: Path, event_id: str, deadline: float) -> None:
        result = self.sender.wait(event_id, timeout=max(0.0, deadline - time.monotonic()))
        if result.status == "sent":
            self._delivered(path, event_id)
            return
        if result.status == "dead_lettered":
            status = _STATUS.match(result.message or "")
            if status and status.group(1) in ("401", "403"):
                self.note(Outcome(path, "kept", f"the API refused the key: {result.message}", event_id))
                raise RunAborted(f"the API refused the key ({result.message}); no bundle was moved")
            self._refuse(path, f"{path.name}: the API refused event {event_id}: {result.message}", event_id)
            return
        self.note(Outcome(path, "kept", f"not acknowledged ({result.status}: {result.message}); left for a rerun", event_id))

    def _drain(self, pending: List[Tuple[Path, str]], advance: Callable[[int], None],
               aborted: Optional[RunAborted]) -> Optional[RunAborted]:
        """Wait for the window's events; a refused key stops the settling (bundles stay)."""
        deadline = time.monotonic() + self.timeout_s
        for path, event_id in pending:
            if aborted is None:
                try:
                    self._settle(path, event_id, deadline)
                except RunAborted as exc:
                    aborted = exc
            else:
                self.note(Outcome(path, "kept", "run aborted before acknowledgement", event_id))
            advance(1)
        return aborted

    def run(self, bundles: Iterable[Path], advance: Callable[[int], None] = lambda n: None,
            stop: Callable[[], bool] = lambda: False) -> None:
        """Process bundles a window at a time (memory stays bounded: one bundle per upload
        thread), uploading images on ``upload_threads`` threads, advancing the progress bar."""
        queue = list(bundles)
        aborted: Optional[RunAborted] = None
        with ThreadPoolExecutor(max_workers=self.upload_threads, thread_name_prefix="bundle-upload") as pool:
            for start in range(0, len(queue), self.in_flight):
                if stop() or aborted is not None:
                    why = "stopped" if aborted is None else "the run stopped: the API refused the key"
                    for rest in queue[start:]:  # every bundle is accounted for, even those never tried
                        self.note(Outcome(rest, "kept", f"not tried ({why}); left for a rerun"))
                        advance(1)
                    break
                window = queue[start:start + self.in_flight]
                futures = [pool.submit(self._submit, path) for path in window]
                pending: List[Tuple[Path, str]] = []
                for path, future in zip(window, futures, strict=True):
                    try:
                        submitted = future.result()
                    except RunAborted as exc:
                        aborted = aborted or exc
                        self.note(Outcome(path, "kept", str(exc)))
                        advance(1)
                        continue
                    if submitted is None:
                        advance(1)
                    else:
                        pending.append(submitted)
                aborted = self._drain(pending, advance, aborted)
        if aborted is not None:
            raise aborted
