"""``vision-events bundle upload PATH...``: deliver bundle files (format v1) to the Vision Events API.

Bundles come from inference's ``roboflow_core/vision_event_bundle@v1`` block or from this
package's :func:`~vision_events_blocks.api.bundles.write_bundle`. See
:mod:`._bundle_upload` for why a crash at any point loses nothing and a rerun duplicates nothing.
"""
from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import click

from . import main
from ._bundle_upload import Outcome, RunAborted, Uploader, collect


@main.group()
def bundle() -> None:
    """Vision Events bundles (*.tar.gz, format v1) written for air-gapped sites."""


def _summary(uploader: Uploader, skipped_files: List[Outcome], as_json: bool) -> Dict[str, Any]:
    outcomes = skipped_files + uploader.outcomes
    counts = {"delivered": 0, "skipped": 0, "refused": 0, "kept": 0}
    for outcome in outcomes:
        counts[outcome.outcome] += 1
    if as_json:
        click.echo(json.dumps({**counts, "bundles": [
            {"file": str(o.path), "outcome": o.outcome, "reason": o.reason, "eventId": o.event_id, "movedTo": o.moved_to}
            for o in outcomes]}, indent=2))
        return counts
    click.echo(f"delivered {counts['delivered']}, skipped {counts['skipped']}, refused {counts['refused']}, "
               f"not acknowledged (left for a rerun) {counts['kept']}")
    for outcome in outcomes:
        if outcome.outcome == "delivered" and not outcome.reason:
            continue
        where = f" -> {outcome.moved_to}" if outcome.moved_to and outcome.outcome == "refused" else ""
        reason = outcome.reason if outcome.reason.startswith(outcome.path.name) else f"{outcome.path.name}: {outcome.reason}"
        click.echo(f"  {outcome.outcome:<9} {reason}{where}")
    return counts


def _make_sender(api_url: Optional[str], api_key: Optional[str]) -> Tuple[Any, Any]:
    """A client (image uploads) and a memory-mode sender (events): the bundle file is the durable copy."""
    from ..api.client import VisionEventsClient
    from ..delivery import Sender, SenderConfig

    config = dataclasses.replace(SenderConfig.from_env(), outbox_dir=None, shutdown_timeout_s=2.0)
    sender = Sender(api_url, api_key, config)
    client = VisionEventsClient(api_key=api_key, api_url=api_url)
    return client, sender


@bundle.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--api-url", default=None, help="API base URL (else VISION_EVENTS_API_URL / API_BASE_URL / the cloud).")
@click.option("--api-key", default=None, envvar="ROBOFLOW_API_KEY", help="API key (else ROBOFLOW_API_KEY).")
@click.option("--use-case-id", default=None, help="Use case for every bundle (bundles of the built-in block often have none).")
@click.option("--refused-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where refused bundles go, each with <name>.error.txt [default: refused/ beside the bundle].")
@click.option("--done-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Move delivered bundles here instead of deleting them.")
@click.option("--watch", is_flag=True, help="Keep following the folders for new bundles until interrupted.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between looks at the folders (--watch).")
@click.option("--settle", default=1.0, show_default=True,
              help="With --watch: take a bundle once unmodified this long (for copiers that write in place).")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the API's acknowledgement.")
@click.option("--in-flight", default=20, show_default=True, help="Bundles read and queued before waiting for them.")
@click.option("--upload-threads", default=4, show_default=True, help="Bundles whose images upload at the same time.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def upload(paths: Tuple[Path, ...], api_url: Optional[str], api_key: Optional[str], use_case_id: Optional[str],
           refused_dir: Optional[Path], done_dir: Optional[Path], watch: bool, interval: float, settle: float, timeout: float,
           in_flight: int, upload_threads: int, as_json: bool) -> None:
    """Deliver bundle files (or every *.tar.gz in folders) to the API, keeping each bundle's eventId.

    A bundle is removed (or moved to --done-dir) only once the API acknowledged its event;
    refused ones are moved aside with the reason in <name>.error.txt. Exit status: 0 when
    everything was delivered or skipped, 1 when something was refused or left for a rerun.
    """
    try:
        client, sender = _make_sender(api_url, api_key)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    uploader = Uploader(client, sender, use_case_id=use_case_id, refused_dir=refused_dir, done_dir=done_dir,
                        timeout_s=timeout, in_flight=in_flight, upload_threads=upload_threads)
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set()) if watch else None
    skipped_files: Dict[str, Outcome] = {}
    aborted: Optional[str] = None
    try:
        while True:
            found, not_bundles = collect(list(paths), min_age_s=settle if watch else 0.0)
            for outcome in not_bundles:
                skipped_files.setdefault(str(outcome.path), outcome)  # reported once, not at every look
            if found:
                with click.progressbar(length=len(found), label="uploading bundles", file=sys.stderr) as bar:
                    uploader.run(found, advance=bar.update, stop=stopping.is_set)
            if not watch or stopping.wait(interval):
                break
    except RunAborted as exc:
        aborted = str(exc)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sender.close(timeout=2.0)
        client.close()
    counts = _summary(uploader, list(skipped_files.values()), as_json)
    if aborted:
        click.echo(f"stopped: {aborted}", err=True)
        raise SystemExit(1)
    if counts["refused"] or counts["kept"]:
        raise SystemExit(1)
